"""What the sidecar remembers: the per-model/version store (store.py), time windows (windows.py), quality
accumulators (quality.py), the pending-prediction store and the label join (label_store.py, labels.py)."""
