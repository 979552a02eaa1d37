"""Per model-version state: cumulative bin counters, windowed bin counts, data-quality counters.

All bins of a version (every feature's, then the prediction's) live in one flat vector, so a
batch becomes one ``np.bincount`` and one vector add per window. Nothing here grows with
traffic: the state is O(features x bins x window slots) per version, and versions per model are
capped; which versions may be created or evicted is decided in exporter/state/versions.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from exporter.ingest.columns import Column, convert
from exporter.config.model import CaptureReference, MlmonConfig, ModelConfig
from exporter.ingest.decode import Batch
from exporter.state.label_store import LabelStore
from exporter.state.labels import observe_batch
from exporter.profiles.profile import Binning, Profile, categorical_binning, numeric_binning
from exporter.state.quality import ModelQuality
from exporter.state.multivariate import MultivariateState
from exporter.state.versions import NewVersionBudget, admission_problem, evictable, rate_limited
from exporter.state.windows import WindowRing
from exporter.stats.calibration import EXTRAS_KEY as CALIBRATION_KEY, Calibration

log = logging.getLogger("mlmon")

# Data-quality counters kept per feature, in this column order.
QUALITY = ("missing", "null", "nonfinite", "type_errors", "below", "above", "unseen")


@dataclass(frozen=True)
class Layout:
    """Where each column's bins sit in the flat vector; the prediction is the last column."""

    binnings: tuple[Binning, ...]
    offsets: np.ndarray

    @classmethod
    def of(cls, profile: Profile, model: ModelConfig) -> Layout:
        binnings = tuple(profile.features[f.name] for f in model.features) + (profile.prediction,)
        offsets = np.concatenate([[0], np.cumsum([b.n_bins for b in binnings])]).astype(np.int64)
        return cls(binnings, offsets)

    @property
    def width(self) -> int:
        return int(self.offsets[-1])

    def slice(self, column: int) -> slice:
        return slice(int(self.offsets[column]), int(self.offsets[column + 1]))


def calibration_of(profile: Profile | None) -> Calibration | None:
    """The score calibration map a profile built with --label-column carries, else None."""
    data = profile.extras.get(CALIBRATION_KEY) if profile is not None else None
    return Calibration.from_json(data) if data else None


def prediction_sums(values: np.ndarray) -> np.ndarray:
    """(sum of the positive values, sum of the magnitudes of the negative ones); values are finite floats."""
    return np.array([np.maximum(values, 0.0).sum(), -np.minimum(values, 0.0).sum()])


class ReferenceCapture:
    """Collects the first N accepted records of a version, then turns them into a Profile."""

    def __init__(self, model: ModelConfig, target: int) -> None:
        self.model = model
        self.target = target
        self.columns: list[list[np.ndarray]] = [[] for _ in range(len(model.features) + 1)]
        self.rows = 0

    def take(self, columns: list[Column], rows: int) -> int:
        """Keep up to the remaining rows of this batch; returns how many rows were taken."""
        take = min(rows, self.target - self.rows)
        for kept, column in zip(self.columns, columns):
            kept.append(column.values[:take])
        self.rows += take
        return take

    @property
    def complete(self) -> bool:
        return self.rows >= self.target

    def profile(self) -> Profile:
        binnings = []
        specs = [(f.name, f.type, f.bins, f.max_categories) for f in self.model.features]
        prediction = self.model.prediction
        specs.append((prediction.name, prediction.type, prediction.bins, len(prediction.classes or ()) or 50))
        for (name, kind, bins, top_k), parts in zip(specs, self.columns):
            values = np.concatenate(parts) if parts else np.zeros(0)
            if kind == "numeric":
                binnings.append(numeric_binning(name, values, bins))
            else:
                binnings.append(categorical_binning(name, values, top_k, kind))
        features = {b.name: b for b in binnings[:-1]}
        return Profile(self.model.name, self.rows, features, binnings[-1], source="captured from live traffic")


