"""Durable sidecar state: snapshots of everything that is not re-derivable, restored at start.

A rollout, a node drain or an OOM kill must not blind the drift alerts for a window length or
lose the predictions still waiting for their labels. What is saved: per model version the bin
counters and their windows (with each slot's epoch, so time that passed while the process was
down expires slots exactly as it would have live), data-quality and quality accumulators, a
reference capture in progress or the profile it produced, the pending-prediction store, and the
exporter's own counters. What is not: config, profiles read from files, caches (all rebuilt).

The file is one `.npz` (numpy's zip of arrays; never pickle, so a snapshot cannot run code):
numeric arrays under their own keys plus a JSON tree that says where each array goes. It is
written crash-safe: a temporary file in the same folder, fsync, atomic rename, fsync of the
folder. A snapshot is applied per model only when that model's config fingerprint and reference
hash match the running ones; otherwise that model starts fresh and the mismatch is logged and
counted. A file that cannot be read at all is set aside (renamed, never deleted) and counted.

The walker is generic over the state classes: it saves an object's ndarray, number, counter and
nested-state attributes, and restores them onto a freshly built object of the same config, so a
counter added to a state class later is saved without touching this module. Attributes derived
from config or caches are skipped by name (SKIP, and a class's own `snapshot_skip`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import logging
import os
import threading
import time
import zipfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import orjson

from exporter.config.model import CaptureReference, MlmonConfig, ModelConfig
from exporter.profiles.files import write_atomically
from exporter.profiles.profile import Profile
from exporter.state.store import StateStore, VersionState

log = logging.getLogger("mlmon")

FORMAT = "mlmon-state"
FORMAT_VERSION = 2  # 2: pending predictions kept per model (a share each), ids no longer in one dict
FILE_NAME = "mlmon-state.npz"
TREE_KEY = "tree"

# Config-derived attributes and caches: rebuilt from the running config, never restored.
SKIP = frozenset({
    "lock", "model", "config", "profiles", "profile", "layout", "clock", "edges", "class_index", "codec", "basis",
    "render_cache", "drift_reference", "drift_cache", "drift_series", "max_entries", "ttl", "models",
    "delay_bounds",
})
# Outcomes counted in mlmon_state_restores_total / mlmon_state_snapshots_total.
RESTORE_RESULTS = ("restored", "absent", "unreadable", "format_mismatch", "config_mismatch", "reference_mismatch")
SNAPSHOT_RESULTS = ("ok", "error")


class Mismatch(Exception):
    """The saved state does not fit the object built from the running config."""


# --------------------------------------------------------------------------------------- encode
class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value: np.ndarray) -> dict[str, str]:
        key = f"a{len(self.arrays)}"
        if value.dtype == object:  # captured categories: plain strings, so no pickle is needed
            value = value.astype(str)
        self.arrays[key] = value
        return {"$array": key}

    def value(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, dict):
            kind = "Counter" if isinstance(value, Counter) else "OrderedDict" if isinstance(value, OrderedDict) else "dict"
            if len(value) >= COLUMNAR_MIN and _rows_of_tuples(value):
                return self.columns(kind, value)
            return {"$dict": kind, "items": [[self.value(k), self.value(v)] for k, v in value.items()]}
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"$tuple": [self.value(v) for v in value]}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if _is_state_object(value):
            return self.object(value)
        return {"$skipped": type(value).__name__}

    def columns(self, kind: str, value: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        """A large dict of string keys to tuples (pending predictions, joined ids) as columns: a 100k-entry
        store encodes in milliseconds instead of a JSON object per cell."""
        rows = list(value.values())
        columns = []
        for i in range(len(rows[0])):
            column = [row[i] for row in rows]
            types = set(map(type, column))
            if types == {float} or types == {int}:
                columns.append(self.array(np.array(column, dtype=np.float64 if types == {float} else np.int64)))
            else:  # strings, or mixed values (a score here, a class there): JSON keeps their types
                columns.append({"$json": orjson.dumps(column).decode()})
        return {"$rows": kind, "keys": {"$json": orjson.dumps(list(value)).decode()}, "columns": columns}

    def object(self, obj: Any) -> dict[str, Any]:
        skip = SKIP | set(getattr(type(obj), "snapshot_skip", ()))
        fields = {name: self.value(v) for name, v in vars(obj).items() if name not in skip and not name.startswith("_")}
        return {"$object": type(obj).__name__, "fields": fields}


COLUMNAR_MIN = 64


def _rows_of_tuples(value: dict[Any, Any]) -> bool:
    first_key, first = next(iter(value.items()))
    return isinstance(first_key, str) and isinstance(first, tuple) and not hasattr(first, "_fields")


def _is_state_object(value: Any) -> bool:
    cls = type(value)
    if not hasattr(value, "__dict__") or cls.__module__.split(".")[:2] != ["exporter", "state"] and cls.__name__ != "ExporterStats":
        return False
    return not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------- decode
class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "$array" in node:
            return np.array(self.arrays[node["$array"]])
        if "$tuple" in node:
            return tuple(self.value(v) for v in node["$tuple"])
        if "$rows" in node:
            kind = {"Counter": Counter, "OrderedDict": OrderedDict, "dict": dict}[node["$rows"]]
            columns = [orjson.loads(c["$json"]) if "$json" in c else self.arrays[c["$array"]].tolist() for c in node["columns"]]
            return kind(zip(orjson.loads(node["keys"]["$json"]), zip(*columns)))
        if "$dict" in node:
            kind = {"Counter": Counter, "OrderedDict": OrderedDict, "dict": dict}[node["$dict"]]
            # Through a dict: Counter(pairs) would count the pairs instead of taking them as items.
            return kind(OrderedDict((_hashable(self.value(k)), _tupled(self.value(v))) for k, v in node["items"]))
        raise Mismatch(f"cannot decode {sorted(node)}")

    def apply(self, target: Any, node: dict[str, Any]) -> None:
        """Write a saved object's fields onto a fresh object built from the same config."""
        if node.get("$object") != type(target).__name__:
            raise Mismatch(f"saved {node.get('$object')}, running {type(target).__name__}")
        skip = SKIP | set(getattr(type(target), "snapshot_skip", ()))
        for name, saved in node["fields"].items():
            if name in skip or not hasattr(target, name):
                continue  # a field this version no longer has: nothing to restore it into
            if isinstance(saved, dict) and "$skipped" in saved:
                continue
            self._field(target, name, getattr(target, name), saved)

    def _field(self, target: Any, name: str, current: Any, saved: Any) -> None:
        if isinstance(current, np.ndarray) and isinstance(saved, dict) and "$array" in saved:
            array = self.arrays[saved["$array"]]
            if array.shape != current.shape:
                raise Mismatch(f"{type(target).__name__}.{name}: saved shape {array.shape}, running {current.shape}")
            current[...] = array
        elif isinstance(current, dict) and isinstance(saved, dict) and ("$dict" in saved or "$rows" in saved):
            current.clear()
            for key, value in self.value(saved).items():  # item by item: Counter.update would add
                current[key] = value
        elif _is_state_object(current) and isinstance(saved, dict) and "$object" in saved:
            self.apply(current, saved)
        elif isinstance(current, list) and isinstance(saved, list) and current and _is_state_object(current[0]):
            if len(current) != len(saved):
                raise Mismatch(f"{type(target).__name__}.{name}: {len(saved)} saved, {len(current)} running")
            for item, item_saved in zip(current, saved):
                self.apply(item, item_saved)
        elif current is None and isinstance(saved, dict) and "$object" in saved:
            raise Mismatch(f"{type(target).__name__}.{name}: saved state where the running config has none")
        else:
            setattr(target, name, self.value(saved))


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _tupled(value: Any) -> Any:
    """Dict values that were tuples (pending predictions, joined ids) come back as tuples."""
    return tuple(value) if isinstance(value, list) else value


