"""Which model versions the state may hold: the allow-list, the new-version budget and the eviction rule.

`model_version` comes from the client and becomes a label value on every series of the version, so
each new version is a few hundred new series in Prometheus. Three rules keep that bounded without
ever dropping a version that is in use (issue 16, item 7):

* **allow / pattern** (``models[].versions``): a version outside them is never held;
* **max_new_per_minute**: new versions draw from a per-model token bucket (a burst of N, refilled at
  N per minute), so invented versions reach Prometheus at a bounded rate whatever the client sends;
* **evict_idle_after**: at ``max_versions_per_model`` a new version may evict the least recently seen
  one only when that one has been idle at least this long. Otherwise the *newcomer* is refused: a
  version still receiving traffic is never pushed out by a one-record version.

A refusal is a :class:`VersionRefused`; the service turns it into one rejection per record of the
batch (reason ``version_not_allowed``, ``version_rate_limited`` or ``too_many_versions``), counted in
``mlmon_records_rejected_total``, and the two limits in ``mlmon_limit_hits_total``.

    >>> budget = NewVersionBudget(per_minute=2, now=0.0)
    >>> [budget.take(0.0), budget.take(0.0), budget.take(0.0), budget.take(30.0)]
    [True, True, False, True]
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from exporter.config.model import ModelConfig, format_duration
from exporter.ingest.decode import Rejection


class Seen(Protocol):
    @property
    def last_seen(self) -> float: ...


class VersionRefused(Exception):
    """A batch's version may not be held; no state was changed for it."""

    def __init__(self, model: str, reason: str, detail: str, limit: str | None = None) -> None:
        super().__init__(detail)
        self.model = model
        self.reason = reason
        self.detail = detail
        self.limit = limit  # the `limit` label of mlmon_limit_hits_total, for the two rules that are limits

    def rejections(self, indices: Sequence[int]) -> list[Rejection]:
        """One rejection per record of the refused batch (`indices`: their positions in the request body)."""
        return [Rejection(index, self.reason, self.detail, model=self.model) for index in indices]


class NewVersionBudget:
    """A token bucket: `per_minute` tokens at most, refilled continuously at `per_minute` per 60 s."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity  # a restarted exporter may admit its live versions at once
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; the caller holds the store's lock."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def evictable(versions: Mapping[str, Seen], idle_after: float, now: float) -> str | None:
    """The least recently seen version when it has been idle for at least `idle_after` seconds, else None.

    `versions` is kept in order of last sight (the store moves a version to the end on every batch),
    so only the first one can qualify: if it is not idle long enough, no other is.
    """
    for version, state in versions.items():
        return version if now - state.last_seen >= idle_after else None
    return None


def admission_problem(model: ModelConfig, version: str, held: int, cap: int, has_room: bool) -> VersionRefused | None:
    """Why a version not yet held may not be created (before spending a token), or None."""
    rules = model.versions
    if not rules.admits(version):
        return VersionRefused(
            model.name, "version_not_allowed",
            f"model_version {version!r} is not in models[{model.name}].versions.allow and does not match its pattern",
        )
    if held >= cap and not has_room:
        return VersionRefused(
            model.name, "too_many_versions",
            f"{model.name} holds max_versions_per_model={cap} versions, none idle for "
            f"versions.evict_idle_after={format_duration(rules.evict_idle_after)}",
            limit="versions_per_model",
        )
    return None


def rate_limited(model: ModelConfig) -> VersionRefused:
    return VersionRefused(
        model.name, "version_rate_limited",
        f"new versions of {model.name} are limited to versions.max_new_per_minute={model.versions.max_new_per_minute}",
        limit="new_versions_per_minute",
    )
