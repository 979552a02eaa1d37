"""Two `mlmon act` replicas sharing one real Redis (alerting.act.redis): an alert group delivered to
both runs once, the rate limit holds for the fleet, a failed run on one is run again by the other,
either lists the fleet's runs, and while Redis is away the webhook gets 503 so Alertmanager
delivers it again."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from exporter.actions.records import RunRecord
from exporter.actions.shared import RedisCalls, RedisDedupeRecord, RedisRunLog
from exporter.config.actions import ActRedis
from support.act import ActProcess, FakeEndpoint, webhook, write_act_config
from support.processes import wait_until
from support.redis_server import RedisServer

FAST_RETRY = {"attempts": 2, "backoff": 0.05, "max_backoff": 0.1, "timeout": 5}


def run_record(group: str) -> RunRecord:
    return RunRecord(action="retrain", kind="http_post", result="success", group_key=group, receiver="mlmon-act-retrain",
                     external_url="http://am", remote="10.0.0.1", alertname="MLMonFeatureDrift", labels={},
                     alert_count=1, starts_at="t0", received_at="t1", replica="act-0")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def endpoints() -> Iterator[dict[str, FakeEndpoint]]:
    found = {"ok": FakeEndpoint(), "limited": FakeEndpoint(), "broken": FakeEndpoint(status=500)}
    yield found
    for endpoint in found.values():
        endpoint.close()


def replicas(tmp_path: Path, server: RedisServer, endpoints: dict[str, FakeEndpoint], count: int = 2) -> list[ActProcess]:
    actions: list[dict[str, Any]] = [
        {"name": "retrain", "matchers": ['alertname="MLMonFeatureDrift"'], "rate_limit": {"runs": 100, "per": "1h"},
         "retry": FAST_RETRY, "http_post": {"url": endpoints["ok"].url}},
        {"name": "limited", "matchers": ['alertname="Limited"'], "rate_limit": {"runs": 2, "per": "1h"},
         "http_post": {"url": endpoints["limited"].url}},
        {"name": "broken", "matchers": ['alertname="Broken"'], "rate_limit": {"runs": 100, "per": "1h"},
         "retry": FAST_RETRY, "http_post": {"url": endpoints["broken"].url}},
    ]
    started = []
    for i in range(count):
        folder = tmp_path / f"replica-{i}"
        folder.mkdir()
        config = write_act_config(folder, actions, redis={"url": server.url, "timeout": 0.5})
        started.append(ActProcess(config).wait_ready())
    return started


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer, endpoints: dict[str, FakeEndpoint]) -> Iterator[list[ActProcess]]:
    started = replicas(tmp_path, redis_server, endpoints)
    yield started
    for process in started:
        process.stop()


def test_a_group_delivered_to_both_replicas_at_once_runs_once(pair: list[ActProcess], endpoints: dict[str, FakeEndpoint]) -> None:
    """An Alertmanager HA pair delivers each group from both peers; behind one Service they land anywhere."""
    answers: list[str] = []
    payload = webhook(group_key="ha-pair")

    def deliver(process: ActProcess) -> None:
        for _ in range(10):
            answers.append(process.post(payload, "retrain").json()["actions"]["retrain"])

    threads = [threading.Thread(target=deliver, args=(p,)) for p in pair for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(answers)) == ["duplicate", "queued"] and answers.count("queued") == 1, answers
    wait_until(lambda: len(endpoints["ok"].calls) >= 1, timeout=15, what="the run")
    time.sleep(0.5)  # a second run, were there one, would have arrived by now
    assert len(endpoints["ok"].calls) == 1
    assert sum(p.metric("mlmon_action_deduplicated_total", action="retrain") for p in pair) == 39


def test_the_rate_limit_holds_for_the_fleet(pair: list[ActProcess], endpoints: dict[str, FakeEndpoint]) -> None:
    answers = [pair[i % 2].post(webhook(group_key=f"g{i}", alertname="Limited"), "limited").json()["actions"]["limited"]
               for i in range(6)]
    assert answers == ["queued", "queued", "rate_limited", "rate_limited", "rate_limited", "rate_limited"]
    wait_until(lambda: len(endpoints["limited"].calls) >= 2, timeout=15, what="the two runs")
    assert [p.metric("mlmon_action_rate_limited_total", action="limited") for p in pair] == [2, 2]
    # A rate-limited group was not remembered: once budget returns, its redelivery runs.
    assert pair[0].metric("mlmon_action_dedupe_keys") == 2


def test_a_run_that_failed_on_one_replica_runs_again_on_the_other(pair: list[ActProcess],
                                                                  endpoints: dict[str, FakeEndpoint]) -> None:
    payload = webhook(group_key="flaky-group", alertname="Broken")
    assert pair[0].post(payload, "broken").json()["actions"] == {"broken": "queued"}
    wait_until(lambda: any(r["result"] == "failed" for r in pair[0].runs("broken")), timeout=15, what="the failed run")
    assert pair[1].post(payload, "broken").json()["actions"] == {"broken": "queued"}  # forgotten for the whole fleet
    # The run list is the fleet's: the second failure is listed by both replicas.
    wait_until(lambda: [r["result"] for r in pair[0].runs("broken")] == ["failed", "failed"], timeout=15,
               what="the second run")
    assert len(endpoints["broken"].calls) == 4  # two runs of two tries


def test_every_replica_lists_the_runs_of_the_whole_fleet_newest_first(pair: list[ActProcess],
                                                                      endpoints: dict[str, FakeEndpoint]) -> None:
    for i, process in enumerate(pair * 2):
        assert process.post(webhook(group_key=f"group-{i}"), "retrain").json()["actions"] == {"retrain": "queued"}
        wait_until(lambda: len(pair[0].runs()) == i + 1, timeout=15, what=f"run {i}")
    answers = [requests.get(f"{p.url}/actions", params={"limit": 3}, timeout=5).json() for p in pair]
    assert answers[0] == answers[1] and answers[0]["scope"] == "fleet"
    assert [r["group_key"] for r in answers[0]["runs"]] == ["group-3", "group-2", "group-1"]
    assert {r["replica"] for r in answers[0]["runs"]} == {socket.gethostname()}
    assert [r["result"] for r in pair[1].runs("retrain")] == ["success"] * 4
    assert pair[1].runs("limited") == []


def test_a_record_redis_did_not_take_is_counted_and_still_listed_by_its_replica(redis_server: RedisServer) -> None:
    calls = RedisCalls(ActRedis(url=redis_server.url, timeout=0.5))
    unshared: list[int] = []
    runs = RedisRunLog(2, calls, on_unshared=lambda: unshared.append(1))
    for group in ("a", "b", "c"):
        runs.add(run_record(group))
    assert runs.listing() == {"scope": "fleet", "runs": [run_record(g).as_json() for g in ("c", "b")]}  # capacity 2
    redis_server.kill()
    runs.add(run_record("d"))
    assert unshared == [1]
    away = runs.listing(limit=1)
    assert away["scope"] == "replica" and redis_server.url in away["error"]
    assert away["runs"] == [run_record("d").as_json()]


def test_while_redis_is_away_the_webhook_gets_503_and_the_redelivery_runs_once_it_is_back(
        pair: list[ActProcess], redis_server: RedisServer, endpoints: dict[str, FakeEndpoint]) -> None:
    payload = webhook(group_key="outage")
    redis_server.kill()
    answer = pair[0].post(payload, "retrain")
    assert answer.status_code == 503 and answer.json()["actions"] == {"retrain": "unavailable"}
    assert pair[0].metric("mlmon_action_webhooks_total", result="unavailable") == 1
    assert pair[0].metric("mlmon_action_dedupe_keys") == 0  # the gauge reads 0, the scrape still answers
    redis_server.restart()
    wait_until(lambda: pair[1].post(payload, "retrain").status_code == 200, timeout=15, what="Redis back")
    assert pair[0].post(payload, "retrain").json()["actions"] == {"retrain": "duplicate"}
    wait_until(lambda: len(endpoints["ok"].calls) >= 1, timeout=15, what="the run")
    time.sleep(0.5)
    assert len(endpoints["ok"].calls) == 1


def test_the_shared_record_keeps_the_newest_keys_and_counts_every_eviction(redis_server: RedisServer) -> None:
    """The same story as the process's own record (test_act_parts.py), told to two records on one Redis."""
    calls = RedisCalls(ActRedis(url=redis_server.url))
    evicted: list[int] = []
    first = RedisDedupeRecord(3, calls, on_evict=lambda: evicted.append(1))
    second = RedisDedupeRecord(3, RedisCalls(ActRedis(url=redis_server.url)))

    def key(group: str, start: str = "t0") -> str:
        return f"retrain\x1f{group}\x1f{start}\x1ffiring"

    assert first.claim([key("a")]) and second.claim([key("b")]) and first.claim([key("c")])
    assert not second.claim([key("a")])  # seen by the other replica: a redelivery
    assert first.claim([key("d"), key("d", "t1")])  # two new keys push out the two oldest (b, c; a was refreshed)
    assert len(evicted) == 2 and len(first) == len(second) == 3
    assert second.claim([key("b")])  # b was evicted: a new event again
    # A failed group is forgotten with the keys that joined it meanwhile, and nothing else.
    assert not first.claim([key("d"), key("d", "t2")])
    first.release_group("retrain\x1fd\x1f")
    assert first.claim([key("d")]) and not first.claim([key("b")])
    # Released keys (a run that never started) run again.
    first.release([key("d")])
    assert second.claim([key("d")])
