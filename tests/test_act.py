"""`mlmon act` as a real process, fed Alertmanager webhook payloads directly, calling fake GitHub,
Argo, Kubeflow and plain HTTP endpoints (tests/support/act.py). The path through a real
Prometheus and Alertmanager is tests/test_e2e_act.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import requests

from support.act import ActProcess, FakeEndpoint, webhook, write_act_config
from support.processes import wait_until

FAST_RETRY = {"attempts": 3, "backoff": 0.05, "max_backoff": 0.1, "timeout": 5}
MANY = {"runs": 100, "per": "1h"}  # the default (1 per hour) suits a retrain, not a test of many groups
DRIFT = 'alertname="MLMonFeatureDrift"'


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeEndpoint]]:
    endpoints = {name: FakeEndpoint() for name in ("github", "argo", "kfp", "rehearsal", "fast", "limited")}
    endpoints["flaky"] = FakeEndpoint(fail_first=2)
    endpoints["broken"] = FakeEndpoint(status=500)
    yield endpoints
    for endpoint in endpoints.values():
        endpoint.close()


@pytest.fixture(scope="module")
def act(fakes: dict[str, FakeEndpoint], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActProcess]:
    folder = tmp_path_factory.mktemp("act")
    token = folder / "github-token"
    token.write_text("ghp_test_token\n")
    env_out = folder / "env.txt"
    actions: list[dict[str, Any]] = [
        {"name": "retrain", "rate_limit": MANY, "matchers": [DRIFT, 'severity="critical"'], "retry": FAST_RETRY,
         "github_dispatch": {"repository": "acme/fraud-model", "token_file": str(token), "api_url": fakes["github"].url,
                             "event_type": "retrain-${labels.model}"}},
        {"name": "argo", "rate_limit": MANY, "matchers": [DRIFT, 'model="fraud"'], "retry": FAST_RETRY,
         "argo_event": {"url": fakes["argo"].url, "namespace": "ml", "discriminator": "retrain-fraud",
                        "payload": {"model": "${labels.model}", "feature": "${labels.feature}", "alerts": "${alerts}"}}},
        {"name": "kfp", "rate_limit": MANY, "matchers": [DRIFT], "retry": FAST_RETRY,
         "kubeflow_run": {"url": fakes["kfp"].url, "pipeline_id": "p-1", "pipeline_version_id": "pv-7",
                          "experiment_id": "e-3", "parameters": {"model": "${labels.model}",
                                                                 "version": "${labels.model_version}", "epochs": 3}}},
        {"name": "rehearsal", "rate_limit": MANY, "matchers": [DRIFT], "dry_run": True,
         "http_post": {"url": fakes["rehearsal"].url + "/hook", "body": {"text": "would retrain ${labels.model}"}}},
        {"name": "flaky", "rate_limit": MANY, "matchers": ['alertname="Flaky"'], "retry": FAST_RETRY, "http_post": {"url": fakes["flaky"].url}},
        {"name": "broken", "rate_limit": MANY, "matchers": ['alertname="Broken"'], "retry": FAST_RETRY, "http_post": {"url": fakes["broken"].url}},
        {"name": "unreadable", "rate_limit": MANY, "matchers": ['alertname="Unreadable"'], "retry": FAST_RETRY,
         "http_post": {"url": fakes["fast"].url, "bearer_token_file": str(folder / "missing-token")}},
        {"name": "both-ways", "rate_limit": MANY, "matchers": ['alertname="BothWays"'], "on_resolved": True,
         "dry_run": True, "http_post": {"url": fakes["fast"].url, "body": {"status": "${status}"}}},
        {"name": "fast", "matchers": ['alertname="Latency"'], "rate_limit": {"runs": 1000, "per": "1h"},
         "http_post": {"url": fakes["fast"].url}},
        {"name": "limited", "matchers": ['alertname="Limited"'], "rate_limit": {"runs": 1, "per": "1h"},
         "http_post": {"url": fakes["limited"].url}},
        {"name": "script", "rate_limit": MANY, "matchers": ['alertname="Script"'],
         "command": {"argv": ["sh", "-c", f'env | grep ^MLMON_ | sort > {env_out}; printf "%s" "$MLMON_LABEL_FEATURE" >> {env_out}']}},
    ]
    process = ActProcess(write_act_config(folder, actions)).wait_ready()
    process.env_out = env_out  # type: ignore[attr-defined]
    process.token_path = token  # type: ignore[attr-defined]
    yield process
    process.stop()


def settle(act: ActProcess, action: str, runs: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The action's finished runs once there are `runs` of them."""
    return wait_until(lambda: len(found := act.runs(action)) >= runs and found, timeout=timeout, what=f"{runs} run(s) of {action}")


