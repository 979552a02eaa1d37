"""Promoted references kept in `exporter.state_dir/references/`, so a promote survives restarts and reloads.

The config's reference file is never overwritten (in Kubernetes it is a read-only ConfigMap, in
git it is the reviewed one). A promote writes the new profile as
``references/<model>-<hash12>.json`` and records, in ``references/promoted.json``, which profile
replaces which: ``{model: {"file", "hash", "base_hash"}}`` where ``base_hash`` is the hash of the
file the config points at. At start and at every reload the record is applied over the profiles the
config names (:func:`apply_promoted`):

- the config still points at a file with ``base_hash``: the promoted profile is used;
- the config now points at the promoted profile itself (its file committed and deployed): nothing to do;
- the config now points at another file (someone deployed a new reference): the config wins, the
  record is ignored and one warning says so. Deploying a new reference is how a promote is undone.

Both files are written crash-safe (temporary file, fsync, rename). Models whose reference is
captured from live traffic keep their per-version profiles in the state snapshot instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig
from exporter.profiles.files import write_atomically
from exporter.profiles.load import load_profile, one_line
from exporter.profiles.profile import Profile, ProfileError

log = logging.getLogger("mlmon")

FOLDER = "references"
RECORD = "promoted.json"


def folder(state_dir: Path) -> Path:
    return state_dir / FOLDER


def profile_file(state_dir: Path, profile: Profile) -> Path:
    return folder(state_dir) / f"{profile.model}-{profile.short_hash}.json"


def write_profile(state_dir: Path, profile: Profile) -> Path:
    """The profile as a file in the references folder (the same JSON `mlmon profile build` writes)."""
    path = profile_file(state_dir, profile)
    write_atomically(path, (json.dumps(profile.to_json(), indent=1, sort_keys=True) + "\n").encode())
    return path


def read_record(state_dir: Path) -> dict[str, Any]:
    path = folder(state_dir) / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.error("promoted references record %s unreadable (%s); the config's references apply", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def record_promotion(state_dir: Path, profile: Profile, path: Path, base_hash: str) -> None:
    """Say that `profile` (written at `path`) replaces the config's reference whose hash is `base_hash`."""
    record = read_record(state_dir)
    record[profile.model] = {"file": path.name, "hash": profile.content_hash, "base_hash": base_hash}
    write_atomically(folder(state_dir) / RECORD, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def apply_promoted(config: MlmonConfig, profiles: dict[str, Profile]) -> dict[str, Profile]:
    """The config's profiles with the promoted ones put in where the record still applies (see the module doc)."""
    state_dir = config.state_dir()
    if state_dir is None:
        return profiles
    record = read_record(state_dir)
    out = dict(profiles)
    for name, entry in record.items():
        model, current = config.model(name), profiles.get(name)
        if model is None or current is None or not isinstance(entry, dict):
            continue
        if entry.get("hash") == current.content_hash:
            continue  # the config now points at the promoted profile itself (the GitOps way): nothing to put in
        if entry.get("base_hash") != current.content_hash:
            log.warning("model %s: the config's reference changed since the promote to %s; the config's reference "
                        "applies", name, str(entry.get("hash"))[:19])
            continue
        path = folder(state_dir) / str(entry.get("file", ""))
        try:
            promoted = load_profile(path, model)
        except ProfileError as error:
            log.error("model %s: promoted reference unusable, the config's reference applies: %s", name, one_line(str(error)))
            continue
        if promoted.content_hash != entry.get("hash"):
            log.error("model %s: promoted reference %s does not have the recorded hash; the config's reference applies",
                      name, path)
            continue
        out[name] = promoted
    return out
