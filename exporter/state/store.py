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
from typing import Any, Callable

import numpy as np

from exporter.ingest.columns import Column
from exporter.config.model import CaptureReference, MlmonConfig, ModelConfig
from exporter.ingest.decode import Batch
from exporter.state.label_store import LabelStore
from exporter.state.redis_store import RedisLabelStore, build_label_store
from exporter.state.labels import apply_quality
from exporter.state.shadow import ShadowPairs
from exporter.state.layout import Layout
from exporter.state.prepare import Prepared, prepare
from exporter.profiles.class_scores import class_score_extras
from exporter.profiles.profile import Binning, Profile, ProfileError, numeric_binning
from exporter.state.class_drift import ClassDriftState
from exporter.state.quality import ModelQuality, QualityMath
from exporter.state.multivariate import MultivariateState
from exporter.state.segments import SegmentDrift
from exporter.state.attributions import AttributionState, prepare_attributions, references as attribution_references
from exporter.state.versions import NewVersionBudget, VersionRefused, admission_problem, evictable, rate_limited
from exporter.state.windows import WindowRing
from exporter.stats.calibration import Calibration, calibration_from_extras

log = logging.getLogger("mlmon")

# Data-quality counters kept per feature, in this column order.
QUALITY = ("missing", "null", "nonfinite", "type_errors", "below", "above", "unseen")




def calibration_of(profile: Profile | None, model: ModelConfig | None = None) -> Calibration | tuple[Calibration, ...] | None:
    """The score calibration a profile built with --label-column carries (one map, or one per class), else None."""
    if profile is None:
        return None
    return calibration_from_extras(profile.extras, model.quality_classes if model is not None else ())


class ReferenceCapture:
    """Collects the first N accepted records of a version, then turns them into a Profile.

    Numeric values are kept as float64; categories as (distinct values, counts) per batch, so
    the capture costs memory per distinct category, not per row times the longest string.
    """

    def __init__(self, model: ModelConfig, target: int) -> None:
        self.model = model
        self.target = target
        self.columns: list[list[np.ndarray | tuple[np.ndarray, np.ndarray]]] = [
            [] for _ in range(len(model.features) + 1)
        ]
        self.rows = 0
        # Per-class score rows of a multiclass model (rows x classes; rows sent as a class alone left out),
        # binned into the profile's class_scores so a captured reference gets per-class probability drift.
        self.class_scores: list[np.ndarray] = []

    def take(self, columns: list[Column], rows: int, class_scores: list[Any] | None = None) -> int:
        """Keep up to the remaining rows of this batch; returns how many rows were taken."""
        take = min(rows, self.target - self.rows)
        for kept, column in zip(self.columns, columns):
            values = column.values[:take]
            # A copy, so the kept slice does not hold the whole batch's array alive.
            kept.append(values.copy() if values.dtype.kind == "f" else np.unique(values, return_counts=True))
        scored = [r for r in (class_scores or [])[:take] if r is not None]
        if scored and self.model.task == "multiclass_classification":
            self.class_scores.append(np.asarray(scored, dtype=np.float64))
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
            if kind == "numeric":
                values = np.concatenate(parts) if parts else np.zeros(0)
                binnings.append(numeric_binning(name, values, bins))
            else:
                binnings.append(_categorical_from_counts(name, parts, top_k, kind))
        features = {b.name: b for b in binnings[:-1]}
        extras: dict[str, Any] = {}
        if self.class_scores:  # one numeric binning per class, as `mlmon profile build` makes from score columns
            matrix = np.concatenate(self.class_scores)
            extras = class_score_extras(self.model, [matrix[:, i] for i in range(matrix.shape[1])])
        return Profile(self.model.name, self.rows, features, binnings[-1], source="captured from live traffic",
                       extras=extras)


