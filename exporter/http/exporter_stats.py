"""The exporter's own health: requests, bytes, rejections by reason, limits hit, scrape time."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from exporter import catalog as c
from exporter.ingest.decode import REJECTION_REASONS, UNKNOWN_MODEL_LABEL
from exporter.state.reference_switch import SWITCH_RESULTS, ReferenceSwitches

if TYPE_CHECKING:
    from exporter.http.exposition import Exposition
    from exporter.state.store import StateStore

log = logging.getLogger("mlmon")

LIMITS = (
    "request_bytes", "records_per_request", "versions_per_model", "new_versions_per_minute", "label_value_length",
    "nesting_depth", "decoded_bytes", "string_length",
)
# The HTTP server's own limits (exporter/http/protocol.py, listener.py; docs/security.md).
SERVER_LIMITS = ("connections", "header_timeout", "header_bytes", "body_timeout", "inflight_request_bytes")
LIMITS += SERVER_LIMITS
ENDPOINTS = ("predictions", "labels")


class ExporterStats:
    """Counters with bounded label sets: endpoints, codes, reasons and limits are closed lists."""

    def __init__(self, models: list[str]) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bytes: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.limits: Counter[str] = Counter({limit: 0 for limit in LIMITS})
        self.models = models
        self.scrape_seconds = 0.0
        self.idempotency: Counter[str] = Counter()  # the AnswerCache's counts (http/idempotency.py)
        self.cloudevents: Counter[str] = Counter()  # the EventStore's counts (ingest/cloudevents.py)
        self.cloudevents_pending = lambda: 0
        self.references = ReferenceSwitches()  # reference promotes and capture resets (docs/reference.md)

    def request(self, endpoint: str, code: int, size: int) -> None:
        with self.lock:
            self.requests[(endpoint, str(code))] += 1
            self.bytes[endpoint] += size

    def reject(self, model: str, reason: str, count: int = 1) -> None:
        with self.lock:
            self.rejected[(model, reason)] += count

    def limit_hit(self, limit: str, count: int = 1) -> None:
        with self.lock:
            self.limits[limit] += count
            hits = self.limits[limit]
        # Log the 1st, 10th, 100th... hit: enough to notice in the log, never a flood.
        if str(hits).rstrip("0") == "1":
            log.warning("limit %s hit (%d time(s) so far; see mlmon_limit_hits_total)", limit, hits)

    def collect(self, out: Exposition, store: StateStore) -> None:
        with self.lock:
            for (endpoint, code), value in sorted(self.requests.items()):
                out.add_one(c.INGEST_REQUESTS, (endpoint, code), value)
            for endpoint in ENDPOINTS:
                out.add_one(c.INGEST_BYTES, (endpoint,), self.bytes[endpoint])
            # Every model/reason pair is exported from zero so rate() sees the first rejection.
            for model in [*self.models, UNKNOWN_MODEL_LABEL]:
                for reason in REJECTION_REASONS:
                    out.add_one(c.RECORDS_REJECTED, (model, reason), self.rejected[(model, reason)])
            # Two limits are enforced elsewhere and counted there; they are summed in here so that
            # one family answers "was any limit hit?". versions_per_model counts evictions (here) and
            # newcomers refused because no held version was idle long enough (limit_hit).
            hits = dict(self.limits)
            hits["label_value_length"] = sum(v for (_, r), v in self.rejected.items() if r == "model_version_too_long")
            hits["string_length"] += sum(v for (_, r), v in self.rejected.items() if r == "value_too_long")
            hits["versions_per_model"] += sum(store.evictions.values())  # evictions, plus newcomers refused
            for limit in LIMITS:
                out.add_one(c.LIMIT_HITS, (limit,), hits[limit])
        for model, evicted in store.evictions.items():
            out.add_one(c.VERSIONS_EVICTED, (model,), evicted)
        out.add_one(c.SCRAPE_DURATION, (), self.scrape_seconds)

        for outcome, value in sorted(dict(self.idempotency).items()):
            out.add_one(c.IDEMPOTENCY_KEYS, (outcome,), value)
        for outcome, value in sorted(dict(self.cloudevents).items()):
            out.add_one(c.CLOUDEVENTS, (outcome,), value)
        out.add_one(c.CLOUDEVENTS_PENDING, (), self.cloudevents_pending())
        with self.references.lock:  # every configured model and result from zero, so rate() sees the first
            switches = dict(self.references.counts)
        for model in self.models:
            for result in SWITCH_RESULTS:
                out.add_one(c.REFERENCE_SWITCHES, (model, result), switches.get((model, result), 0))
