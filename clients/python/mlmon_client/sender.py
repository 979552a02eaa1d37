"""The background thread: drain the buffers, build columnar bodies, POST them, retry what is safe.

Nothing here runs on the model's thread. While the sidecar is unreachable one batch at a time is
retried with exponential backoff for ``retry_for`` seconds and then dropped (counted); meanwhile
the buffers fill to their bound and ``log()`` drops and counts, so memory stays flat however long
the sidecar is gone. The backoff carries over from batch to batch until a request gets through,
so a dead sidecar costs a connection attempt every ``max_backoff`` seconds, not a busy loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from typing import Any, Optional

from mlmon_client.batching import LABELS, Chunk, ColumnBatch, Label, batch_chunks, label_chunks, record_chunks
from mlmon_client.options import Options
from mlmon_client.stats import Counters
from mlmon_client.transport import Endpoint, Outcome

log = logging.getLogger("mlmon_client")
FIRST_BACKOFF = 0.05


class Buffers:
    """What the model's threads hand over. deque.append/popleft are atomic: the fast path takes no lock."""

    def __init__(self) -> None:
        self.records: deque[tuple] = deque()
        self.batches: deque[ColumnBatch] = deque()
        self.labels: deque[Label] = deque()
        # Rows outside `records`: queued in `batches`, or taken by the sender and not settled yet.
        # Counted against the bound too, so the bound is on all the client holds. Changed under `lock`.
        self.held = 0
        self.lock = threading.Lock()

    def queued(self) -> int:
        return len(self.records) + self.held

    def hold(self, rows: int) -> None:
        with self.lock:
            self.held += rows

    def empty(self) -> bool:
        return not (self.records or self.batches or self.labels)

    @staticmethod
    def take(items: deque, limit: int) -> list:
        taken = []
        try:
            while len(taken) < limit:
                taken.append(items.popleft())
        except IndexError:
            pass
        return taken

    def take_records(self, limit: int) -> list[tuple]:
        with self.lock:  # held from here until settled, so queued() never dips while they are in flight
            records = self.take(self.records, limit)
            self.held += len(records)
        return records