def _categorical_from_counts(
    name: str, parts: list[tuple[np.ndarray, np.ndarray]], top_k: int, kind: str
) -> Binning:
    """What profiles.categorical_binning builds from values, built from per-batch value counts."""
    if parts:
        values = np.concatenate([np.asarray(u, dtype=str) for u, _ in parts])
        uniques, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse.reshape(-1), weights=np.concatenate([c for _, c in parts]),
                             minlength=len(uniques)).astype(np.int64)
    else:
        uniques, counts = np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))  # ties by name, as in profiles
    if kind == "boolean":
        categories: tuple[str, ...] = ("false", "true")
    else:
        categories = tuple(str(uniques[i]) for i in order[:top_k])
    by_value = dict(zip(uniques.tolist(), counts.tolist()))
    kept = [by_value.get(c, 0) for c in categories]
    reference = np.array([*kept, int(counts.sum()) - sum(kept)], dtype=np.int64)
    stats = {"count": int(counts.sum()), "distinct": int(len(uniques))}
    return Binning(name, kind, reference, categories=categories, stats=stats)


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
    variant: str | None = None  # the rollout arm a source named (KServe's Ce-Endpoint); config wins
    last_seen: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    convert_limits: tuple[int, bool] = (256, False)  # max_string_length, type_errors == parse (segment drift re-reads)

    @property
    def arm(self) -> str:
        """The rollout variant: the config's, else the source's (Ce-Endpoint), else default (docs/rollouts.md)."""
        return self.model.versions.variants.get(self.version) or self.variant or "default"

    def __post_init__(self) -> None:
        n = len(self.model.features)
        self.quality = np.zeros((n, len(QUALITY)), dtype=np.int64)
        self.prediction_quality = np.zeros(len(QUALITY), dtype=np.int64)
        # Finite numeric predictions: (sum of positives, sum of |negatives|) and their count, for the mean.
        self.prediction_sums = np.zeros(2, dtype=np.float64)
        self.prediction_values = 0
        self.unsummed_predictions = 0  # finite, beyond exporter.max_abs_value: counted, never summed
        self.window_samples = [WindowRing(s, self.slots, 0) for s in self.window_seconds]
        # labels, performance, estimates (with the profile's calibration map when it has one), bias
        self.model_quality = ModelQuality(self.model, self.slots, calibration_of(self.profile, self.model))
        self.layout: Layout | None = None
        self.multivariate: MultivariateState | None = None  # PCA error histograms (exporter/stats/multivariate.py)
        self.class_drift: ClassDriftState | None = None  # per-class probability bins (exporter/state/class_drift.py)
        self.segment_drift: SegmentDrift | None = None  # bins per segment value (exporter/state/segments.py)
        # Per-record attributions (models[].attributions.enabled); None otherwise.
        self.attributions = AttributionState.of(self.model, self.profile, self.window_seconds, self.slots)
        if self.profile is not None:
            self._use_profile(self.profile)

    def _use_profile(self, profile: Profile) -> None:
        self.profile = profile
        self.layout = Layout.of(profile, self.model)
        self.cumulative = np.zeros(self.layout.width, dtype=np.int64)
        self.windows = [WindowRing(s, self.slots, self.layout.width) for s in self.window_seconds]
        self.multivariate = MultivariateState.of(profile, self.window_seconds, self.slots)
        self.class_drift = ClassDriftState.of(profile, self.model, self.window_seconds, self.slots)
        self.segment_drift = SegmentDrift.of(self.model, self.layout, self.window_seconds, self.slots, *self.convert_limits)
        self.capture = None

    @property
    def capturing(self) -> bool:
        return self.capture is not None

    def apply(self, prepared: Prepared, now: float) -> None:
        """Add a prepared batch. Everything that could fail is computed before the first change."""
        with self.lock:
            columns = prepared.columns
            capture = self.capture
            taken = capture.target - capture.rows if capture is not None else 0
            taken = min(taken, prepared.size)
            rest = [c._replace(values=c.values[taken:]) for c in columns] if taken else columns
            binned = self.layout is not None and taken < prepared.size
            counts = self.layout.counts(rest) if binned and self.layout is not None else None
            errors = None
            if binned and self.multivariate is not None:
                errors = self.multivariate.counts(prepared.batch.features)
            class_counts = None
            if capture is None and self.class_drift is not None:
                class_counts = self.class_drift.counts(prepared.batch.class_scores)
            segmented = None
            if binned and self.segment_drift is not None and self.layout is not None:
                segmented = self.segment_drift.counts(prepared.batch, columns, self.layout, taken,
                                                          prepared.quality.segment_codes)
            # ---- from here on only adding --------------------------------------------------------
            self.last_seen = now
            self.predictions += prepared.size
            self.unknown_features += prepared.batch.unknown_features
            self.quality[:, :4] += prepared.quality_counts[:-1]
            self.prediction_quality[:4] += prepared.quality_counts[-1]
            self.prediction_sums += prepared.sums  # counted whether or not the reference is being captured
            self.prediction_values += prepared.summed
            self.unsummed_predictions += prepared.unsummed
            for ring in self.window_samples:
                ring.add(np.zeros(0, dtype=np.int64), prepared.size, now)
            if capture is not None and taken:
                capture.take(columns, taken, prepared.batch.class_scores)
                if capture.complete:
                    self._finish_capture(capture)
                    if self.class_drift is not None and taken < prepared.size:  # rows past the target
                        class_counts = self.class_drift.counts(prepared.batch.class_scores[taken:])
                    if self.layout is not None and taken < prepared.size:
                        # Rows past the target are binned against the reference they just completed:
                        # typed columns against a profile built from the same kind of columns.
                        counts = self.layout.counts(rest)
                        if self.segment_drift is not None:
                            segmented = self.segment_drift.counts(prepared.batch, columns, self.layout, taken,
                                                                  prepared.quality.segment_codes)
            if counts is not None:
                prepared.out_of_range = self._add_counts(counts, now)
            if errors is not None and self.multivariate is not None:
                self.multivariate.add_counts(errors, now)
            if class_counts is not None and self.class_drift is not None:
                self.class_drift.add_counts(class_counts, now)
            if segmented is not None and self.segment_drift is not None:
                self.segment_drift.add(segmented, now)
            if prepared.attributions is not None and self.attributions is not None:
                self.attributions.add(prepared.attributions, now)

    def _finish_capture(self, capture: ReferenceCapture) -> None:
        """Use the captured reference; a capture that cannot make one (say, no finite value of a
        feature) starts over instead of failing every later batch."""
        try:
            profile = capture.profile()
        except ProfileError as error:
            log.warning("model %s version %s: captured reference unusable (%s); capturing again",
                        self.model.name, self.version, error)
            self.capture = ReferenceCapture(self.model, capture.target)
            return
        self._use_profile(profile)
        log.info("model %s version %s: reference captured from %d live samples",
                 self.model.name, self.version, profile.rows)

    def _add_counts(self, counts: np.ndarray, now: float) -> int:
        """Add binned counts; the feature values out of the reference range among them (for the answer)."""
        assert self.layout is not None
        out_of_range = 0
        layout = self.layout
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
                if i < len(self.model.features):
                    out_of_range += int(bins[0] + bins[-1])
            else:
                row[6] += bins[-1]
        return out_of_range

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
        # Predictions waiting for their labels, shared by all models (ids are unique per exporter): in this
        # process, or in Redis shared by every replica (exporter.label_store).
        self.labels: LabelStore | RedisLabelStore = build_label_store(
            config, [m.name for m in config.models], clock=lambda: self.clock())  # tests swap self.clock
        limits = config.exporter
        # What a batch's quality sums are made of, per model, before any version is touched: versions of a
        # file-referenced model share its profile's calibration; captured references carry none.
        self.quality_math = {
            m.name: QualityMath(m, calibration_of(profiles.get(m.name), m), limits.max_abs_value, limits.max_string_length)
            for m in config.models
        }
        # Models with a shadow version pair its predictions with the champion's by id (state/shadow.py).
        self.shadows = {m.name: ShadowPairs(m.rollout.shadow_pending, m.rollout.shadow_ttl)
                        for m in config.models if "shadow" in m.versions.variants.values()}
        self.attribution_references = attribution_references(config, profiles)

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
        limits = (self.config.exporter.max_string_length, self.config.exporter.type_errors == "parse")
        if isinstance(model.reference, CaptureReference):
            state = VersionState(model, version, windows, slots, last_seen=now, convert_limits=limits)
            state.capture = ReferenceCapture(model, model.reference.capture)
            return state
        return VersionState(model, version, windows, slots, profile=self.profiles[model.name], last_seen=now,
                            convert_limits=limits)

    def prepare(self, batches: list[Batch]) -> list[Prepared]:
        """Type, check and sum every batch of a request; changes nothing (decode, then apply)."""
        now = self.clock()
        prepared = [prepare(b, self.config.exporter, self.quality_math[b.model.name], now) for b in batches]
        for p in prepared:
            p.attributions = prepare_attributions(
                p.batch.attributions, self.attribution_references.get(p.batch.model.name), self.config.exporter)
        return prepared

    def admit(self, prepared: list[Prepared]) -> tuple[list[tuple[VersionState, Prepared]], list[tuple[Prepared, VersionRefused]]]:
        """The state of each batch's version, created where the version rules allow (exporter/state/versions.py);
        refused batches come back with their refusal. Runs before apply: a refusal never interrupts it."""
        admitted, refused = [], []
        for batch in prepared:
            try:
                admitted.append((self.version_state(batch.batch.model, batch.batch.version), batch))
            except VersionRefused as refusal:
                refused.append((batch, refusal))
        return admitted, refused

    def apply(self, admitted: list[tuple[VersionState, Prepared]]) -> None:
        """Add prepared batches: only additions to existing arrays and label-store puts, which cannot fail."""
        now = self.clock()
        for state, batch in admitted:
            # The label join cleans values with the version's own limits; a new version gets the config's.
            state.model_quality.use_limits(self.quality_math[state.model.name])
            state.apply(batch, now)
            quality = batch.quality
            apply_quality(state.model_quality, self.labels, state.model.name, state.version, quality, now)
            shadow = self.shadows.get(state.model.name)
            if shadow is not None and state.arm in ("default", "shadow"):
                model = state.model
                threshold = model.quality.decision_threshold if model.task == "binary_classification" else None
                shadow.offer(state.arm, state.version, batch.batch.ids, batch.batch.predictions, now,
                             model.prediction.type == "numeric", threshold)

    def ingest(self, batch: Batch) -> None:
        """One batch, prepared and applied (tests and benchmarks; the service prepares a whole request first).
        Raises VersionRefused, having changed nothing, when the batch's version is refused."""
        admitted, refused = self.admit(self.prepare([batch]))
        if refused:
            raise refused[0][1]
        self.apply(admitted)

    def quality_of(self, model: str, version: str) -> ModelQuality | None:
        """The quality accumulator of a version still held, else None (for the label join)."""
        state = self.versions.get(model, {}).get(version)
        return state.model_quality if state is not None else None

    def quality_for_label(self, model: str, version: str) -> ModelQuality | None:
        """quality_of for the label join. With a shared (Redis) store a label may land on a replica that has
        never seen the prediction's version: the version is created here, within the version rules, so the
        quality counters count where the label lands (they are summed over replicas in PromQL)."""
        quality = self.quality_of(model, version)
        if quality is not None or self.labels.snapshot:  # in memory: an unknown version was evicted here
            return quality
        config = next((m for m in self.config.models if m.name == model), None)
        if config is None:
            return None
        try:
            state = self.version_state(config, version)
        except VersionRefused:
            return None
        state.model_quality.use_limits(self.quality_math[model])
        return state.model_quality

    def snapshot(self) -> list[VersionState]:
        with self.lock:
            return [state for versions in self.versions.values() for state in versions.values()]