def run_of(act: ActProcess, action: str, group_key: str, timeout: float = 15) -> dict[str, Any]:
    """The finished run of `action` for this group."""
    return wait_until(lambda: next((r for r in act.runs(action) if r["group_key"] == group_key), None),
                      timeout=timeout, what=f"the run of {action} for {group_key}")


def test_the_same_webhook_three_times_dispatches_once_per_action(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    payload = webhook()
    answers = [act.post(payload).json()["actions"] for _ in range(3)]
    assert answers[0] == {"retrain": "queued", "argo": "queued", "kfp": "queued", "rehearsal": "queued",
                          "flaky": "no_match", "broken": "no_match", "fast": "no_match", "limited": "no_match",
                          "script": "no_match", "unreadable": "no_match", "both-ways": "no_match"}
    assert answers[1]["retrain"] == answers[2]["retrain"] == "duplicate"
    for action in ("retrain", "argo", "kfp"):
        settle(act, action, 1)
    time.sleep(0.5)  # a second dispatch, were there one, would have arrived by now
    assert [len(fakes[n].calls) for n in ("github", "argo", "kfp")] == [1, 1, 1]
    assert act.metric("mlmon_action_deduplicated_total", action="retrain") == 2
    assert act.metric("mlmon_action_runs_total", action="retrain", result="success") == 1


def test_an_alert_joining_a_firing_group_does_not_run_it_again(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    first = webhook(group_key="episode")
    joined = webhook(group_key="episode", starts_at="2026-01-01T00:05:00Z", feature="country")
    both = {**first, "alerts": first["alerts"] + joined["alerts"]}
    assert act.post(first, "retrain").json()["actions"] == {"retrain": "queued"}
    assert act.post(both, "retrain").json()["actions"] == {"retrain": "duplicate"}
    # The first alert resolves; the one that joined keeps the episode going.
    assert act.post(joined, "retrain").json()["actions"] == {"retrain": "duplicate"}
    # All resolved, then the group fires again: a new episode, a new run.
    again = webhook(group_key="episode", starts_at="2026-01-01T02:00:00Z")
    assert act.post(again, "retrain").json()["actions"] == {"retrain": "queued"}


def test_each_kind_sends_the_documented_request(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    act.post(webhook(group_key="kinds"))
    for action in ("retrain", "argo", "kfp"):
        run_of(act, action, "kinds")
    github = wait_until(lambda: [c for c in fakes["github"].calls if c.body["client_payload"]["group_key"] == "kinds"],
                        timeout=10, what="the dispatch")[0]
    assert github.path == "/repos/acme/fraud-model/dispatches"
    assert github.headers["authorization"] == "Bearer ghp_test_token"
    assert github.headers["accept"] == "application/vnd.github+json"
    assert github.body["event_type"] == "retrain-fraud"
    client = github.body["client_payload"]
    assert len(client) <= 10 and client["labels"]["model"] == "fraud" and client["status"] == "firing"
    assert client["alerts"][0]["startsAt"] == "2026-01-01T00:00:00Z"

    argo = fakes["argo"].calls[-1]
    assert argo.path == "/api/v1/events/ml/retrain-fraud"
    assert argo.body["model"] == "fraud" and argo.body["feature"] == "amount" and "authorization" not in argo.headers

    kfp = next(c for c in fakes["kfp"].calls if "group kinds" in c.body["description"])
    assert kfp.path == "/apis/v2beta1/runs"
    assert kfp.body["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "pv-7"}
    assert kfp.body["runtime_config"] == {"parameters": {"model": "fraud", "version": "v1", "epochs": 3}}
    assert kfp.body["experiment_id"] == "e-3" and kfp.body["display_name"].startswith("mlmon MLMonFeatureDrift fraud")


def test_a_record_says_who_triggered_what(act: ActProcess) -> None:
    act.post(webhook(group_key="who"))
    record = run_of(act, "retrain", "who")
    assert record["result"] == "success" and record["receiver"] == "mlmon-act-retrain"
    assert record["external_url"] == "http://alertmanager:9093" and record["remote"] == "127.0.0.1"
    assert record["alertname"] == "MLMonFeatureDrift" and record["labels"]["model"] == "fraud"
    assert record["target"].endswith("/repos/acme/fraud-model/dispatches")
    assert record["request"]["headers"]["Authorization"] == f"<from {act.token_path}>"  # the token itself never
    assert "ghp_test_token" not in requests.get(act.url + "/actions", timeout=5).text
    assert "action retrain (github_dispatch) success" in act.log_text()


def test_resolved_alerts_do_not_trigger(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    before = len(fakes["github"].calls)
    answer = act.post(webhook(group_key="resolved-only", status="resolved"), "retrain").json()
    assert answer["actions"] == {"retrain": "resolved_ignored"}
    time.sleep(0.5)
    assert len(fakes["github"].calls) == before
    assert act.metric("mlmon_action_resolved_ignored_total", action="retrain") >= 1


def test_a_failing_endpoint_is_retried_then_counted_as_failed(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    act.post(webhook(group_key="broken", alertname="Broken"))
    record = settle(act, "broken", 1)[0]
    assert record["result"] == "failed" and record["attempts"] == 3 and record["error"].startswith("HTTP 500")
    assert len(fakes["broken"].calls) == 3
    assert act.metric("mlmon_action_runs_total", action="broken", result="failed") == 1
    assert act.metric("mlmon_action_retries_total", action="broken") == 2
    # A failed run is not remembered: Alertmanager's next redelivery of the group tries again.
    assert act.post(webhook(group_key="broken", alertname="Broken")).json()["actions"]["broken"] == "queued"
    settle(act, "broken", 2)
    assert len(fakes["broken"].calls) == 6


def test_an_unreadable_secret_fails_at_once_without_calling(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    calls = len(fakes["fast"].calls)
    act.post(webhook(group_key="unreadable", alertname="Unreadable"))
    record = settle(act, "unreadable", 1)[0]
    assert record["result"] == "failed" and record["attempts"] == 1 and "missing-token" in record["error"]
    assert len(fakes["fast"].calls) == calls


def test_an_endpoint_that_recovers_succeeds_on_a_retry(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    act.post(webhook(group_key="flaky", alertname="Flaky"))
    record = settle(act, "flaky", 1)[0]
    assert (record["result"], record["attempts"], len(fakes["flaky"].calls)) == ("success", 3, 3)


def test_a_dry_run_action_records_its_request_and_calls_nothing(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    act.post(webhook(group_key="rehearse"))
    record = run_of(act, "rehearsal", "rehearse")
    assert record["result"] == "dry_run" and record["request"]["body"] == {"text": "would retrain fraud"}
    assert fakes["rehearsal"].calls == []
    assert act.metric("mlmon_action_runs_total", action="rehearsal", result="dry_run") >= 1


def test_a_command_gets_the_alert_in_its_environment_and_no_shell_sees_it(act: ActProcess, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    act.post(webhook(group_key="script", alertname="Script", feature=f"$(touch {marker})"))
    record = settle(act, "script", 1)[0]
    assert record["result"] == "success", record
    text = act.env_out.read_text()  # type: ignore[attr-defined]
    assert "MLMON_LABEL_MODEL=fraud" in text and "MLMON_ACTION=script" in text and "MLMON_STATUS=firing" in text
    assert "MLMON_ANNOTATION_SUMMARY=A feature's distribution drifted from its reference." in text
    assert text.endswith(f"$(touch {marker})") and not marker.exists()


def test_the_rate_limit_skips_and_counts(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    answers = [act.post(webhook(group_key=f"limited-{i}", alertname="Limited")).json()["actions"]["limited"]
               for i in range(3)]
    assert answers == ["queued", "rate_limited", "rate_limited"]
    settle(act, "limited", 3)
    assert len(fakes["limited"].calls) == 1
    assert act.metric("mlmon_action_rate_limited_total", action="limited") == 2


def test_bad_webhooks_are_refused_with_the_reason(act: ActProcess) -> None:
    bad = requests.post(act.url + "/v1/alerts", data=b"{not json", timeout=5)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    shapeless = act.post({"groupKey": "g", "status": "firing", "alerts": [{"status": "burning"}]})
    assert shapeless.status_code == 400 and "alerts[0].status" in shapeless.json()["error"]
    unknown = act.post(webhook(), "nope")
    assert unknown.status_code == 404 and "retrain" in unknown.json()["error"]
    assert act.metric("mlmon_action_webhooks_total", result="invalid") >= 2


def test_webhook_to_call_latency_p95_is_under_a_second(act: ActProcess, fakes: dict[str, FakeEndpoint]) -> None:
    latencies = []
    for i in range(30):
        sent = time.monotonic()
        assert act.post(webhook(group_key=f"latency-{i}", alertname="Latency")).status_code == 200
        call = wait_until(lambda: next((c for c in fakes["fast"].calls if c.body["group_key"] == f"latency-{i}"), None),
                          timeout=10, interval=0.005, what="the call")
        latencies.append(call.at - sent)
    p95 = float(np.percentile(latencies, 95))
    print(f"\nwebhook-to-call latency over 30 webhooks: p50 {np.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    assert p95 < 1.0


def test_the_dry_run_flag_calls_nothing_at_all(tmp_path: Path) -> None:
    endpoint = FakeEndpoint()
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "http_post": {"url": endpoint.url}}])
    process = ActProcess(config, "--dry-run").wait_ready()
    try:
        assert process.post(webhook()).json()["actions"] == {"retrain": "queued"}
        assert settle(process, "retrain", 1)[0]["result"] == "dry_run"
        time.sleep(0.3)
        assert endpoint.calls == [] and requests.get(process.url + "/actions", timeout=5).json()["dry_run"] is True
    finally:
        process.stop()
        endpoint.close()


def test_the_dedupe_record_survives_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    endpoint = FakeEndpoint()
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "http_post": {"url": endpoint.url}}],
                              state_dir=str(tmp_path / "state"))
    first = ActProcess(config).wait_ready()
    try:
        first.post(webhook())
        settle(first, "retrain", 1)
    finally:
        first.stop()
    assert (tmp_path / "state" / "actions.json").exists()
    second = ActProcess(config).wait_ready()
    try:
        assert second.post(webhook()).json()["actions"] == {"retrain": "duplicate"}
        assert len(endpoint.calls) == 1
    finally:
        second.stop()
        endpoint.close()


def test_a_bearer_token_guards_the_webhook(tmp_path: Path) -> None:
    token = tmp_path / "act-token"
    token.write_text("s3cret\n")
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "dry_run": True,
                                          "http_post": {"url": "http://127.0.0.1:9/never"}}], bearer_token_file=str(token))
    process = ActProcess(config).wait_ready()
    try:
        assert process.post(webhook()).status_code == 401
        assert process.post(webhook(), headers={"Authorization": "Bearer s3cret"}).status_code == 200
    finally:
        process.stop()


def test_sighup_does_not_stop_it_and_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    import signal

    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "dry_run": True,
                                          "http_post": {"url": "http://127.0.0.1:9/never"}}])
    process = ActProcess(config).wait_ready()
    process.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert process.proc.poll() is None and requests.get(process.url + "/healthz", timeout=5).status_code == 200
    assert process.stop() == 0
    assert "does not reload" in process.log_path.read_text()