class Warnings:
    """Log the 1st, 10th, 100th... occurrence of each kind of trouble: visible, never a flood."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        count = self.seen[kind] = self.seen.get(kind, 0) + 1
        if count & (count - 1) == 0 or count % 1000 == 0:  # powers of two, then every thousandth
            log.warning(message + " (%d so far)", *args, count)


class Sender:
    def __init__(self, buffers: Buffers, endpoint: Endpoint, counters: Counters, options: Options) -> None:
        self.buffers = buffers
        self.endpoint = endpoint
        self.counters = counters
        self.options = options
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.deadline: Optional[float] = None  # monotonic; set by close()
        self.idle = threading.Condition()
        self.busy = False
        self.backoff = 0.0
        self.warnings = Warnings()
        self.thread = threading.Thread(target=self._run, name="mlmon-client-sender", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # ------------------------------------------------------------------ called from other threads

    def flush(self, timeout: float) -> bool:
        """Wait until the buffers are empty and nothing is in flight; False when `timeout` passed first."""
        end = time.monotonic() + timeout
        with self.idle:
            while self.busy or not self.buffers.empty():
                remaining = end - time.monotonic()
                if remaining <= 0 or not self.thread.is_alive():
                    return False
                self.wake.set()
                self.idle.wait(min(remaining, 0.05))
        return True

    def stop(self, timeout: float) -> None:
        """Tell the thread to send what is queued within `timeout` seconds and end; returns at once."""
        self.deadline = time.monotonic() + timeout
        self.stopping.set()
        self.wake.set()

    def close(self, timeout: float) -> None:
        self.stop(timeout)
        if self.thread.is_alive():
            self.thread.join(timeout)
        self._drop_rest()  # the thread may still sit in a hung request; what it has not taken is lost

    # ------------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        while True:
            if not self.stopping.is_set():
                self.wake.wait(self.options.flush_interval)
            self.wake.clear()
            with self.idle:
                self.busy = True
            try:
                self._cycle()
            except Exception:  # a bug here must not end the thread: the model keeps logging into it
                log.exception("mlmon client: unexpected error in the sender thread")
            finally:
                with self.idle:
                    self.busy = False
                    self.idle.notify_all()
            if self.stopping.is_set() and (self.buffers.empty() or self._remaining() <= 0):
                break
        self._drop_rest()

    def _remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def _cycle(self) -> None:
        limit = max(self.options.max_queue, 1)
        # Labels first, records second: a label logged after its prediction is then never sent before it.
        labels = self.buffers.take(self.buffers.labels, limit)
        records = self.buffers.take_records(limit)
        batches = self.buffers.take(self.buffers.batches, limit)
        chunks, invalid = record_chunks(records, self.options.batch_size)
        now = time.time()
        for batch in batches:
            try:
                chunks.extend(batch_chunks(batch, self.options.batch_size, now))
            except Exception as error:  # the caller's objects can raise anything while being read
                invalid += batch.rows
                self.warnings.warn("invalid", "mlmon client: a log_batch() call could not be read: %s", error)
        self._settle("invalid", invalid)
        for chunk in chunks:
            self._deliver(chunk)
        for chunk in label_chunks(labels, self.options.batch_size):
            self._deliver(chunk)

    def _settle(self, counter: str, rows: int, labels: bool = False) -> None:
        self.counters.add(counter, rows)
        if not labels:
            self.buffers.hold(-rows)

    def _deliver(self, chunk: Chunk) -> None:
        is_labels = chunk.route == LABELS
        try:
            body = chunk.encoded()
        except Exception as error:  # json_default calls the caller's objects (tolist, isoformat...)
            self.warnings.warn("encode", "mlmon client: cannot encode a batch as JSON: %s", error)
            self._settle("labels_rejected" if is_labels else "invalid", chunk.rows, is_labels)
            return
        first_try = time.monotonic()
        while True:
            if self.backoff and not self._pause(self.backoff):
                self._settle("labels_dropped" if is_labels else "dropped_closed", chunk.rows, is_labels)
                return
            timeout = min(self.options.timeout, self._remaining())
            if timeout <= 0:
                self._settle("labels_dropped" if is_labels else "dropped_closed", chunk.rows, is_labels)
                return
            outcome = self.endpoint.post(chunk.route, body, timeout)
            self.counters.add("requests")
            if outcome.kind != "retry":
                self.backoff = 0.0
                break
            self.backoff = min(self.options.max_backoff, max(FIRST_BACKOFF, self.backoff * 2) * random.uniform(0.8, 1.2))
            self.warnings.warn("unreachable", "mlmon client: sidecar at %s not reachable: %s", self.options.url, outcome.detail)
            if time.monotonic() - first_try + self.backoff > self.options.retry_for:
                self._settle("labels_dropped" if is_labels else "dropped_unreachable", chunk.rows, is_labels)
                return
            self.counters.add("retried")
        if outcome.kind == "too_large" and chunk.rows > 1:
            for half in chunk.halves():  # a 413 was refused before it was applied: halves are safe to send
                self._deliver(half)
            return
        self._count(chunk, outcome, is_labels)

    def _pause(self, seconds: float) -> bool:
        """Sleep between attempts; False when close()'s deadline leaves no time for another attempt."""
        if self.stopping.is_set():
            if self._remaining() <= seconds:
                return False
            time.sleep(seconds)
            return True
        self.stopping.wait(seconds)
        return self._remaining() > 0

    def _count(self, chunk: Chunk, outcome: Outcome, is_labels: bool) -> None:
        answer, rows = outcome.answer, chunk.rows
        if is_labels:
            self._count_labels(answer, rows, outcome)
            return
        if outcome.kind in ("ok", "rejected", "too_large"):
            accepted, rejected = answer.get("accepted"), answer.get("rejected")
            if not (isinstance(accepted, int) and isinstance(rejected, int) and accepted + rejected == rows):
                accepted, rejected = (rows, 0) if outcome.kind == "ok" else (0, rows)
            self._settle("sent", accepted)
            self._settle("rejected", rejected)
            if rejected:
                self.warnings.warn("rejected", "mlmon client: the exporter rejected records (HTTP %d): %s",
                                   outcome.status, outcome.detail)
        else:
            self._settle("unconfirmed", rows)
            self.warnings.warn("unconfirmed", "mlmon client: no answer for a batch of %d records: %s", rows, outcome.detail)

    def _count_labels(self, answer: dict, rows: int, outcome: Outcome) -> None:
        if outcome.kind == "ok":
            counts = [answer.get(key) for key in ("joined", "unknown_id", "duplicate", "invalid")]
            if all(isinstance(n, int) for n in counts) and sum(counts) == rows:
                self.counters.add("labels_joined", counts[0])
                self.counters.add("labels_unmatched", counts[1] + counts[2])
                self.counters.add("labels_rejected", counts[3])
            else:
                self.counters.add("labels_joined", rows)
        elif outcome.kind in ("rejected", "too_large"):
            self.counters.add("labels_rejected", rows)
            self.warnings.warn("labels_rejected", "mlmon client: the exporter refused labels (HTTP %d): %s",
                               outcome.status, outcome.detail)
        else:
            self.counters.add("labels_unconfirmed", rows)

    def _drop_rest(self) -> None:
        """Whatever is still buffered when the sender stops is lost: counted, never silently."""
        labels = self.buffers.take(self.buffers.labels, 1 << 62)
        records = self.buffers.take(self.buffers.records, 1 << 62)
        batches = self.buffers.take(self.buffers.batches, 1 << 62)
        self.buffers.hold(-sum(batch.rows for batch in batches))
        self.counters.add("labels_dropped", len(labels))
        self.counters.add("dropped_closed", len(records) + sum(batch.rows for batch in batches))
