"""Switching a model's reference while it serves: promote a window, restart a capture (docs/reference.md).

Promote: the window's bin counts of one version become the reference profile
(:mod:`exporter.profiles.promote`). A model whose reference is a file has one reference for all
its versions: every held version switches, and versions created later start on it. A model that
captures its reference from live traffic has one per version: only that version switches.

The switch is atomic for the ingest path: each version's profile, layout and multivariate basis are
replaced under the version's lock, the lock `VersionState.apply` holds for a whole batch, so a
batch in flight is binned and counted entirely against one reference. Bins do not change, so
counters and windows are kept: the bin series continue and only the reference ratios (and the
scores) change.

Capture reset (capture-mode models only): the version drops its reference and captures the next
N records again; its bin counters restart when the new reference is complete. Its other counters
(predictions, data quality, model quality) continue.

Every switch asked for is logged with its actor and reason, counted by result in
`mlmon_reference_switches_total{model,result}` and kept in a bounded list of recent switches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from exporter.config.model import CaptureReference, MlmonConfig, ModelConfig, format_duration, parse_duration
from exporter.profiles.checks import check_profile
from exporter.profiles.pca import basis_of
from exporter.profiles.profile import Profile, ProfileError
from exporter.profiles.promote import PromoteRefused, Provenance, promote_profile
from exporter.profiles.promoted import read_record, record_promotion, write_profile
from exporter.state.layout import Layout
from exporter.state.store import ReferenceCapture, StateStore, VersionState

log = logging.getLogger("mlmon")

SWITCH_RESULTS = ("promoted", "capture_reset", "refused")
RECENT_SWITCHES = 20  # the bounded list in GET /v1/models/<model>/reference
MAX_TEXT = 200  # actor and reason are free text from the caller: bounded, never a label value
DERIVED_CACHES = ("render_cache", "drift_cache", "drift_reference", "drift_series")


def bounded_text(value: Any, what: str) -> str:
    """A caller's actor or reason: required, printable, at most MAX_TEXT characters."""
    if not isinstance(value, str) or not value.strip():
        raise PromoteRefused(400, f"`{what}` is required: a short text saying {'who' if what == 'actor' else 'why'}")
    if len(value) > MAX_TEXT:
        raise PromoteRefused(400, f"`{what}` is longer than {MAX_TEXT} characters")
    return "".join(ch if ch.isprintable() else " " for ch in value).strip()


class ReferenceSwitches:
    """Counts of switches by (model, result) and the most recent ones; saved in the state snapshot."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recent: list[dict[str, Any]] = []

    def record(self, model: str, result: str, entry: dict[str, Any]) -> None:
        # New containers, never mutated ones: the snapshot encodes these without this lock, and a dict
        # changing size under its iteration would fail the save.
        with self.lock:
            counts = Counter(self.counts)
            counts[(model, result)] += 1
            self.counts = counts
            self.recent = [*self.recent, {"model": model, "result": result, **entry}][-RECENT_SWITCHES:]

    def recent_of(self, model: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.recent if e.get("model") == model]


def _model(config: MlmonConfig, name: str) -> ModelConfig:
    model = config.model(name)
    if model is None:
        known = ", ".join(m.name for m in config.models)
        raise PromoteRefused(404, f"unknown model {name[:64]!r} (configured: {known})")
    return model


def _version(store: StateStore, model: ModelConfig, version: Any) -> VersionState:
    if not isinstance(version, str) or not version:
        raise PromoteRefused(400, "`version` is required: the model_version whose window becomes the reference")
    with store.lock:
        state = store.versions.get(model.name, {}).get(version)
        held = list(store.versions.get(model.name, {}))
    if state is None:
        raise PromoteRefused(404, f"model {model.name} has no version {version[:64]!r} in its state "
                                  f"(held: {', '.join(held) or 'none'})")
    return state


def _window(model: ModelConfig, window: Any) -> int:
    try:
        seconds = parse_duration(window)
    except (ValueError, TypeError):
        seconds = -1
    if seconds not in model.drift.windows:
        allowed = ", ".join(format_duration(s) for s in model.drift.windows)
        raise PromoteRefused(400, f"`window` must be one of model {model.name}'s drift windows: {allowed}")
    return seconds


def switch_profile(state: VersionState, profile: Profile) -> None:
    """Judge a version against `profile` (same bins as its current one) from its next batch on."""
    layout = Layout.of(profile, state.model)
    basis = basis_of(profile)
    with state.lock:
        if state.layout is None or layout.width != state.layout.width:
            raise ProfileError("the promoted profile does not have the version's bins")
        state.profile = profile
        state.layout = layout
        if state.multivariate is not None and basis is not None:
            state.multivariate.basis = basis  # same encoding and error bins: only the reference histogram differs
        for key in DERIVED_CACHES:  # keyed by id(layout), which a new object may reuse: drop them
            state.__dict__.pop(key, None)


def promote(store: StateStore, switches: ReferenceSwitches, state_dir: Path | None, model_name: str,
            body: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Promote a window of a version to the model's reference; the answer, or PromoteRefused (4xx)."""
    now = store.clock() if now is None else now
    model = _model(store.config, model_name)  # an unknown model is not counted: its name is the caller's text
    try:
        answer = _promote(store, switches, state_dir, model, body, now)
    except PromoteRefused as refusal:
        switches.record(model.name, "refused", {"at": round(time.time(), 3), "error": refusal.message[:MAX_TEXT]})
        log.warning("model %s: reference promote refused: %s", model.name, refusal.message)
        raise
    return answer


