"""The whole alert path on one machine: exporter -> Prometheus -> rules -> Alertmanager -> webhook.

`mlmon demo --stack` and the end-to-end tests run the real binaries (Debian's prometheus and
prometheus-alertmanager) as local processes with the files `mlmon rules build` generates. So that
alerts arrive in minutes, not hours, :func:`local_alerting` rewrites a config for the stack:
every declared receiver becomes a webhook to a local receiver (keeping its name, so you see
which route an alert took), notifications are grouped for a second, and drift is judged over
short windows. This module never imports the rule generator: the CLI hands it a `render`
function (alert_rules.build.render), keeping the exporter package independent of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from exporter.config.model import MlmonConfig, parse_config
from exporter.tooling.localstack import AlertmanagerProcess, PrometheusProcess, WebhookReceiver

Render = Callable[[MlmonConfig], dict[str, str]]
RULE_FILES = ("mlmon_rules.yaml", "mlmon_alerts.yaml")
ALERTMANAGER_FILE = "alertmanager.yml"


@dataclass(frozen=True)
class StackTiming:
    """How fast the local stack reacts; the defaults make a demo's drift alert fire in minutes."""

    drift_windows: tuple[str, ...] = ("1m", "5m")
    drift_for: str = "1m"
    group_wait: str = "1s"
    group_interval: str = "1s"
    repeat_interval: str = "1h"


def local_alerting(config: MlmonConfig, webhook_url: str, timing: StackTiming = StackTiming()) -> MlmonConfig:
    """The config with every receiver pointed at `webhook_url` and the stack's faster timing."""
    data: dict[str, Any] = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    for model in data["models"]:
        model["drift"]["windows"] = list(timing.drift_windows)
    alerting = data.setdefault("alerting", {})
    names = [r["name"] for r in alerting.get("receivers", [])] or ["local"]
    alerting["receivers"] = [{"name": name, "webhook": {"url": webhook_url}} for name in names]
    route = alerting.get("route") or {"receiver": names[0]}
    route.update(group_wait=timing.group_wait, group_interval=timing.group_interval,
                 repeat_interval=timing.repeat_interval)
    alerting["route"] = route
    for child in alerting.get("routes", []):
        for key in ("group_wait", "group_interval", "repeat_interval"):
            child.pop(key, None)
    alerting.setdefault("drift", {})["for"] = timing.drift_for
    return parse_config(data, base_dir=config.base_dir, source="local stack config")


@dataclass
class RunningStack:
    prometheus: PrometheusProcess
    alertmanager: AlertmanagerProcess
    webhook: WebhookReceiver


@contextlib.contextmanager
def run_stack(
    config: MlmonConfig,
    render: Render,
    scrape_targets: list[str],
    workdir: Path,
    webhook: WebhookReceiver,
    prometheus_port: int | None = None,
    alertmanager_port: int | None = None,
) -> Iterator[RunningStack]:
    """Write the generated files for `config`, then run Alertmanager and Prometheus until the block exits."""
    files = render(config)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in (*RULE_FILES, ALERTMANAGER_FILE):
        (workdir / name).write_text(files[name], encoding="utf-8")
    with contextlib.ExitStack() as stack:
        stack.enter_context(webhook)
        alertmanager = stack.enter_context(AlertmanagerProcess(workdir, workdir / ALERTMANAGER_FILE, alertmanager_port))
        prometheus = stack.enter_context(PrometheusProcess(
            workdir, scrape_targets, rule_files=[workdir / name for name in RULE_FILES],
            alertmanager=alertmanager.address, port=prometheus_port,
        ))
        yield RunningStack(prometheus, alertmanager, webhook)


class AlertPrinter:
    """Lines for a person watching the demo: each alert once per change of status.

    A group notification repeats every alert of its group; only what changed is worth a line.
    """

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, payload: dict[str, Any]) -> list[str]:
        fresh = []
        for alert in payload.get("alerts", []):
            key = (str(payload.get("receiver")), str(alert.get("fingerprint")), str(alert.get("status")))
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(alert)
        return describe_payload({**payload, "alerts": fresh})


def describe_payload(payload: dict[str, Any]) -> list[str]:
    """One line per alert in a webhook notification."""
    lines = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        where = ", ".join(f"{k}={labels[k]}" for k in ("model", "model_version", "feature", "window") if k in labels)
        annotations = alert.get("annotations", {})
        summary = annotations.get("summary", "")
        # The model page the alert links (links.exporter_url): where to look next.
        page = f" -> {annotations['page_url']}" if annotations.get("page_url") and alert.get("status") == "firing" else ""
        lines.append(f"  [{payload.get('receiver')}] {alert.get('status', '').upper():8} "
                     f"{labels.get('alertname')} ({labels.get('severity')}) {where}: {summary}{page}")
    return lines

