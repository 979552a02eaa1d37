"""mlmon's sidecar exporter: config, reference profiles, ingest, windowed state and /metrics."""

__version__ = "0.1.0"
