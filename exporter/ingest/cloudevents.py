"""KServe's inference logger: binary-mode CloudEvents, a request and its response joined by ``ce-id``.

The logger (kserve/kserve pkg/logger/worker.go, ``sendHttpCloudEvent``) posts each half on its own:
the body is the model server's request or response as it was, the attributes are headers:
``Ce-Id`` (shared by a request and its response), ``Ce-Type``
(``org.kubeflow.serving.inference.request`` / ``.response``), ``Ce-Inferenceservicename``,
``Ce-Namespace``, ``Ce-Component``, ``Ce-Endpoint`` (``default`` or ``canary``), ``Ce-Source``.
The halves arrive in either order, may be repeated, and one may never come; so the first half of
an id waits here, bounded by count, bytes and age (each way out counted):

    >>> store = EventStore(size=1, max_bytes=100, ttl=60)
    >>> store.offer("a", "request", b"{}", now=0) is None     # waits for its response
    True
    >>> store.offer("a", "response", b"[]", now=1)             # joined: (request, response)
    (b'{}', b'[]')
    >>> store.offer("a", "response", b"[]", now=2) is None, store.counts["duplicate"]
    (True, 1)
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
HALVES = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
ENDPOINTS = ("default", "canary")
# joined: pairs decoded; duplicate: a half already held or already joined; expired: a half whose
# other half never came within the TTL (an orphan); evicted: the oldest half dropped for room.
OUTCOMES = ("received", "joined", "duplicate", "expired", "evicted")


class EventStore:
    """First halves by ce-id, oldest first; ids joined lately are remembered so repeats are not orphans."""

    def __init__(self, size: int, max_bytes: int, ttl: float) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.lock = threading.Lock()
        self.pending: OrderedDict[str, tuple[float, str, bytes, dict[str, str]]] = OrderedDict()
        self.joined: OrderedDict[str, float] = OrderedDict()
        self.bytes = 0
        self.counts: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})

    def offer(
        self, event_id: str, half: str, body: bytes, now: float, attributes: dict[str, str] | None = None
    ) -> tuple[bytes, bytes] | None:
        """(request body, response body) when this half completes a pair, else None (held or a repeat)."""
        return self.offer_with(event_id, half, body, now, attributes or {})[0]

    def offer_with(
        self, event_id: str, half: str, body: bytes, now: float, attributes: dict[str, str]
    ) -> tuple[tuple[bytes, bytes] | None, dict[str, str]]:
        """As offer, plus the attributes of the first half (the request's name the model, too)."""
        with self.lock:
            self.counts["received"] += 1
            self._expire(now)
            if event_id in self.joined:
                self.counts["duplicate"] += 1
                return None, attributes
            held = self.pending.get(event_id)
            if held is not None:
                if held[1] == half:
                    self.counts["duplicate"] += 1
                    return None, attributes
                del self.pending[event_id]
                self.bytes -= len(held[2])
                self.joined[event_id] = now
                while len(self.joined) > self.size:
                    self.joined.popitem(last=False)
                self.counts["joined"] += 1
                pair = (held[2], body) if held[1] == "request" else (body, held[2])
                return pair, {**held[3], **attributes}
            if len(body) > self.max_bytes:
                self.counts["evicted"] += 1
                return None, attributes
            self.pending[event_id] = (now, half, body, attributes)
            self.bytes += len(body)
            while len(self.pending) > self.size or self.bytes > self.max_bytes:
                _, (_, _, dropped, _) = self.pending.popitem(last=False)
                self.bytes -= len(dropped)
                self.counts["evicted"] += 1
            return None, attributes

    def expire(self, now: float) -> None:
        with self.lock:
            self._expire(now)

    def _expire(self, now: float) -> None:
        deadline = now - self.ttl
        while self.pending:
            event_id, (at, _, body, _) = next(iter(self.pending.items()))
            if at > deadline:
                break
            del self.pending[event_id]
            self.bytes -= len(body)
            self.counts["expired"] += 1
        while self.joined and next(iter(self.joined.values())) <= deadline:
            self.joined.popitem(last=False)

    def __len__(self) -> int:
        return len(self.pending)
