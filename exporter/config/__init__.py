"""The config model: `mlmon.yaml` parsed and validated (model.py), its alerting part (alerting.py), error
messages that name the place and the fix (errors.py) and the generated reference page (reference_doc.py)."""
