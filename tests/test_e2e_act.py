"""End to end with real processes: drifting traffic -> exporter -> Prometheus (generated rules) ->
Alertmanager 0.25 (generated config) -> `mlmon act` (its own process) -> fake GitHub, Argo and
Kubeflow endpoints.

Alertmanager is set to redeliver every second (repeat_interval 1s), so "exactly one dispatch per
group" is tested against real redeliveries, not only against a payload posted three times
(tests/test_act.py does that too). The example config's human routes stay in place: the drift
alert must still reach them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import yaml

from alert_rules.build import render
from exporter.config.model import MlmonConfig
from exporter.http.server import start
from exporter.tooling.localstack import free_port
from exporter.tooling.stack import StackTiming, local_alerting, run_stack
from support.act import ActProcess, FakeEndpoint
from support.processes import WebhookReceiver, require_binary, wait_until
from tests.conftest import build_config, example_config_data
from tests.test_e2e_alert_path import Traffic

TIMING = StackTiming(drift_windows=("20s",), drift_for="2s", repeat_interval="1s")
CRITICAL_DRIFT = ['alertname="MLMonFeatureDrift"', 'model="fraud"', 'severity="critical"']
FAST_RETRY = {"attempts": 3, "backoff": 0.05, "max_backoff": 0.1, "timeout": 5}


def act_config(fakes: dict[str, FakeEndpoint], port: int, token: Path) -> MlmonConfig:
    data = example_config_data()
    data["alerting"]["act"] = {"url": f"http://127.0.0.1:{port}", "listen": f"127.0.0.1:{port}"}
    data["alerting"]["actions"] = [
        {"name": "retrain", "matchers": CRITICAL_DRIFT,
         "github_dispatch": {"repository": "acme/fraud", "token_file": str(token), "api_url": fakes["github"].url,
                             "event_type": "retrain-${labels.model}"}},
        {"name": "argo", "matchers": CRITICAL_DRIFT,
         "argo_event": {"url": fakes["argo"].url, "namespace": "ml", "discriminator": "retrain-fraud"}},
        {"name": "kfp", "matchers": CRITICAL_DRIFT,
         "kubeflow_run": {"url": fakes["kfp"].url, "pipeline_id": "p-1", "pipeline_version_id": "pv-1",
                          "parameters": {"model": "${labels.model}", "version": "${labels.model_version}"}}},
        {"name": "broken", "matchers": CRITICAL_DRIFT, "retry": FAST_RETRY, "rate_limit": {"runs": 100, "per": "1h"},
         "http_post": {"url": fakes["broken"].url}},
        {"name": "rehearsal", "matchers": CRITICAL_DRIFT, "dry_run": True, "http_post": {"url": fakes["rehearsal"].url}},
    ]
    return build_config(data)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    workdir: Path = tmp_path_factory.mktemp("act-stack")
    fakes = {"github": FakeEndpoint(status=204), "argo": FakeEndpoint(), "kfp": FakeEndpoint(),
             "broken": FakeEndpoint(status=502), "rehearsal": FakeEndpoint()}
    token = workdir / "github-token"
    token.write_text("ghp_e2e\n")
    webhook = WebhookReceiver()
    config = local_alerting(act_config(fakes, free_port(), token), webhook.url, TIMING)
    config_path = workdir / "mlmon.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True, exclude_none=True)))
    act = ActProcess(config_path).wait_ready()
    exporter = start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        with run_stack(config, render, [f"127.0.0.1:{exporter.metrics_port}"], workdir, webhook) as local:
            local.prometheus.wait_for(lambda: local.prometheus.query('up{job="mlmon"} == 1'), what="first scrape")
            yield exporter, local, act, fakes
    finally:
        exporter.stop()
        act.stop()
        for fake in fakes.values():
            fake.close()


def test_a_drift_alert_dispatches_once_per_group_through_alertmanager(stack: tuple[Any, ...]) -> None:
    exporter, local, act, fakes = stack
    with Traffic(exporter.ingest_port) as traffic:
        traffic.drift = 1.0
        wait_until(lambda: fakes["github"].calls, timeout=120, what="the GitHub dispatch")
        # Alertmanager redelivers the firing group every second: three redeliveries, still one dispatch.
        wait_until(lambda: act.metric("mlmon_action_deduplicated_total", action="retrain") >= 3, timeout=60,
                   what="three redeliveries of the group")
        assert [len(fakes[name].calls) for name in ("github", "argo", "kfp")] == [1, 1, 1]
        dispatch = fakes["github"].calls[0]
        assert dispatch.path == "/repos/acme/fraud/dispatches" and dispatch.body["event_type"] == "retrain-fraud"
        assert dispatch.headers["authorization"] == "Bearer ghp_e2e"
        payload = dispatch.body["client_payload"]
        assert payload["receiver"] == "mlmon-act-retrain" and payload["labels"]["model"] == "fraud"
        assert payload["labels"]["severity"] == "critical" and payload["alert_count"] >= 1
        assert fakes["kfp"].calls[0].body["runtime_config"]["parameters"] == {"model": "fraud", "version": "v1"}
        assert fakes["argo"].calls[0].path == "/api/v1/events/ml/retrain-fraud"

        # The human routes still got the alert (the action routes continue).
        wait_until(lambda: {p["receiver"] for p in local.webhook.payloads} >= {"risk-pagerduty", "audit-webhook"},
                   timeout=30, what="the drift alert on the human routes")

        # A failing endpoint: each run tried three times, then counted as failed.
        wait_until(lambda: act.metric("mlmon_action_runs_total", action="broken", result="failed") >= 1, timeout=30,
                   what="a failed run")
        failed = next(r for r in act.runs("broken") if r["result"] == "failed")
        assert failed["attempts"] == 3 and failed["error"].startswith("HTTP 502")
        assert act.metric("mlmon_action_retries_total", action="broken") >= 2

        # Dry run: recorded once per group, nothing called.
        assert fakes["rehearsal"].calls == []
        assert act.metric("mlmon_action_runs_total", action="rehearsal", result="dry_run") == 1

        latencies = [r["call_latency_seconds"] for name in ("retrain", "argo", "kfp") for r in act.runs(name)]
        print(f"\nwebhook-to-call latency through Alertmanager (act's own record), max of {len(latencies)}: "
              f"{max(latencies) * 1000:.1f} ms; p95 {np.percentile(latencies, 95) * 1000:.1f} ms")
        assert float(np.percentile(latencies, 95)) < 1.0

        # The drift ends: Alertmanager sends the resolution, and it triggers nothing.
        traffic.drift = 0.0
        wait_until(lambda: act.metric("mlmon_action_resolved_ignored_total", action="retrain") >= 1, timeout=120,
                   what="the resolved group at mlmon act")
        assert [len(fakes[name].calls) for name in ("github", "argo", "kfp")] == [1, 1, 1]
        assert act.metric("mlmon_action_runs_total", action="retrain", result="success") == 1
