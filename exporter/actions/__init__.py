"""`mlmon act`: an Alertmanager webhook receiver that turns alerts into actions (docs/remediation.md)."""
