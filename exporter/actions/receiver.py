"""What happens to a webhook: parse, select per action, dedupe, rate-limit, queue; workers run the calls.

The webhook is answered as soon as its runs are queued (Alertmanager waits for no action and
never times out on a slow pipeline API); a full queue answers 503, so Alertmanager delivers
again later. Every step that skips a run is counted; every run is logged and kept for
`GET /actions` with who sent the webhook and what was called.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from exporter.actions.alerts import BadPayload, parse_delivery
from exporter.actions.dedupe import FILE_NAME, DedupeRecord
from exporter.actions.kinds import BUILDERS
from exporter.actions.kinds.calls import CommandCall, HttpCall, Outcome
from exporter.actions.matching import Selection, select
from exporter.actions.metrics import ActMetrics
from exporter.actions.ratelimit import RateLimit
from exporter.actions.shared import RedisCalls, RedisDedupeRecord, RedisRateLimit, RedisRunLog, SharedStateUnavailable
from exporter.actions.records import RunLog, RunRecord
from exporter.config.actions import Action
from exporter.config.alert_types import am_duration_seconds
from exporter.config.model import MlmonConfig

log = logging.getLogger("mlmon.act")


def state_path(config: MlmonConfig) -> Path | None:
    """alerting.act.state_dir, else exporter.state_dir (resolved against the config's folder), else None."""
    folder = config.alerting.act.state_dir or config.exporter.state_dir
    return None if folder is None else (config.base_dir / folder).resolve() / FILE_NAME


RECORD_REQUEST_BYTES = 16384  # what a record keeps of a request: records x this bounds their memory


def bounded(request: dict[str, Any]) -> Any:
    """The request as sent, or, when large (a payload of hundreds of alerts), its first 16 KiB as text."""
    text = orjson.dumps(request)
    if len(text) <= RECORD_REQUEST_BYTES:
        return request
    return f"{text[:RECORD_REQUEST_BYTES].decode('utf-8', 'replace')}... ({len(text)} bytes in all)"


@dataclass
class Job:
    selection: Selection
    call: HttpCall | CommandCall
    record: RunRecord
    received: float  # time.monotonic() at the webhook's arrival
    dry_run: bool


class ActReceiver:
    def __init__(self, config: MlmonConfig, dry_run: bool = False) -> None:
        act = config.alerting.act
        self.config = config
        self.actions: dict[str, Action] = {a.name: a for a in config.alerting.actions}
        self.dry_run = dry_run or act.dry_run
        self.metrics = ActMetrics(list(self.actions))
        self.dedupe: DedupeRecord | RedisDedupeRecord
        self.limits: dict[str, RateLimit] | dict[str, RedisRateLimit]
        self.runs: RunLog | RedisRunLog
        evicted = self.metrics.dedupe_evictions.inc
        if act.redis is not None:  # shared by every act replica (actions/shared.py)
            calls = RedisCalls(act.redis)
            self.dedupe = RedisDedupeRecord(act.dedupe_entries, calls, on_evict=evicted)
            self.limits = {a.name: RedisRateLimit(a.name, a.rate_limit.runs, am_duration_seconds(a.rate_limit.per), calls)
                           for a in self.actions.values()}
            self.runs = RedisRunLog(act.records, calls, on_unshared=self.metrics.records_unshared.inc)
        else:
            self.dedupe = DedupeRecord(act.dedupe_entries, state_path(config), on_evict=evicted)
            self.limits = {a.name: RateLimit(a.rate_limit.runs, am_duration_seconds(a.rate_limit.per))
                           for a in self.actions.values()}
            self.runs = RunLog(act.records)
        self.replica = socket.gethostname()
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=act.queue)
        self.stopping = threading.Event()
        self.workers = [threading.Thread(target=self._work, name=f"mlmon-act-{i}", daemon=True) for i in range(act.workers)]
        for worker in self.workers:
            worker.start()
        self.metrics.dedupe_keys.set_function(lambda: len(self.dedupe))

    # -- the webhook --------------------------------------------------------------------------
    def receive(self, body: bytes, action_name: str | None, remote: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one webhook; `action_name` from the path, None for all actions."""
        received, wall = time.monotonic(), datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if action_name is not None and action_name not in self.actions:
            self.metrics.webhooks.labels("unknown_action").inc()
            return 404, {"error": f"no action named {action_name!r}; actions: {', '.join(self.actions) or 'none'}"}
        try:
            delivery = parse_delivery(body)
        except BadPayload as error:
            self.metrics.webhooks.labels("invalid").inc()
            return 400, {"error": f"not an Alertmanager webhook payload: {error}"}
        chosen = [self.actions[action_name]] if action_name is not None else list(self.actions.values())
        outcomes: dict[str, str] = {}
        for action in chosen:
            selection = select(action, delivery)
            if selection is None:
                outcomes[action.name] = "no_match"
            elif "unavailable" in outcomes.values():  # the shared Redis did not answer: 503 anyway, wait no longer
                outcomes[action.name] = "unavailable"
            else:
                outcomes[action.name] = self._consider(selection, remote, received, wall)
        refused = next((o for o in ("unavailable", "busy") if o in outcomes.values()), None)
        self.metrics.webhooks.labels(refused or "accepted").inc()
        return (503 if refused else 200), {"actions": outcomes}

    def _consider(self, selection: Selection, remote: str, received: float, wall: str) -> str:
        action = selection.action
        if selection.resolved_only:
            self.metrics.resolved_ignored.labels(action.name).inc()
            return "resolved_ignored"
        keys = selection.keys()
        try:
            return self._claim_and_queue(selection, keys, remote, received, wall)
        except SharedStateUnavailable:  # 503: Alertmanager delivers again; nothing ran, nothing is lost
            return "unavailable"

    def _claim_and_queue(self, selection: Selection, keys: list[str], remote: str, received: float, wall: str) -> str:
        action = selection.action
        if not self.dedupe.claim(keys):
            self.metrics.deduplicated.labels(action.name).inc()
            log.debug("action %s: group %s already ran for these alerts (redelivery)", action.name, selection.delivery.group_key)
            return "duplicate"
        context = selection.context()
        record = RunRecord(
            action=action.name, kind=action.kind, result="", group_key=selection.delivery.group_key,
            receiver=selection.delivery.receiver, external_url=selection.delivery.external_url, remote=remote,
            alertname=context["labels"].get("alertname", ""), labels=context["labels"], alert_count=len(selection.alerts),
            starts_at=context["starts_at"], received_at=wall, replica=self.replica,
        )
        try:
            token = self.limits[action.name].take()
        except SharedStateUnavailable:
            self.dedupe.release(keys)  # not run: the redelivery after the 503 tries again
            raise
        if token is None:
            self.dedupe.release(keys)  # not run: Alertmanager's next redelivery may run it when the budget allows
            self.metrics.rate_limited.labels(action.name).inc()
            record.result = "rate_limited"
            self.runs.add(record)
            log.warning("action %s: rate limit (%d per %s) reached; group %s not run", action.name,
                        action.rate_limit.runs, action.rate_limit.per, selection.delivery.group_key)
            return "rate_limited"
        call = BUILDERS[action.kind](action.spec, context)
        record.target, record.request = call.target, bounded(call.describe())
        job = Job(selection, call, record, received, self.dry_run or action.dry_run)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            self.dedupe.release(keys)
            self.limits[action.name].give_back(token)
            log.warning("action %s: the run queue is full (alerting.act.queue=%d); answering 503", action.name,
                        self.config.alerting.act.queue)
            return "busy"
        return "queued"

    # -- the workers --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self._run(job)
            except Exception:  # a bug must not kill the worker: the run counts as failed
                log.exception("action %s: run crashed", job.selection.action.name)
                self._finish(job, Outcome(False, False, "internal error (see the log)"), 0)

    def _run(self, job: Job) -> None:
        action = job.selection.action
        if job.dry_run:
            job.record.call_latency_seconds = 0.0
            self._finish(job, Outcome(True, False, "dry run: nothing called"), 0, result="dry_run")
            return
        retry, outcome, attempts = action.retry, Outcome(False, False, "not tried"), 0
        for attempt in range(retry.attempts):
            if attempt:
                self.metrics.retries.labels(action.name).inc()
                if self.stopping.wait(min(retry.backoff * 2 ** (attempt - 1), retry.max_backoff)):
                    break
            elif job.record.call_latency_seconds is None:
                job.record.call_latency_seconds = round(time.monotonic() - job.received, 4)
            attempts += 1
            outcome = job.call.perform(retry.timeout)
            if outcome.ok or not outcome.retryable:
                break
            log.info("action %s: try %d of %d failed (%s)", action.name, attempts, retry.attempts, outcome.detail)
        if not outcome.ok:
            try:
                self.dedupe.release_group(job.selection.group_prefix)  # the next redelivery of the group tries again
            except SharedStateUnavailable:  # logged; the group's keys stay, so redeliveries count as duplicates
                log.error("action %s: could not forget failed group %s; it runs again once its keys are evicted",
                          action.name, job.selection.delivery.group_key)
        self._finish(job, outcome, attempts)

    def _finish(self, job: Job, outcome: Outcome, attempts: int, result: str | None = None) -> None:
        action, record = job.selection.action, job.record
        result = result or ("success" if outcome.ok else "failed")
        elapsed = time.monotonic() - job.received
        record.result, record.attempts, record.duration_seconds = result, attempts, round(elapsed, 4)
        record.error = "" if outcome.ok else outcome.detail
        record.output = outcome.output
        self.metrics.runs.labels(action.name, result).inc()
        self.metrics.duration.labels(action.name).observe(elapsed)
        self.runs.add(record)
        level = logging.WARNING if result == "failed" else logging.INFO
        log.log(level, "action %s (%s) %s: %s %s after %d try(ies) in %.2f s; %s %s, group %s, from %s via %s",
                action.name, action.kind, result, record.target, outcome.detail, attempts, elapsed,
                record.alertname, ",".join(f"{k}={v}" for k, v in record.labels.items() if k != "alertname"),
                record.group_key, record.remote, record.receiver)

    def stop(self, grace: float = 5.0) -> None:
        """Let queued runs finish within `grace` seconds; waits between retries end at once."""
        self.stopping.set()
        for _ in self.workers:
            try:
                self.jobs.put(None, timeout=grace)
            except queue.Full:
                break
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.join(max(deadline - time.monotonic(), 0))