@dataclass
class VersionState:
    model: ModelConfig
    version: str
    window_seconds: tuple[int, ...]
    slots: int
    profile: Profile | None = None
    capture: ReferenceCapture | None = None
    predictions: int = 0
    unknown_features: int = 0
    last_seen: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        n = len(self.model.features)
        self.quality = np.zeros((n, len(QUALITY)), dtype=np.int64)
        self.prediction_quality = np.zeros(len(QUALITY), dtype=np.int64)
        # Finite numeric predictions: (sum of positives, sum of |negatives|) and their count, for the mean.
        self.prediction_sums = np.zeros(2, dtype=np.float64)
        self.prediction_values = 0
        self.window_samples = [WindowRing(s, self.slots, 0) for s in self.window_seconds]
        # labels, performance, estimates (with the profile's calibration map when it has one), bias
        self.model_quality = ModelQuality(self.model, self.slots, calibration_of(self.profile))
        self.layout: Layout | None = None
        self.multivariate: MultivariateState | None = None  # PCA error histograms (exporter/stats/multivariate.py)
        if self.profile is not None:
            self._use_profile(self.profile)

    def _use_profile(self, profile: Profile) -> None:
        self.profile = profile
        self.layout = Layout.of(profile, self.model)
        self.cumulative = np.zeros(self.layout.width, dtype=np.int64)
        self.windows = [WindowRing(s, self.slots, self.layout.width) for s in self.window_seconds]
        self.multivariate = MultivariateState.of(profile, self.window_seconds, self.slots)
        self.capture = None

    @property
    def capturing(self) -> bool:
        return self.capture is not None

    def ingest(self, batch: Batch, now: float) -> None:
        """Convert, count and bin one batch; the only per-value work is numpy's."""
        features = self.model.features
        columns = [convert(f.type, batch.features[f.name]) for f in features]
        columns.append(convert(self.model.prediction.type, batch.predictions))
        sums = prediction_sums(columns[-1].values) if self.model.prediction.type == "numeric" else None
        with self.lock:
            self.last_seen = now
            self.predictions += batch.size
            self.unknown_features += batch.unknown_features
            for i, column in enumerate(columns[:-1]):
                self.quality[i, :4] += column[1:]
            self.prediction_quality[:4] += columns[-1][1:]
            if sums is not None:  # counted whether or not the reference is still being captured
                self.prediction_sums += sums
                self.prediction_values += len(columns[-1].values)
            for ring in self.window_samples:
                ring.add(np.zeros(0, dtype=np.int64), batch.size, now)
            if self.capture is not None:
                taken = self.capture.take(columns, batch.size)
                if self.capture.complete:
                    self._use_profile(self.capture.profile())
                    log.info("model %s version %s: reference captured from %d live samples",
                             self.model.name, self.version, self.profile.rows)
                if taken == batch.size or self.layout is None:
                    return
                columns = [c._replace(values=c.values[taken:]) for c in columns]
            self._bin(columns, now)
            if self.multivariate is not None:
                self.multivariate.add(batch.features, now)

    def _bin(self, columns: list[Column], now: float) -> None:
        assert self.layout is not None
        layout = self.layout
        indices = []
        for i, (binning, column) in enumerate(zip(layout.binnings, columns)):
            indices.append(binning.assign(column.values) + layout.offsets[i])
        counts = np.bincount(np.concatenate(indices), minlength=layout.width)
        self.cumulative += counts
        for ring in self.windows:
            ring.add(counts, 0, now)
        # Out-of-range and unseen are read straight off the edge bins of each column.
        for i, binning in enumerate(layout.binnings):
            bins = counts[layout.slice(i)]
            row = self.quality[i] if i < len(self.model.features) else self.prediction_quality
            if binning.kind == "numeric":
                row[4] += bins[0]
                row[5] += bins[-1]
            else:
                row[6] += bins[-1]

    def window_sample_count(self, window: int, now: float) -> int:
        """Predictions in the window, without summing its bins."""
        index = self.window_seconds.index(window)
        with self.lock:
            return self.window_samples[index].totals(now)[1]

    def window_counts(self, window: int, now: float) -> tuple[np.ndarray | None, int]:
        """(bin counts over the window or None while capturing, predictions in the window)."""
        index = self.window_seconds.index(window)
        with self.lock:
            samples = self.window_samples[index].totals(now)[1]
            if self.layout is None:
                return None, samples
            return self.windows[index].totals(now)[0], samples