# ------------------------------------------------------------------------------ what is matched
def model_fingerprint(config: MlmonConfig, model: ModelConfig) -> str:
    """What a model's saved state depends on: its config and the window slot count."""
    text = orjson.dumps([model.model_dump(mode="json"), config.exporter.window_slots], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]


def _reference_hash(store: StateStore, model: ModelConfig) -> str | None:
    profile = store.profiles.get(model.name)
    return profile.content_hash if profile is not None else None


def _accepted_hashes(store: StateStore, model: ModelConfig) -> set[str | None]:
    """The running reference's hash, and the one it was promoted from (docs/reference.md): a promote keeps the
    bins, so state saved just before it (a crash before the next snapshot) still fits the promoted reference."""
    profile = store.profiles.get(model.name)
    if profile is None:
        return {None}
    promotion = profile.extras.get("promotion")
    previous = promotion.get("previous_hash") if isinstance(promotion, dict) else None
    return {profile.content_hash} | ({previous} if isinstance(previous, str) else set())


# ----------------------------------------------------------------------------------------- save
class SnapshotInfo(NamedTuple):
    path: Path
    bytes: int
    seconds: float


def _version_node(encoder: _Encoder, state: VersionState) -> dict[str, Any]:
    with state.lock, state.model_quality.lock:
        node = encoder.object(state)
        if isinstance(state.model.reference, CaptureReference) and state.capture is None and state.profile is not None:
            node["captured_profile"] = state.profile.to_json()  # made from live traffic: not in any file
    return node


