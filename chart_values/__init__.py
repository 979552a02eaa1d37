"""`mlmon chart values`: one config -> the values of helm/mlmon that deploy its monitoring.

The chart cannot run Python, so the rules and dashboards of a user's config are generated here
and carried in the values, each with the hash of the config they came from; the chart computes
the same hash of the config it deploys (`sha256sum (toJson .Values.config)`) and refuses to
render when they differ (:mod:`chart_values.gojson` spells JSON the way Helm's `toJson` does).
"""
