"""Grafana dashboards as code: generated with grafanalib from mlmon.yaml and the metric catalog.

`mlmon dashboards build --config mlmon.yaml --out dashboards/generated/` writes one JSON file per
dashboard (see :mod:`dashboards.build`); docs/dashboards.md shows how to load them into Grafana.
"""