class StateStore:
    """All versions of all models, with the per-model version cap and eviction accounting."""

    def __init__(self, config: MlmonConfig, profiles: dict[str, Profile], clock: Callable[[], float] = time.time):
        self.config = config
        self.profiles = profiles
        self.clock = clock
        self.versions: dict[str, OrderedDict[str, VersionState]] = {m.name: OrderedDict() for m in config.models}
        self.evictions = {m.name: 0 for m in config.models}
        now = clock()
        self.new_version_budget = {m.name: NewVersionBudget(m.versions.max_new_per_minute, now) for m in config.models}
        self.lock = threading.Lock()
        # Predictions waiting for their labels, shared by all models (ids are unique per exporter).
        self.labels = LabelStore(config.exporter.max_pending_predictions, config.exporter.label_ttl)

    def version_state(self, model: ModelConfig, version: str) -> VersionState:
        """The state of a version, created on first sight within the rules of exporter/state/versions.py.

        Raises VersionRefused, before any state changes, when a new version is not allowed, over
        the new-version budget, or would have to evict a version that is still receiving traffic.
        """
        now = self.clock()
        with self.lock:
            versions = self.versions[model.name]
            state = versions.get(version)
            if state is not None:
                versions.move_to_end(version)  # kept in order of last sight: the first is the most idle
                state.last_seen = now
                return state
            cap = self.config.exporter.max_versions_per_model
            victim = evictable(versions, model.versions.evict_idle_after, now) if len(versions) >= cap else None
            refusal = admission_problem(model, version, len(versions), cap, has_room=victim is not None)
            if refusal is None and not self.new_version_budget[model.name].take(now):
                refusal = rate_limited(model)
            if refusal is not None:
                raise refusal
            if victim is not None:
                idle = now - versions.pop(victim).last_seen
                self.evictions[model.name] += 1
                log.warning("model %s: evicted version %s (idle %.0f s) to make room for version %s",
                            model.name, victim, idle, version)
            state = self._new_state(model, version, now)
            versions[version] = state
            log.info("model %s: first record of version %s", model.name, version)
            return state

    def _new_state(self, model: ModelConfig, version: str, now: float | None = None) -> VersionState:
        now = self.clock() if now is None else now  # a snapshot restore overwrites last_seen afterwards
        windows = tuple(model.drift.windows)
        slots = self.config.exporter.window_slots
        if isinstance(model.reference, CaptureReference):
            state = VersionState(model, version, windows, slots, last_seen=now)
            state.capture = ReferenceCapture(model, model.reference.capture)
            return state
        return VersionState(model, version, windows, slots, profile=self.profiles[model.name], last_seen=now)

    def ingest(self, batch: Batch) -> None:
        now = self.clock()
        state = self.version_state(batch.model, batch.version)
        state.ingest(batch, now)
        observe_batch(state.model_quality, self.labels, batch, now)  # inline labels, or kept by id for later

    def quality_of(self, model: str, version: str) -> ModelQuality | None:
        """The quality accumulator of a version still held, else None (for the label join)."""
        state = self.versions.get(model, {}).get(version)
        return state.model_quality if state is not None else None

    def snapshot(self) -> list[VersionState]:
        with self.lock:
            return [state for versions in self.versions.values() for state in versions.values()]
