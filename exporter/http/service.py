"""The ingest service both listeners share: the config, the state store and the exporter's own stats."""

from __future__ import annotations

from typing import Any

from exporter.config.model import MlmonConfig
from exporter.http.exporter_stats import ExporterStats
from exporter.ingest.decode import BodyError, TooManyRecords, decode_body
from exporter.state.snapshot import Snapshotter
from exporter.state.store import StateStore
from exporter.state.versions import VersionRefused


class Exporter:
    """Holds the config, the state and the stats shared by both apps."""

    def __init__(self, config: MlmonConfig, store: StateStore) -> None:
        self.config = config
        self.store = store
        self.stats = ExporterStats([m.name for m in config.models])
        self.snapshotter: Snapshotter | None = None  # set by the server when exporter.state_dir is configured
        self.ready = True

    def ingest_predictions(self, body: bytes, content_type: str) -> tuple[dict[str, Any], int]:
        limits = self.config.exporter
        try:
            decoded = decode_body(body, content_type, self.config, limits.max_records_per_request)
        except TooManyRecords as error:
            self.stats.limit_hit("records_per_request")
            message = f"{error.count} records exceed max_records_per_request ({limits.max_records_per_request})"
            return {"error": message}, 413
        except BodyError as error:
            return {"error": str(error)}, 400
        for batch in decoded.batches:
            try:
                self.store.ingest(batch)
            except VersionRefused as refusal:  # raised before the batch changed any state
                decoded.rejections.extend(refusal.rejections(batch.indices))
                if refusal.limit is not None:
                    self.stats.limit_hit(refusal.limit)
        for rejection in decoded.rejections:
            self.stats.reject(rejection.model, rejection.reason)
        accepted = decoded.records - len(decoded.rejections)
        reported = decoded.rejections[: limits.max_reported_rejections]
        answer = {
            "accepted": accepted,
            "rejected": len(decoded.rejections),
            "rejections": [r.to_json() for r in reported],
        }
        if len(decoded.rejections) > len(reported):
            answer["rejections_truncated"] = True
        # 200 when anything was kept; 422 when every record of a non-empty body was rejected.
        return answer, 200 if accepted or not decoded.records else 422
