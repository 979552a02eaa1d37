"""Which alert events already ran an action: bounded, and kept on disk when a state folder is given.

Alertmanager redelivers a group (every repeat_interval, after a failed delivery, from each peer
of an HA pair), so a key (action, group, an alert's startsAt) is remembered before its run starts
and a redelivery finds it. A run
that failed after its retries gives its keys back: the next redelivery tries again. The record
holds at most `capacity` keys; the oldest go first and each eviction is counted. The file is
written whole (temp file, fsync, rename) after each change, so a crash leaves the old or the new
record, never half of one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import orjson

from exporter.profiles.files import write_atomically

log = logging.getLogger("mlmon.act")
FILE_NAME = "actions.json"
FORMAT = 1


class DedupeRecord:
    def __init__(self, capacity: int, path: Path | None = None, on_evict: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.on_evict = on_evict
        self.path = path
        self.keys: OrderedDict[str, float] = OrderedDict()  # key -> when it was claimed (unix time)
        self.evictions = 0
        self.lock = threading.Lock()
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as error:
            log.warning("dedupe record %s unreadable (%s): starting empty", path, error)
            return
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("keys"), list):
            log.warning("dedupe record %s has an unknown format: starting empty", path)
            return
        for item in data["keys"][-self.capacity:]:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                self.keys[item[0]] = float(item[1])

    def claim(self, keys: list[str]) -> bool:
        """True when no key was seen before: a new event, to run. False when any was: the same group
        episode, redelivered or grown by an alert that joined it. Either way every key is remembered,
        so the episode lasts as long as any of its alerts keeps firing."""
        with self.lock:
            seen = any(k in self.keys for k in keys)
            added = False
            now = time.time()
            for key in keys:
                added = added or key not in self.keys
                self.keys[key] = now
                self.keys.move_to_end(key)
            while len(self.keys) > self.capacity:
                self.keys.popitem(last=False)
                self.evictions += 1
                if self.on_evict is not None:
                    self.on_evict()
            if added:
                self._save()
            return not seen

    def release(self, keys: list[str]) -> None:
        """Forget keys whose run did not happen (failed, rate-limited, no room in the queue)."""
        with self.lock:
            for key in keys:
                self.keys.pop(key, None)
            self._save()

    def release_group(self, prefix: str) -> None:
        """Forget every key of one action's group (a failed run): also keys that alerts joining the
        group added while the run was trying, so the next redelivery runs it again."""
        with self.lock:
            for key in [k for k in self.keys if k.startswith(prefix)]:
                del self.keys[key]
            self._save()

    def __len__(self) -> int:
        return len(self.keys)

    def _save(self) -> None:
        if self.path is None:
            return
        data = orjson.dumps({"format": FORMAT, "keys": [[k, t] for k, t in self.keys.items()]})
        try:
            write_atomically(self.path, data)
        except OSError as error:  # the record in memory still holds; a restart may run an action again
            log.error("cannot save the dedupe record %s: %s", self.path, error)
