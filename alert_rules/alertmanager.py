"""The Alertmanager config (0.25 syntax) from the `alerting:` section: receivers, routes, inhibit rules.

Secrets are `*_file` references only, so the generated file can be committed and reviewed. The
tree is flat: the root route sets grouping and timings; each configured route adds `matchers`
for team, severity and model and may override the timings.
"""

from __future__ import annotations

from typing import Any

from exporter.config.model import MlmonConfig
from exporter.config.actions import Action, receiver_name, webhook_path
from exporter.config.alerting import AlertingConfig, Receiver, Route, Timing

from alert_rules.factory import EXPORTER_ABSENT, EXPORTER_DOWN, MUTED_BY_EXPORTER_DOWN
from alert_rules.naming import ALERT_PREFIX

NULL_RECEIVER = "mlmon-null"  # used when the config declares no receivers: alerts go nowhere
MLMON_ALERTS = f'alertname=~"{ALERT_PREFIX}.+"'
# Labels that identify "the same alert" for critical-mutes-warning: name, model and, where the
# alert has them, the feature, window, quality metric and segment attribute (a missing label counts as equal on both sides).
SAME_ALERT = ["alertname", "model", "model_version", "feature", "window", "metric", "attribute"]

SLACK_TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.model }}"
# The page and dashboard links exist when `links:` is set in mlmon.yaml (alert_rules/page_links.py).
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}* {{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n"
    "{{ with .Annotations.page_url }}Model page: {{ . }}\n{{ end }}"
    "{{ with .Annotations.dashboard_url }}Dashboard: {{ . }}\n{{ end }}{{ end }}"
)
# The same for receivers that take plain text (Opsgenie's description).
PLAIN_TEXT = SLACK_TEXT.replace("*{{ .Annotations.summary }}*", "{{ .Annotations.summary }}")
# A PagerDuty incident links the first alert's pages; Alertmanager leaves out a link whose href
# renders empty (an alert without that annotation), so none is sent broken.
FIRST = "(index .Alerts 0).Annotations"
PAGERDUTY_LINKS = [
    {"href": f"{{{{ {FIRST}.page_url }}}}", "text": "Model page"},
    {"href": f"{{{{ {FIRST}.dashboard_url }}}}", "text": "Dashboard"},
    {"href": f"{{{{ {FIRST}.runbook_url }}}}", "text": "Runbook"},
]
# Opsgenie shows details as key/value pairs beside the alert.
OPSGENIE_DETAILS = {key: f"{{{{ {FIRST}.{key} }}}}" for key in ("runbook_url", "page_url", "dashboard_url")}


def _webhook(url: str, token_file: str | None, send_resolved: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"url": url, "send_resolved": send_resolved}
    if token_file:
        config["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": token_file}}
    return config


def receiver_config(receiver: Receiver) -> dict[str, Any]:
    """One Alertmanager receiver; optional fields are left out rather than written as null."""
    resolved = receiver.send_resolved
    out: dict[str, Any] = {"name": receiver.name}
    if (e := receiver.email) is not None:
        config = {"to": e.to, "from": e.from_, "smarthost": e.smarthost, "require_tls": e.require_tls}
        if e.auth_username:
            config["auth_username"] = e.auth_username
        if e.auth_password_file:
            config["auth_password_file"] = e.auth_password_file
        out["email_configs"] = [{**config, "send_resolved": resolved}]
    elif (s := receiver.slack) is not None:
        out["slack_configs"] = [{
            "api_url_file": s.api_url_file, "channel": s.channel, "send_resolved": resolved,
            "title": SLACK_TITLE, "text": SLACK_TEXT,
        }]
    elif (p := receiver.pagerduty) is not None:
        out["pagerduty_configs"] = [{
            "routing_key_file": p.routing_key_file, "send_resolved": resolved,
            "severity": "{{ .CommonLabels.severity }}", "description": "{{ .CommonAnnotations.summary }}",
            "links": PAGERDUTY_LINKS,
        }]
    elif (o := receiver.opsgenie) is not None:
        config = {"api_key_file": o.api_key_file, "send_resolved": resolved, "message": "{{ .CommonAnnotations.summary }}",
                  "description": PLAIN_TEXT, "details": OPSGENIE_DETAILS}
        if o.responders_team:
            config["responders"] = [{"name": o.responders_team, "type": "team"}]
        out["opsgenie_configs"] = [config]
    elif (t := receiver.msteams) is not None:
        out["webhook_configs"] = [_webhook(t.bridge_url, None, resolved)]
    elif (w := receiver.webhook) is not None:
        out["webhook_configs"] = [_webhook(w.url, w.bearer_token_file, resolved)]
    elif (n := receiver.sns) is not None:
        sigv4 = {"region": n.region, **({"role_arn": n.role_arn} if n.role_arn else {})}
        target = {"topic_arn": n.topic_arn} if n.topic_arn else {"phone_number": n.phone_number}
        out["sns_configs"] = [{**target, "sigv4": sigv4, "send_resolved": resolved,
                               "subject": "{{ .CommonAnnotations.summary }}"}]
    elif (m := receiver.sms) is not None:
        out["webhook_configs"] = [_webhook(m.gateway_url, m.bearer_token_file, resolved)]
    return out


