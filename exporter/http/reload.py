"""Reload (SIGHUP, POST /-/reload): a new mlmon.yaml and its profiles replace the running ones when valid.

What a reload keeps: a model whose config section, reference profile (by content hash) and
`exporter.window_slots` are all unchanged keeps its state: every version's counters, windows and
quality accumulators. Any other model starts fresh; a model no longer in the file is dropped. The
pending-prediction store (labels not yet arrived) is kept unless its size or TTL changed. The
exporter's own counters (requests, rejections, limit hits) always continue. Listen addresses
and worker thread counts need a restart; the other limits apply at once.

An invalid file or profile changes nothing: the running config stays and one error line says why.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from exporter.config.model import ConfigError, MlmonConfig, load_config
from exporter.http.service import Exporter
from exporter.profiles.profile import Profile, ProfileError
from exporter.state.store import StateStore

log = logging.getLogger("mlmon")

_lock = threading.Lock()  # one reload at a time, whether from a signal or from HTTP
# ...and never during a reference switch (reference_http.py): a reload reads the promoted references
# from state_dir and swaps the store, a switch writes them and changes the store it finds.
switch_lock = _lock
RESTART_FIELDS = ("metrics_listen", "ingest_listen", "ingest_threads", "metrics_threads")


def _hash(profile: Profile | None) -> str | None:
    return profile.content_hash if profile is not None else None


def reload_exporter(exporter: Exporter, path: str | Path,
                    load_profiles: Callable[[MlmonConfig], dict[str, Profile]]) -> tuple[bool, str]:
    """(True, what changed) after a reload, or (False, why not) with the running config untouched.

    `load_profiles` is the same function the server starts with, so a reload checks profiles alike.
    """
    with _lock:
        try:
            config = load_config(path)
            profiles = load_profiles(config)
        except (ConfigError, ProfileError, OSError) as error:
            message = f"reload of {path} failed, keeping the running config: {error}"
            log.error("%s", message.replace("\n", "; "))
            return False, message
        kept, fresh = adopt(exporter, config, profiles)
        message = f"reloaded {path}: state kept for {', '.join(kept) or 'no model'}; " \
                  f"fresh state for {', '.join(fresh) or 'no model'}"
        log.info("%s", message)
        return True, message


def adopt(exporter: Exporter, config: MlmonConfig, profiles: dict[str, Profile]) -> tuple[list[str], list[str]]:
    """Swap in a new config and store, moving over the state of unchanged models; (kept, fresh) names."""
    old = exporter.store
    store = StateStore(config, profiles)
    same_slots = old.config.exporter.window_slots == config.exporter.window_slots
    kept, fresh = [], []
    with old.lock:
        for model in config.models:
            before = old.config.model(model.name)
            if same_slots and before == model and _hash(old.profiles.get(model.name)) == _hash(profiles.get(model.name)):
                store.versions[model.name] = old.versions[model.name]
                store.evictions[model.name] = old.evictions[model.name]
                kept.append(model.name)
            else:
                fresh.append(model.name)
        limits_before, limits_now = old.config.exporter, config.exporter
        # The pending predictions move over unless their bounds or their store (memory or Redis) changed.
        if (limits_before.max_pending_predictions, limits_before.label_ttl, limits_before.label_store) == \
                (limits_now.max_pending_predictions, limits_now.label_ttl, limits_now.label_store):
            store.labels = old.labels
        exporter.stats.models = [m.name for m in config.models]
        exporter.config, exporter.store = config, store
    for name in RESTART_FIELDS:
        if getattr(limits_before, name) != getattr(limits_now, name):
            log.warning("exporter.%s changed to %s: takes effect at the next restart", name, getattr(limits_now, name))
    return kept, fresh
