"""Per model-version attribution counters: what `attributions: {feature: phi}` adds up to.

Per feature, cumulative and per window: N, the sum of phi by sign (positive, |negative|), the
sum of phi^2; cumulative only: phi counted in the reference's phi bins (profile extras, built by
`mlmon profile build`). All are sums, so replicas and slots merge by addition. O(features x
(bins + 4 x window slots)) per version, whatever the traffic. Read by
exporter/http/attribution_report.py; the formulas are in exporter/stats/attribution.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from exporter.config.model import ExporterConfig, MlmonConfig, ModelConfig
from exporter.ingest.attributions import MISSING_PHI, AttributionColumns
from exporter.ingest.columns import numeric_column
from exporter.profiles.attributions import AttributionReference, reference_of
from exporter.profiles.profile import Profile
from exporter.state.quality import FloatRing

SUMS = ("n", "positive", "negative", "squares")  # per feature, in this order, in the window rings
DROP_REASONS = ("unknown_feature", "invalid_value")


@dataclass
class PreparedAttributions:
    """One batch's attributions, summed: what AttributionState.add adds (computed before any change)."""

    sums: np.ndarray       # (features x 4): n, positive, negative, squares
    bins: np.ndarray       # flat phi-bin counts over the features that have reference bins
    rows: int              # records with attributions
    dropped: np.ndarray    # (2,): unknown keys, invalid values (null, non-finite, not a number, beyond max_abs_value)


def offsets_of(reference: AttributionReference) -> np.ndarray:
    """Where each feature's phi bins start in the flat bin vector (features without reference bins: none)."""
    widths = [b.n_bins if b is not None else 0 for b in reference.binnings]
    return np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)


def references(config: MlmonConfig, profiles: dict[str, Profile]) -> dict[str, AttributionReference]:
    """The attribution reference of every model that counts attributions (versions of a model share it)."""
    return {m.name: reference_of(m, profiles.get(m.name)) for m in config.models if m.attributions.enabled}


def prepare_attributions(raw: AttributionColumns | None, reference: AttributionReference | None,
                         limits: ExporterConfig) -> PreparedAttributions | None:
    """Type and sum a batch's attributions; None when it carries none."""
    if raw is None or reference is None:
        return None
    offsets = offsets_of(reference)
    names = reference.names
    sums = np.zeros((len(names), len(SUMS)), dtype=np.float64)
    bins = np.zeros(int(offsets[-1]), dtype=np.int64)
    invalid = raw.invalid
    for i, name in enumerate(names):
        values = raw.columns.get(name)
        if not values:
            continue
        partial = name in raw.partial
        column = numeric_column([None if v is MISSING_PHI else v for v in values]) if partial else numeric_column(values)
        phi = column.values
        inside = np.abs(phi) <= limits.max_abs_value  # two phi of 1e308 would make a counter +Inf
        if not inside.all():
            phi = phi[inside]
        # null where the record had attributions but not this feature's is not a fault: MISSING_PHI became None.
        missing = sum(1 for v in values if v is MISSING_PHI) if partial else 0
        invalid += column.null - missing + column.nonfinite + column.type_errors + int((~inside).sum())
        sums[i] = (len(phi), np.maximum(phi, 0).sum(), -np.minimum(phi, 0).sum(), (phi * phi).sum())
        binning = reference.binnings[i]
        if binning is not None and len(phi):
            bins[offsets[i]:offsets[i + 1]] += np.bincount(binning.assign(phi), minlength=binning.n_bins)
    return PreparedAttributions(sums, bins, raw.rows, np.array([raw.unknown, invalid], dtype=np.int64))


class AttributionState:
    """Cumulative and windowed attribution sums of one model version."""

    snapshot_skip = ("reference", "offsets", "window_seconds")

    def __init__(self, reference: AttributionReference, window_seconds: Sequence[int], slots: int) -> None:
        self.reference = reference
        self.offsets = offsets_of(reference)
        self.window_seconds = tuple(window_seconds)
        n = len(reference.names)
        self.sums = np.zeros((n, len(SUMS)), dtype=np.float64)
        self.bins = np.zeros(int(self.offsets[-1]), dtype=np.int64)
        self.records = 0
        self.dropped = np.zeros(len(DROP_REASONS), dtype=np.int64)
        self.windows = [FloatRing(s, slots, n * len(SUMS)) for s in window_seconds]

    @classmethod
    def of(cls, model: ModelConfig, profile: Profile | None, window_seconds: Sequence[int],
           slots: int) -> AttributionState | None:
        if not model.attributions.enabled:
            return None
        return cls(reference_of(model, profile), window_seconds, slots)

    def add(self, prepared: PreparedAttributions, now: float) -> None:
        """Only additions to existing arrays: cannot fail halfway."""
        self.sums += prepared.sums
        if prepared.bins.shape == self.bins.shape:  # the same reference (versions of a model share it)
            self.bins += prepared.bins
        self.records += prepared.rows
        self.dropped += prepared.dropped
        flat = prepared.sums.reshape(-1)
        for ring in self.windows:
            ring.add(flat, prepared.rows, now)

    def window_sums(self, window: int, now: float) -> tuple[np.ndarray, int]:
        """(features x 4 sums over the window, records with attributions in it)."""
        totals, records = self.windows[self.window_seconds.index(window)].totals(now)
        return totals.reshape(len(self.reference.names), len(SUMS)), records