def _copied(obj: Any) -> Any:
    """A shallow copy whose containers are copies too, taken under the object's own lock (C-speed copies)."""
    with getattr(obj, "lock", threading.Lock()):
        duplicate = copy.copy(obj)
        for name, value in vars(obj).items():
            if isinstance(value, (dict, list)):
                value = value.copy()
                if isinstance(value, dict):  # a dict of dicts (pending predictions per model): copy one level down
                    for key, inner in value.items():
                        if isinstance(inner, dict):
                            value[key] = inner.copy()
                setattr(duplicate, name, value)
            elif isinstance(value, np.ndarray):
                setattr(duplicate, name, value.copy())
    return duplicate


def encode_state(store: StateStore, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON tree and the arrays of a consistent-enough copy of the state (each part under its own lock)."""
    encoder = _Encoder()
    with store.lock:
        versions = {name: list(versions.items()) for name, versions in store.versions.items()}
        evictions = dict(store.evictions)
    models = {}
    for model in store.config.models:
        models[model.name] = {
            "fingerprint": model_fingerprint(store.config, model),
            "reference_hash": _reference_hash(store, model),
            "evictions": evictions.get(model.name, 0),
            "versions": [[version, _version_node(encoder, state)] for version, state in versions.get(model.name, [])],
        }
        if model.name in store.shadows:  # shadow predictions waiting for their champion's, and the pair counts
            models[model.name]["shadow"] = encoder.object(_copied(store.shadows[model.name]))
    # The ingest path waits only for the copy, not the encoding. A Redis store lives in Redis and outlives
    # this process: it is never snapshotted (nor restored), its `snapshot` flag says so.
    labels = encoder.object(_copied(store.labels)) if store.labels.snapshot else None
    parts = {name: encoder.object(_copied(obj)) for name, obj in extra.items()}
    tree = {"format": FORMAT, "version": FORMAT_VERSION, "saved_at": time.time(), "models": models,
            "labels": labels, "parts": parts}
    return tree, encoder.arrays


def write_snapshot(path: Path, tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
    """Crash-safe write: temp file beside the target, fsync, rename over it, fsync the folder."""
    buffer = io.BytesIO()
    np.savez(buffer, **{TREE_KEY: np.frombuffer(orjson.dumps(tree), dtype=np.uint8)}, **arrays)
    data = buffer.getvalue()
    write_atomically(path, data)
    return len(data)


def save(path: Path, store: StateStore, extra: dict[str, Any] | None = None) -> SnapshotInfo:
    started = time.perf_counter()
    tree, arrays = encode_state(store, extra or {})
    size = write_snapshot(path, tree, arrays)
    return SnapshotInfo(path, size, time.perf_counter() - started)


# -------------------------------------------------------------------------------------- restore
class RestoreReport(NamedTuple):
    result: str                      # one of RESTORE_RESULTS for the file as a whole
    models: dict[str, str]           # per model: restored, config_mismatch or reference_mismatch
    saved_at: float | None


def read_snapshot(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The tree and arrays of a snapshot file; ValueError when it is not one we can read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"not a readable snapshot ({type(error).__name__}: {error})") from None
    if TREE_KEY not in arrays:
        raise ValueError("no state tree in the file")
    try:
        tree = orjson.loads(arrays.pop(TREE_KEY).tobytes())
    except orjson.JSONDecodeError as error:
        raise ValueError(f"state tree is not JSON ({error})") from None
    return tree, arrays


def set_aside(path: Path, why: str) -> Path:
    """Keep a snapshot we cannot use for a person to look at; the next save writes a fresh one."""
    target = path.with_name(f"{path.name}.rejected-{int(time.time())}")
    os.replace(path, target)
    log.error("state snapshot %s set aside as %s: %s; starting with fresh state", path, target.name, why)
    return target


def restore(path: Path, store: StateStore, extra: dict[str, Any] | None = None) -> RestoreReport:
    """Load a snapshot into a freshly started store (before any traffic); never raises for a bad file."""
    if not path.exists():
        return RestoreReport("absent", {}, None)
    try:
        tree, arrays = read_snapshot(path)
        if tree.get("format") != FORMAT or tree.get("version") != FORMAT_VERSION:
            set_aside(path, f"format {tree.get('format')!r} version {tree.get('version')!r}, expected {FORMAT} {FORMAT_VERSION}")
            return RestoreReport("format_mismatch", {}, None)
        return _apply(tree, arrays, store, extra or {})
    except (ValueError, Mismatch, KeyError, TypeError) as error:
        set_aside(path, str(error))
        return RestoreReport("unreadable", {}, None)


def _apply(tree: dict[str, Any], arrays: dict[str, np.ndarray], store: StateStore, extra: dict[str, Any]) -> RestoreReport:
    decoder = _Decoder(arrays)
    outcomes: dict[str, str] = {}
    restored_versions: dict[str, OrderedDict[str, VersionState]] = {}
    for model in store.config.models:
        saved = tree["models"].get(model.name)
        if saved is None:
            continue
        if saved["fingerprint"] != model_fingerprint(store.config, model):
            outcomes[model.name] = "config_mismatch"
            log.warning("state snapshot: model %s's config changed since the snapshot; its state starts fresh", model.name)
            continue
        if saved["reference_hash"] not in _accepted_hashes(store, model):
            outcomes[model.name] = "reference_mismatch"
            log.warning("state snapshot: model %s's reference profile changed; its state starts fresh", model.name)
            continue
        versions: OrderedDict[str, VersionState] = OrderedDict()
        try:  # one model's state that cannot be decoded costs that model its state, not the others theirs
            for version, node in saved["versions"]:
                state = store._new_state(model, version)
                if "captured_profile" in node:
                    state._use_profile(Profile.from_json(node["captured_profile"]))
                decoder.apply(state, node)
                versions[version] = state
        except (ValueError, Mismatch, KeyError, TypeError) as error:
            outcomes[model.name] = "unreadable"
            log.warning("state snapshot: model %s's state cannot be decoded (%s); its state starts fresh", model.name,
                        error)
            continue
        restored_versions[model.name] = versions
        store.evictions[model.name] = saved.get("evictions", 0)
        outcomes[model.name] = "restored"
    # Everything decoded without error: only now does the running store change.
    with store.lock:
        for name, versions in restored_versions.items():
            store.versions[name] = versions
    known = {m.name for m in store.config.models}
    if not store.labels.snapshot:
        if tree["labels"] is not None:
            log.warning("state snapshot: pending predictions saved by the in-memory store are not moved into the "
                        "%s label store; they are dropped", store.labels.backend)
    elif tree["labels"] is None:
        log.warning("state snapshot: saved with a shared label store; the in-memory store starts empty")
    else:
        with store.labels.lock:
            decoder.apply(store.labels, tree["labels"])
            _drop_pending_of_reset_models(store, {n for n, o in outcomes.items() if o != "restored"} | _unknown(tree, known))
    for name, outcome in outcomes.items():
        shadow = tree["models"].get(name, {}).get("shadow")
        if outcome == "restored" and shadow is not None and name in store.shadows:
            with store.shadows[name].lock:
                decoder.apply(store.shadows[name], shadow)
    for name, obj in extra.items():
        if name in tree.get("parts", {}):
            decoder.apply(obj, tree["parts"][name])
    log.info(
        "state restored from snapshot of %s: %s",
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tree.get("saved_at", 0))),
        ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items()) or "no model state",
    )
    return RestoreReport("restored", outcomes, tree.get("saved_at"))


def _unknown(tree: dict[str, Any], known: set[str]) -> set[str]:
    return set(tree["models"]) - known


def _drop_pending_of_reset_models(store: StateStore, models: set[str]) -> None:
    """Pending predictions of a model whose state starts fresh cannot be scored: count them as expired."""
    if not models:
        return
    for model in models:
        store.labels.drop_model_locked(model, "expired")


# ------------------------------------------------------------------------------------ periodic
class Snapshotter:
    """Saves the state every `interval` seconds from a background thread, and once more at stop()."""

    def __init__(
        self, path: Path, store: StateStore | Callable[[], StateStore], extra: dict[str, Any], interval: float
    ) -> None:
        self.path = path
        # A callable is asked for the store at each save: a config reload swaps in a new store.
        self.store_of = store if callable(store) else (lambda: store)
        self.extra = extra
        self.interval = interval
        self.results: Counter[str] = Counter({result: 0 for result in SNAPSHOT_RESULTS})
        self.restores: Counter[str] = Counter({result: 0 for result in RESTORE_RESULTS})
        self.last: SnapshotInfo | None = None
        self.last_success: float = 0.0
        self._stop = threading.Event()
        self._save_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mlmon-snapshot", daemon=True)

    def restore(self) -> RestoreReport:
        report = restore(self.path, self.store_of(), self.extra)
        self.restores[report.result] += 1
        for outcome in report.models.values():
            if outcome != "restored":
                self.restores[outcome] += 1
        return report

    def start(self) -> None:
        self._thread.start()

    def save(self) -> SnapshotInfo | None:
        with self._save_lock:  # the periodic save and the final one never interleave
            try:
                self.last = save(self.path, self.store_of(), self.extra)
            except (OSError, ValueError) as error:
                self.results["error"] += 1
                log.error("state snapshot to %s failed: %s", self.path, error)
                return None
            self.results["ok"] += 1
            self.last_success = time.time()
            return self.last

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.save()

    def stop(self) -> None:
        """Stop the periodic saves and write the final snapshot (call after the listeners stopped)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self.save()