def _timings(timing: Timing) -> dict[str, Any]:
    keys = ("group_by", "group_wait", "group_interval", "repeat_interval")
    return {key: getattr(timing, key) for key in keys if getattr(timing, key) is not None}


def route_matchers(route: Route) -> list[str]:
    return [f'{label}="{value}"' for label in ("team", "severity", "model") if (value := getattr(route, label))]


def route_config(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"receiver": route.receiver, "matchers": route_matchers(route)}
    out.update(_timings(route))
    if route.continue_:
        out["continue"] = True
    return out


def action_receivers(alerting: AlertingConfig) -> list[dict[str, Any]]:
    """One webhook receiver per action, at `mlmon act`'s path for it: the receiver says which action
    a group is for, and two actions matching one alert are two groups, each run once."""
    act = alerting.act
    return [
        {"name": receiver_name(a), "webhook_configs": [
            _webhook(act.url + webhook_path(a.name), act.bearer_token_file, True)  # resolutions are counted there
        ]}
        for a in alerting.actions
    ]


def action_route(action: Action) -> dict[str, Any]:
    """First among the routes, with `continue: true`: the human routes after it still get the alert."""
    return {"receiver": receiver_name(action), "matchers": list(action.matchers), **_timings(action), "continue": True}


def inhibit_rules() -> list[dict[str, Any]]:
    muted = [MLMON_ALERTS, f'category=~"{"|".join(MUTED_BY_EXPORTER_DOWN)}"']
    return [
        {   # a critical alert mutes the warning of the same alert and model
            "source_matchers": [MLMON_ALERTS, 'severity="critical"'],
            "target_matchers": [MLMON_ALERTS, 'severity="warning"'],
            "equal": SAME_ALERT,
        },
        {   # a warning mutes the info of the same alert and model (drift grades: docs/drift.md)
            "source_matchers": [MLMON_ALERTS, 'severity="warning"'],
            "target_matchers": [MLMON_ALERTS, 'severity="info"'],
            "equal": SAME_ALERT,
        },
        {   # a down exporter leaves gaps that read as drift or missing traffic in the models it
            # served. The drift and traffic alerts are fleet-wide (no instance label); what they share
            # with ExporterDown is `model`, which ExporterDown carries once per model the pod served.
            "source_matchers": [f'alertname="{EXPORTER_DOWN}"'],
            "target_matchers": muted,
            "equal": ["model"],
        },
        {   # no exporter at all: every model's drift and traffic are gaps
            "source_matchers": [f'alertname="{EXPORTER_ABSENT}"'],
            "target_matchers": muted,
        },
    ]


def alertmanager_config(config: MlmonConfig) -> dict[str, Any]:
    alerting = config.alerting
    if alerting.route is None:
        route: dict[str, Any] = {"receiver": NULL_RECEIVER, "group_by": ["alertname", "model", "model_version"]}
        receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    else:
        route = {"receiver": alerting.route.receiver, **_timings(alerting.route)}
        receivers = [receiver_config(r) for r in alerting.receivers]
    children = [action_route(a) for a in alerting.actions] + [route_config(r) for r in alerting.routes]
    if alerting.actions:
        # An alert matched by an action route only would not reach the root receiver any more (a
        # matching child, even one that continues, replaces its parent): this last route keeps the
        # root's catch-all.
        children.append({"receiver": route["receiver"]})
        receivers += action_receivers(alerting)
    if children:
        route["routes"] = children
    return {"route": route, "receivers": receivers, "inhibit_rules": inhibit_rules()}