def _promote(store: StateStore, switches: ReferenceSwitches, state_dir: Path | None, model: ModelConfig,
             body: dict[str, Any], now: float) -> dict[str, Any]:
    actor, reason = bounded_text(body.get("actor"), "actor"), bounded_text(body.get("reason"), "reason")
    state = _version(store, model, body.get("version"))
    seconds = _window(model, body.get("window"))
    if state_dir is None:
        raise PromoteRefused(409, "promote needs exporter.state_dir (or --state-dir): the promoted reference is kept "
                                  "there so that it survives restarts")
    with state.lock:
        layout, old, multivariate = state.layout, state.profile, state.multivariate
        if layout is None or old is None:
            raise PromoteRefused(409, f"model {model.name} version {state.version} is still capturing its reference")
        index = state.window_seconds.index(seconds)
        counts = state.windows[index].totals(now)[0]
        errors = multivariate.window_counts(seconds, now) if multivariate is not None else None
        error_sum = multivariate.window_sum(seconds, now) if multivariate is not None else 0.0
    minimum = model.drift.min_samples
    columns = [np.asarray(counts[layout.slice(i)]) for i in range(len(layout.binnings))]
    # The predictions binned in the window: while a version captured its reference, its records were
    # counted (mlmon_window_samples) but not binned, and a profile's rows must be its counts.
    samples = int(columns[-1].sum())
    short = [f"{b.name} ({int(c.sum())})" for b, c in zip(layout.binnings, columns) if c.sum() < minimum]
    if samples < minimum or short:
        raise PromoteRefused(422, f"the {format_duration(seconds)} window of {model.name} version {state.version} holds "
                                  f"{samples} predictions; promote needs at least drift.min_samples={minimum} in every "
                                  f"column" + (f" (too few: {', '.join(short[:5])})" if short else ""))
    provenance = Provenance(state.version, format_duration(seconds), actor, reason, time.time())
    profile, warnings = promote_profile(old, layout.binnings, columns, samples, provenance, errors, error_sum)
    check_profile(profile, model)
    captured = isinstance(model.reference, CaptureReference)
    path = write_profile(state_dir, profile)
    if not captured:  # a file reference: recorded so that restarts and reloads keep it (profiles/promoted.py)
        entry = read_record(state_dir).get(model.name)
        chained = isinstance(entry, dict) and entry.get("hash") == old.content_hash
        record_promotion(state_dir, profile, path, entry["base_hash"] if chained else old.content_hash)
        with store.lock:
            store.profiles[model.name] = profile  # versions created from now on start on it
            targets = list(store.versions[model.name].values())
    else:
        targets = [state]
    for target in targets:
        switch_profile(target, profile)
    entry = {"at": round(provenance.at, 3), "version": state.version, "window": provenance.window, "samples": samples,
             "previous_hash": old.content_hash, "reference_hash": profile.content_hash, "actor": actor, "reason": reason}
    switches.record(model.name, "promoted", entry)
    log.info("model %s: reference promoted from version %s window %s (%d samples) by %r: %s; %s -> %s (%s)",
             model.name, state.version, provenance.window, samples, actor, reason, old.short_hash, profile.short_hash,
             path)
    return {"model": model.name, "result": "promoted", **entry, "short_hash": profile.short_hash,
            "switched_versions": [t.version for t in targets], "path": str(path), "warnings": warnings}


def reset_capture(store: StateStore, switches: ReferenceSwitches, model_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Drop a capture-mode version's reference and capture the next N records again (PromoteRefused on 4xx)."""
    model = _model(store.config, model_name)
    try:
        actor, reason = bounded_text(body.get("actor"), "actor"), bounded_text(body.get("reason"), "reason")
        if body.get("reset") is not True:
            raise PromoteRefused(400, "send {\"reset\": true, ...}: a capture restarts only when asked to")
        if not isinstance(model.reference, CaptureReference):
            raise PromoteRefused(409, f"model {model.name}'s reference is a file; capture --reset applies to models "
                                      "with `reference: {capture: N}` (promote a window instead)")
        state = _version(store, model, body.get("version"))
    except PromoteRefused as refusal:
        switches.record(model.name, "refused", {"at": round(time.time(), 3), "error": refusal.message[:MAX_TEXT]})
        raise
    target = model.reference.capture
    with state.lock:
        previous = state.profile.content_hash if state.profile is not None else None
        state.capture = ReferenceCapture(model, target)
        state.profile, state.layout, state.multivariate = None, None, None
        for key in DERIVED_CACHES:
            state.__dict__.pop(key, None)
    entry = {"at": round(time.time(), 3), "version": state.version, "previous_hash": previous, "capture": target,
             "actor": actor, "reason": reason}
    switches.record(model.name, "capture_reset", entry)
    log.info("model %s version %s: reference capture restarted (next %d records) by %r: %s", model.name,
             state.version, target, actor, reason)
    return {"model": model.name, "result": "capture_reset", **entry}


def describe(store: StateStore, switches: ReferenceSwitches, model_name: str, version: str | None,
             include_profile: bool) -> dict[str, Any]:
    """GET /v1/models/<model>/reference: the reference in use (of a version), and the recent switches."""
    model = _model(store.config, model_name)
    answer: dict[str, Any] = {"model": model.name, "mode": "capture" if isinstance(model.reference, CaptureReference)
                              else "file"}
    profile = store.profiles.get(model.name)
    if version is not None:
        state = _version(store, model, version)
        with state.lock:
            profile = state.profile
            answer.update({"version": version, "capturing": state.capture is not None})
    answer["reference_hash"] = profile.content_hash if profile is not None else None
    answer["source"] = profile.source if profile is not None else None
    answer["promotion"] = profile.extras.get("promotion") if profile is not None else None
    answer["recent_switches"] = switches.recent_of(model.name)
    if include_profile:
        if profile is None:
            raise PromoteRefused(409, "no reference yet (still capturing)")
        answer["profile"] = profile.to_json()
    return answer
