"""Helpers shared by the tests: real Prometheus / Alertmanager processes and a webhook receiver."""
