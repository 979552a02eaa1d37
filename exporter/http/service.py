"""The ingest service both listeners share: the config, the state store and the exporter's own stats.

A request is decoded and prepared whole (every batch typed, checked and summed) before the
state is touched, then applied; so it changes the state for all its accepted records or for
none, and any error answer means nothing was counted.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from exporter.config.model import MlmonConfig
from exporter.http.exporter_stats import ExporterStats
from exporter.http.idempotency import IN_FLIGHT, KEY_PATTERN, AnswerCache
from exporter.ingest import cloudevents
from exporter.ingest.cloudevents import EventStore
from exporter.ingest.columns import reject_type_errors
from exporter.ingest.decode import BodyError, Decoded, decode_body, parse_json
from exporter.ingest.limits import LimitExceeded, check_structure
from exporter.ingest.serving import decode_serving, join, path_version
from exporter.state.prepare import Prepared
from exporter.state.snapshot import Snapshotter
from exporter.state.store import StateStore

Answer = tuple[dict[str, Any], int]


class Exporter:
    """Holds the config, the state and the stats shared by both apps."""

    def __init__(self, config: MlmonConfig, store: StateStore) -> None:
        self.config = config
        self.store = store
        self.stats = ExporterStats([m.name for m in config.models])
        self.answers = AnswerCache(config.exporter.idempotency_keys)
        self.stats.idempotency = self.answers.counts
        limits = config.exporter
        self.events = EventStore(limits.cloudevents_pending, limits.cloudevents_pending_bytes, limits.cloudevents_ttl)
        self.stats.cloudevents = self.events.counts
        self.stats.cloudevents_pending = self.events.__len__
        self.snapshotter: Snapshotter | None = None  # set by the server when exporter.state_dir is configured
        self.ready = True

    def ingest_predictions(self, body: bytes, content_type: str, idempotency_key: str | None = None) -> Answer:
        """Decode, prepare and apply one request; with a key, a retry answers the first answer unapplied."""
        if idempotency_key is None or self.answers.size == 0:
            return self._ingest(body, content_type)
        if not KEY_PATTERN.fullmatch(idempotency_key):
            return {"error": "Idempotency-Key must be 1-200 visible ASCII characters"}, 400
        remembered = self.answers.begin(idempotency_key)
        if remembered == IN_FLIGHT:
            return {"error": "a request with this Idempotency-Key is in flight; retry after it is answered"}, 409
        if remembered is not None:
            return remembered  # type: ignore[return-value]
        try:
            answer, status = self._ingest(body, content_type)
        except BaseException:
            self.answers.abandon(idempotency_key)
            raise
        self.answers.finish(idempotency_key, answer, status)
        return answer, status

    def _ingest(self, body: bytes, content_type: str) -> Answer:
        limits = self.config.exporter
        return self._apply(lambda: decode_body(body, content_type, self.config, limits.max_records_per_request))

    def ingest_serving(self, body: bytes, model: str, version: str | None) -> Answer:
        """A KServe v1 or OIP v2 body holding the request and its response (docs/ingest.md#serving-platforms)."""
        limits = self.config.exporter

        def decode() -> Decoded:
            check_structure(body, limits.max_nesting_depth, limits.max_decoded_bytes)
            return decode_serving(parse_json(body), model, path_version(version, self.config), self.config,
                                  limits.max_records_per_request)

        return self._apply(decode)

    def ingest_cloudevent(self, body: bytes, headers: dict[str, str]) -> Answer:
        """One half of a KServe logger pair (binary CloudEvent); the pair is ingested when both are here."""
        limits = self.config.exporter
        event_id, half = headers.get("ce-id", ""), cloudevents.HALVES.get(headers.get("ce-type", ""))
        if not event_id or half is None:
            return {"error": f"expected Ce-Id and Ce-Type {' or '.join(cloudevents.HALVES)} (binary-mode CloudEvent)"}, 400
        if len(event_id) > limits.max_string_length:  # ids are held until the pair is joined: bounded
            self.stats.limit_hit("string_length")
            return {"error": "Ce-Id is longer than exporter.max_string_length", "limit": "string_length"}, 400
        try:
            check_structure(body, limits.max_nesting_depth, limits.max_decoded_bytes)
        except LimitExceeded as error:
            self.stats.limit_hit(error.limit)
            return error.to_json(), error.status
        attributes = {k: headers[k] for k in ("ce-inferenceservicename", "ce-endpoint") if k in headers}
        pair, attributes = self.events.offer_with(event_id, half, body, time.monotonic(), attributes)
        if pair is None:
            return {"accepted": 0, "rejected": 0, "rejections": [], "pending": True}, 200

        def decode() -> Decoded:
            request, response = parse_json(pair[0]), parse_json(pair[1])
            if not isinstance(request, dict) or not isinstance(response, dict):
                raise BodyError("a KServe logger request and response must each be a JSON object")
            endpoint = attributes.get("ce-endpoint") or None
            version = response.get("model_version") if isinstance(response.get("model_version"), str) else endpoint
            return decode_serving(join(request, response), attributes.get("ce-inferenceservicename", ""),
                                  path_version(version, self.config), self.config, limits.max_records_per_request,
                                  request_id=event_id)

        # KServe's endpoint (default or canary, a closed list) is the arm of the version it served.
        endpoint = attributes.get("ce-endpoint")
        return self._apply(decode, variant=endpoint if endpoint in cloudevents.ENDPOINTS else None)

    def _apply(self, decode: Callable[[], Decoded], variant: str | None = None) -> Answer:
        limits = self.config.exporter
        try:
            decoded = decode()
        except LimitExceeded as error:
            self.stats.limit_hit(error.limit)
            return error.to_json(), error.status
        except BodyError as error:
            return {"error": str(error)}, 400
        if limits.type_errors == "reject":
            reject_type_errors(decoded, limits.max_string_length, parse=False)
        prepared = self.store.prepare(decoded.batches)  # may fail; nothing is changed yet
        admitted, refused = self.store.admit(prepared)   # new versions: allowed, within budget and room?
        for batch, refusal in refused:  # refused before any state changed: its records are rejections
            decoded.rejections.extend(refusal.rejections(batch.batch.indices))
            if refusal.limit is not None:
                self.stats.limit_hit(refusal.limit)
        if variant is not None:  # before apply: shadow pairing reads the arm (cannot fail)
            for state, _ in admitted:
                state.variant = variant
        self.store.apply(admitted)                       # only additions from here on
        too_long = sum(column.too_long for _, batch in admitted for column in batch.columns)
        if too_long:
            self.stats.limit_hit("string_length", too_long)
        answer = self._answer(decoded)
        report = quality_report([batch for _, batch in admitted])
        if report:
            answer["quality"] = report
        return answer, 200 if decoded.records - len(decoded.rejections) or not decoded.records else 422

    def _answer(self, decoded: Decoded) -> dict[str, Any]:
        for rejection in decoded.rejections:
            self.stats.reject(rejection.model, rejection.reason)
        accepted = decoded.records - len(decoded.rejections)
        reported = decoded.rejections[: self.config.exporter.max_reported_rejections]
        answer: dict[str, Any] = {
            "accepted": accepted,
            "rejected": len(decoded.rejections),
            "rejections": [r.to_json() for r in reported],
        }
        if len(decoded.rejections) > len(reported):
            answer["rejections_truncated"] = True
        # 200 when anything was kept; 422 when every record of a non-empty body was rejected.
        return answer


QUALITY_EVENTS = ("type_errors", "null", "missing", "nonfinite", "unknown_features", "out_of_range", "missing_segments")
MAX_EXAMPLES = 5


def quality_report(batches: list[Prepared]) -> dict[str, Any]:
    """Data-quality events of this request's accepted records, with the first few examples; {} when none.

    The same events the mlmon_feature_*_total counters count, said in the answer so the engineer
    integrating a model sees them at once (docs/ingest.md#answers).
    """
    counts = dict.fromkeys(QUALITY_EVENTS, 0)
    examples: list[dict[str, Any]] = []
    for prepared in batches:
        batch = prepared.batch
        names = [f.name for f in batch.model.features] + [batch.model.prediction.name]
        features = prepared.quality_counts[:-1].sum(axis=0)
        counts["missing"] += int(features[0])
        counts["null"] += int(features[1])
        counts["nonfinite"] += int(features[2])
        counts["type_errors"] += int(features[3])
        counts["unknown_features"] += batch.unknown_features
        counts["out_of_range"] += prepared.out_of_range
        counts["missing_segments"] += missing_segments(batch)
        for name, column in zip(names, prepared.columns):
            for row, problem, value in column.examples:
                if len(examples) < MAX_EXAMPLES:
                    examples.append({"index": batch.indices[row], "feature": name, "problem": problem,
                                     "value": ascii(value)[:64]})
    if not any(counts.values()):
        return {}
    return {**{k: v for k, v in counts.items() if v}, "examples": examples}


def missing_segments(batch: Any) -> int:
    """Records of a model with segments whose `segments` lack a configured attribute (they fall in __other__)."""
    attributes = [s.attribute for s in batch.model.segments]
    if not attributes:
        return 0
    return sum(1 for s in batch.segments or [None] * batch.size
               if not isinstance(s, dict) or any(a not in s for a in attributes))
