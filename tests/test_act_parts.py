"""The small parts of `mlmon act` on their own: the dedupe record (bounded, evictions counted,
written whole, a bad file survived), the sliding rate limit, and its metrics under promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

from exporter.actions.dedupe import DedupeRecord
from exporter.actions.metrics import ActMetrics
from exporter.actions.ratelimit import RateLimit
from support.processes import require_binary


def test_the_dedupe_record_keeps_the_newest_keys_and_counts_every_eviction(tmp_path: Path) -> None:
    evicted: list[int] = []
    record = DedupeRecord(3, tmp_path / "actions.json", on_evict=lambda: evicted.append(1))
    assert record.claim(["a"]) and record.claim(["b"]) and record.claim(["c"])
    assert not record.claim(["a"])  # seen: a redelivery
    assert record.claim(["d", "e"])  # two new keys push out the two oldest (b, c; a was refreshed)
    assert list(record.keys) == ["a", "d", "e"] and len(evicted) == 2 and record.evictions == 2
    reread = DedupeRecord(3, tmp_path / "actions.json")
    assert list(reread.keys) == ["a", "d", "e"]
    assert not reread.claim(["d", "new"])  # any seen key: the same episode, whose new key is remembered
    assert "new" in reread.keys


def test_a_released_key_runs_again(tmp_path: Path) -> None:
    record = DedupeRecord(10, tmp_path / "actions.json")
    assert record.claim(["a", "b"])
    record.release(["a", "b"])
    assert record.claim(["a", "b"])


def test_an_unreadable_record_starts_empty_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "actions.json"
    for text in ("{not json", '{"format": 99, "keys": []}', "[]"):
        path.write_text(text)
        assert len(DedupeRecord(10, path)) == 0
    smaller = tmp_path / "big.json"
    big = DedupeRecord(10, smaller)
    for key in "abcdefghij":
        big.claim([key])
    assert list(DedupeRecord(4, smaller).keys) == list("ghij")  # a smaller capacity keeps the newest


def test_rate_limit_periods_read_alertmanager_durations() -> None:
    from exporter.config.alert_types import am_duration_seconds

    assert [am_duration_seconds(t) for t in ("30s", "6h", "1h30m", "1d", "2w")] == [30, 21600, 5400, 86400, 1209600]


def test_the_rate_limit_is_a_sliding_window() -> None:
    limit = RateLimit(2, 60)
    assert limit.take(0) == 0 and limit.take(10) == 10 and limit.take(59) is None
    assert limit.take(60.5) == 60.5 and limit.take(61) is None  # the run at 0 left the window; the one at 10 has not
    limit.give_back(60.5)
    assert limit.take(61) == 61


def test_act_metrics_pass_promtool_check_metrics(tmp_path: Path) -> None:
    metrics = ActMetrics(["retrain", "argo"])
    metrics.runs.labels("retrain", "success").inc()
    metrics.duration.labels("retrain").observe(0.2)
    text = metrics.render()
    assert b"_created" not in text and b'mlmon_action_runs_total{action="argo",result="failed"} 0.0' in text
    result = subprocess.run([require_binary("promtool"), "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_record_keeps_at_most_16_kib_of_a_large_request() -> None:
    from exporter.actions.receiver import RECORD_REQUEST_BYTES, bounded

    small = {"body": {"a": 1}}
    assert bounded(small) is small
    large = bounded({"body": {"alerts": ["x" * 100] * 1000}})
    assert isinstance(large, str) and len(large) < RECORD_REQUEST_BYTES + 100 and large.endswith("bytes in all)")


def test_a_command_keeps_the_tail_of_its_output_and_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    from exporter.actions.kinds.calls import OUTPUT_TAIL, CommandCall

    chatty = CommandCall(("sh", "-c", "head -c 3000000 /dev/zero | tr '\\\\0' a; echo; echo last line"), {})
    outcome = chatty.perform(30)
    assert outcome.ok and len(outcome.output) == OUTPUT_TAIL and outcome.output.endswith("last line\n")
    marker = tmp_path / "child-survived"
    slow = CommandCall(("sh", "-c", f"(sleep 2; touch {marker}) & sleep 30"), {})
    outcome = slow.perform(0.5)
    assert not outcome.ok and outcome.retryable and outcome.detail == "timed out after 0.5 s"
    import time

    time.sleep(2.5)
    assert not marker.exists()  # the whole process group was stopped, its children too
    failing = CommandCall(("sh", "-c", "echo broken >&2; exit 3"), {"X": "1"}).perform(5)
    assert (failing.ok, failing.detail, failing.output) == (False, "exit status 3", "broken\n")
    missing = CommandCall(("/nonexistent/program",), {}).perform(5)
    assert not missing.ok and not missing.retryable and "cannot start" in missing.detail


def test_a_failed_group_is_forgotten_with_the_keys_that_joined_it_meanwhile(tmp_path: Path) -> None:
    record = DedupeRecord(10)
    assert record.claim(["retrain\x1fg1\x1ft0\x1ffiring"]) and record.claim(["retrain\x1fg2\x1ft0\x1ffiring"])
    assert not record.claim(["retrain\x1fg1\x1ft0\x1ffiring", "retrain\x1fg1\x1ft1\x1ffiring"])  # joined
    record.release_group("retrain\x1fg1\x1f")
    assert list(record.keys) == ["retrain\x1fg2\x1ft0\x1ffiring"]
