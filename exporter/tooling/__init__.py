"""Commands around the service: the demo and its synthetic data, the local Prometheus/Alertmanager stack, and
document generators."""
