"""Queries more than one dashboard shows: traffic, rejections, data-quality ratios, bin shares.

Ratios are defined exactly as the alert rules define them (alert_rules.recording), with the
thresholds of the same config fields, so a panel turns red when the matching alert would fire.
The dashboards compute them from the raw counters with `$__rate_interval` rather than reading the
recorded series, so they work before any rule file is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from alert_rules.alerts import DATA_QUALITY_ALERTS
from alert_rules.naming import alert_name
from alert_rules.recording import DATA_QUALITY
from exporter import catalog
from exporter.catalog import Metric
from exporter.config.model import MlmonConfig
from dashboards.promql import rate, sum_by


@dataclass(frozen=True)
class QualityKind:
    kind: str             # the recording rules' name for it, e.g. "missing"
    metrics: tuple[Metric, ...]
    threshold: float      # alerting.data_quality.<field>
    alert: str            # e.g. MLMonFeatureMissing
    what: str             # "missing or null"
    feature_types: frozenset[str] | None  # None: applies to every feature type


def quality_kinds(config: MlmonConfig) -> list[QualityKind]:
    dq = config.alerting.data_quality
    return [
        QualityKind(kind, DATA_QUALITY[kind], getattr(dq, field), alert_name(stem), what,
                    frozenset(applies) if applies else None)
        for stem, kind, field, applies, what in DATA_QUALITY_ALERTS
    ]


def predictions_rate(by: tuple[str, ...], **matchers: str) -> str:
    return sum_by(by, rate(catalog.PREDICTIONS, **matchers))


def quality_ratio(kind: QualityKind, by: tuple[str, ...], **matchers: str) -> str:
    """Flagged values per accepted prediction, grouped by `by` (which must include model)."""
    numerator = " + ".join(sum_by(by, rate(m, **matchers)) for m in kind.metrics)
    version_level = tuple(label for label in by if label in ("model", "model_version"))
    denominator = predictions_rate(version_level, **matchers)
    return f"({numerator}) / on ({', '.join(version_level)}) group_left () ({denominator})"


def rejected_ratio(by: tuple[str, ...], **matchers: str) -> str:
    """Records rejected per record received (rejected + accepted), as the RecordsRejected alert."""
    rejected = sum_by(by, rate(catalog.RECORDS_REJECTED, **matchers))
    rejected_model = sum_by(("model",), rate(catalog.RECORDS_REJECTED, **matchers))
    accepted = predictions_rate(("model",), **matchers)
    return f"({rejected}) / on (model) group_left () ({rejected_model} + {accepted})"
