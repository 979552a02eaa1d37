"""Scrape-time series of shadow pairing (exporter/state/shadow.py): counters per shadow version, the
pending count and every way out of the store, for the models that have a shadow version."""

from __future__ import annotations

from exporter import catalog as c
from exporter.http.exposition import Exposition
from exporter.state.shadow import OUTCOMES
from exporter.state.store import StateStore


def collect_shadows(store: StateStore, out: Exposition, now: float) -> None:
    for model, pairs in store.shadows.items():
        pairs.expire(now)  # an orphan counts as expired even when no traffic comes to push it out
        with pairs.lock:
            counts = {version: list(values) for version, values in pairs.counts.items()}
            outcomes, pending = dict(pairs.outcomes), len(pairs.pending)
        for version, (paired, agreed, difference) in sorted(counts.items()):
            out.add_one(c.SHADOW_PAIRS, (model, version), paired)
            out.add_one(c.SHADOW_AGREEMENTS, (model, version), agreed)
            out.add_one(c.SHADOW_SCORE_DIFFERENCE, (model, version), difference)
        out.add_one(c.SHADOW_PENDING, (model,), pending)
        for outcome in OUTCOMES:
            out.add_one(c.SHADOW_OUTCOMES, (model, outcome), outcomes.get(outcome, 0))
