"""Prometheus recording and alerting rules and the Alertmanager config, generated from mlmon.yaml.

One pipeline (:mod:`alert_rules.build`) turns the config into four files: recording rules,
alerting rules, an Alertmanager config and a PrometheusRule manifest. Metric names come from
:mod:`exporter.catalog` and thresholds from :mod:`exporter.config.model`, so a number is written once.

    >>> from exporter.config.model import load_config
    >>> from alert_rules.build import render
    >>> files = render(load_config("examples/mlmon.yaml"))
    >>> len(files)
    4
"""
