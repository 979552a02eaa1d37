"""``Client``: what model code calls, once per prediction or once per batch.

The calls on the model's thread only append to a bounded in-memory buffer (a deque append, a
length check and a shallow copy of the features: under a microsecond of the 5 us budget, about a
``queue.Queue.put``; see benchmarks/bench_client.py); a
background thread does everything that can be slow or fail. No call here raises into the
caller's request path: what cannot be read is counted as ``invalid``, what does not fit is
counted as dropped.

    mlmon = Client("http://127.0.0.1:8711")
    mlmon.log(model="fraud", version="v1", features={"amount": 42.5}, prediction=0.03, id="tx-1")
    mlmon.label("tx-1", 0)
"""

from __future__ import annotations

import atexit
import os
import ssl
import time
import weakref
from collections.abc import Mapping
from typing import Any, Optional

from mlmon_client.batching import ColumnBatch, Label
from mlmon_client.columns import snapshot
from mlmon_client.options import Options
from mlmon_client.sender import Buffers, Sender
from mlmon_client.stats import Counters, Stats
from mlmon_client.transport import Endpoint


class Client:
    """Sends predictions and labels to the mlmon sidecar in the background.

    ``url`` is the sidecar's ingest listener (default ``$MLMON_URL`` or http://127.0.0.1:8711);
    ``token_file`` holds a bearer token for an authenticated listener (default ``$MLMON_TOKEN_FILE``).
    ``enabled=False`` makes every call a no-op (no thread, nothing counted): a switch for tests
    and for turning monitoring off without touching the model code.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        token_file: Optional[str] = None,
        max_queue: int = 10_000,
        batch_size: int = 1_000,
        flush_interval: float = 0.5,
        timeout: float = 2.0,
        retry_for: float = 10.0,
        max_backoff: float = 2.0,
        close_timeout: float = 2.0,
        ssl_context: Optional[ssl.SSLContext] = None,
        enabled: bool = True,
    ) -> None:
        url, token_file = Options.from_environment(url, token_file)
        self.options = Options(
            url=url, token_file=token_file, max_queue=max_queue, batch_size=batch_size, flush_interval=flush_interval,
            timeout=timeout, retry_for=retry_for, max_backoff=max_backoff, close_timeout=close_timeout,
            ssl_context=ssl_context,
        )
        self.endpoint = Endpoint(url, timeout, token_file, ssl_context)  # raises here, at start-up, for a bad URL
        self.enabled = enabled
        self._closed = not enabled
        self._start()
        if enabled:
            # Weak references: the hooks must not keep a forgotten client alive.
            self._exit_hook = _CloseAtExit(weakref.ref(self))
            atexit.register(self._exit_hook)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_AfterFork(weakref.ref(self)))

    def _start(self) -> None:
        self._counters = Counters()
        self._buffers = Buffers()
        self._records = self._buffers.records  # read once here, not per call
        self._max_queue = self.options.max_queue
        self._batch_size = self.options.batch_size
        self._sender = Sender(self._buffers, self.endpoint, self._counters, self.options)
        self._wake = self._sender.wake
        if self.enabled:
            self._sender.start()
            # A client garbage-collected unclosed tells its thread to send what is queued within
            # close_timeout and stop. Without waiting: collection can run on any thread, a model's too.
            self._finalizer = weakref.finalize(self, self._sender.stop, self.options.close_timeout)
            self._finalizer.atexit = False  # at exit the exit hook closes, and waits

    # ------------------------------------------------------------------ the model's thread

    def log(
        self,
        model: str,
        version: Any,
        features: Mapping[str, Any],
        prediction: Any,
        id: Any = None,  # noqa: A002 - the name the exporter uses
        segments: Optional[Mapping[str, Any]] = None,
        timestamp: Any = None,
        predicted_class: Any = None,
    ) -> None:
        """Queue one prediction. Never blocks, never raises.

        ``features`` is copied (shallowly), so the caller may reuse its dict. ``timestamp``
        defaults to now (unix seconds): the exporter uses it for the label delay.
        ``predicted_class`` is the class the model itself predicted next to its ``prediction``
        score(s): it replaces the exporter's decision_threshold (binary) or argmax (multiclass).
        """
        if self._closed:
            if self.enabled:
                self._counters.add("dropped_closed")
            return
        records = self._records
        try:
            if len(records) + self._buffers.held >= self._max_queue:
                self._counters.add("dropped_queue_full")
                return
            records.append((model, version, dict(features), prediction, id, segments,
                            time.time() if timestamp is None else timestamp, predicted_class))
            if len(records) == self._batch_size:  # a full batch goes now, not at the next interval
                self._wake.set()
        except Exception:  # features that are not a mapping, ...: counted, the model's request goes on
            self._counters.add("invalid")

    def log_batch(
        self,
        model: str,
        version: Any,
        features: Any,
        predictions: Any,
        ids: Any = None,
        segments: Any = None,
        timestamps: Any = None,
        labels: Any = None,
        feature_names: Optional[list[str]] = None,
        predicted_classes: Any = None,
    ) -> None:
        """Queue a batch. Never blocks, never raises.

        ``features``: a pandas DataFrame, ``{name: column}`` (lists, numpy arrays, Series), rows of
        ``{name: value}``, or a 2-D array with ``feature_names``. ``predictions``, ``ids``,
        ``labels``, ``predicted_classes`` and ``timestamps`` are columns of the same length (``timestamps`` may also be
        one value for all; default now); ``segments`` is rows of ``{attribute: value}`` or columns
        ``{attribute: [...]}``. Arrays are copied here and converted on the sender thread.
        """
        if self._closed:
            if self.enabled:
                self._counters.add("dropped_closed", _rows(predictions))
            return
        rows = 1
        try:
            rows = len(predictions)
            buffers = self._buffers
            with buffers.lock:
                queued = buffers.queued()
                # A batch larger than the whole bound still goes into an empty queue: it is already in memory.
                if queued and queued + rows > self._max_queue:
                    self._counters.add("dropped_queue_full", rows)
                    return
                buffers.held += rows
            plain_time = timestamps is None or isinstance(timestamps, (int, float, str))
            buffers.batches.append(ColumnBatch(
                model, version, snapshot(features), snapshot(predictions), snapshot(ids), snapshot(segments),
                timestamps if plain_time else snapshot(timestamps), snapshot(labels), feature_names, rows,
                snapshot(predicted_classes),
            ))
            self._wake.set()
        except Exception:
            self._counters.add("invalid", rows)

    def label(self, id: Any, label: Any, model: Optional[str] = None) -> None:  # noqa: A002
        """Queue the ground truth of an earlier prediction, joined by its ``id``. Never blocks, never raises."""
        if self._closed:
            if self.enabled:
                self._counters.add("labels_dropped")
            return
        labels = self._buffers.labels
        if len(labels) >= self._max_queue:
            self._counters.add("labels_dropped")
            return
        labels.append(Label(id, label, model))

    # ------------------------------------------------------------------ lifecycle and counters

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued now; True when everything was handled within `timeout` seconds."""
        if not self.enabled:
            return True
        return self._sender.flush(timeout)

    def close(self, timeout: Optional[float] = None) -> None:
        """Send what is queued, for at most `timeout` seconds (default close_timeout), then stop.

        Returns within the deadline even when the sidecar hangs; what could not be sent is counted
        as dropped_closed. Later calls to log() are dropped and counted. Safe to call twice.
        """
        if not self.enabled or self._sender.stopping.is_set():
            return
        self._closed = True
        self._finalizer.detach()
        atexit.unregister(self._exit_hook)
        self._sender.close(self.options.close_timeout if timeout is None else timeout)

    def stats(self) -> Stats:
        """A snapshot of the counters (see mlmon_client.stats.Stats)."""
        return self._counters.snapshot(self._buffers.queued())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "disabled" if not self.enabled else "closed" if self._closed else "open"
        return f"<mlmon_client.Client {self.options.url} {state}>"

    def _after_fork(self) -> None:
        # The child has the parent's memory but not its sender thread; what the parent queued is the
        # parent's to send (sending it here too would count it twice).
        if self.enabled and not self._closed:
            self._finalizer.detach()
            self._start()


def _rows(predictions: Any) -> int:
    try:
        return len(predictions)
    except Exception:
        return 1


class _CloseAtExit:
    def __init__(self, client: weakref.ref[Client]) -> None:
        self.client = client

    def __call__(self) -> None:
        client = self.client()
        if client is not None:
            client.close()


class _AfterFork:
    def __init__(self, client: weakref.ref[Client]) -> None:
        self.client = client

    def __call__(self) -> None:
        client = self.client()
        if client is not None:
            client._after_fork()
