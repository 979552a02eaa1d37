"""The PrometheusRule manifest (monitoring.coreos.com/v1) for the Prometheus Operator.

kube-prometheus-stack only loads rule objects whose labels match its ruleSelector (by default
`release: <helm release>`), hence `alerting.rule_labels` in the config.
"""

from __future__ import annotations

from typing import Any

from exporter.config.model import MlmonConfig

from alert_rules.rules import RuleGroup

NAME = "mlmon"


def prometheus_rule(config: MlmonConfig, groups: list[RuleGroup]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "mlmon", "app.kubernetes.io/component": "alert-rules"}
    labels.update(config.alerting.rule_labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {"groups": [group.to_dict() for group in groups]},
    }