def test_basic_auth_from_a_web_config_file_guards_every_path_but_the_probes(tmp_path: Path) -> None:
    import bcrypt
    import yaml

    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"alertmanager": bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()}}))
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "dry_run": True,
                                          "http_post": {"url": "http://127.0.0.1:9/never"}}])
    process = ActProcess(config, "--web.config.file", str(web)).wait_ready()
    try:
        assert process.post(webhook()).status_code == 401
        assert requests.get(process.url + "/actions", timeout=5).status_code == 401
        assert process.post(webhook(), auth=("alertmanager", "pw")).json()["actions"] == {"retrain": "queued"}
    finally:
        process.stop()


def test_the_state_dir_flag_wins_over_the_config(tmp_path: Path) -> None:
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "dry_run": True,
                                          "http_post": {"url": "http://127.0.0.1:9/never"}}],
                              state_dir=str(tmp_path / "from-config"))
    process = ActProcess(config, "--state-dir", str(tmp_path / "from-flag")).wait_ready()
    try:
        process.post(webhook())
    finally:
        process.stop()
    assert (tmp_path / "from-flag" / "actions.json").exists() and not (tmp_path / "from-config").exists()


def test_on_resolved_runs_once_when_the_whole_group_has_resolved(act: ActProcess) -> None:
    first = webhook(group_key="both", alertname="BothWays")
    second = webhook(group_key="both", alertname="BothWays", feature="country", starts_at="2026-01-01T00:01:00Z")
    resolved = [{**a, "status": "resolved"} for a in first["alerts"] + second["alerts"]]

    def post(alerts: list[dict[str, Any]]) -> str:
        return act.post({**first, "alerts": alerts}, "both-ways").json()["actions"]["both-ways"]

    assert post(first["alerts"] + second["alerts"]) == "queued"
    assert post([resolved[0]] + second["alerts"]) == "duplicate"  # one resolved, one still firing: the same episode
    assert post(resolved) == "queued"  # all resolved: the resolution's own run
    assert post(resolved) == "duplicate"
    runs = wait_until(lambda: len(found := act.runs("both-ways")) == 2 and found, timeout=10, what="two runs")
    assert [r["request"]["body"]["status"] for r in runs] == ["resolved", "firing"]  # newest first


def test_signals_the_kernel_gives_to_a_thread_numpy_started_reach_the_main_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `mlmon serve` (tests/test_server_signals.py): neither SIGHUP nor SIGTERM kills it from a foreign thread."""
    import ctypes
    import signal

    from tests.test_server_signals import threads_taking_sigterm

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    config = write_act_config(tmp_path, [{"name": "retrain", "matchers": [DRIFT], "dry_run": True,
                                          "http_post": {"url": "http://127.0.0.1:9/never"}}])
    process = ActProcess(config).wait_ready()
    try:
        [foreign, *_] = threads_taking_sigterm(process.proc.pid)
        tgkill = ctypes.CDLL(None, use_errno=True).tgkill
        assert tgkill(process.proc.pid, foreign, signal.SIGHUP) == 0
        wait_until(lambda: "does not reload" in process.log_text(), timeout=10, what="the SIGHUP warning")
        assert process.proc.poll() is None
        assert tgkill(process.proc.pid, foreign, signal.SIGTERM) == 0
        assert process.proc.wait(timeout=15) == 0, process.log_text()
    finally:
        process.stop()
