"""`mlmon labels send FILE`: a batch label feed (a CRM export, a chargeback file) to the exporter.

Reads CSV, JSON lines or Parquet, sends `{ids, labels}` columnar bodies of `batch_size` rows to
`POST /v1/labels`, and prints what became of them (joined, unknown_id, duplicate, invalid). CSV
cells are text, so label cells are read as JSON would carry them: `1`/`0`, `true`/`false` and
numbers become numbers and booleans, anything else stays a class name.

Retries: a connection error or a 5xx is retried with backoff (the exporter may be restarting); a
4xx is the body's fault, so sending stops and the answer is printed. A retried batch that had in
fact been applied before the failure comes back as `duplicate`, never as a second join. An answer
with `unavailable` labels (the exporter's Redis label store was down) is retried the same way.

With several replicas and the in-memory label store, each pod knows only its own predictions:
send the file to every pod (`--url` once per pod, e.g. the addresses behind a headless Service);
a label unknown to one pod is `unknown_id` there and joins on the pod that holds it.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

import orjson

from exporter.profiles.build import read_chunks

OUTCOMES = ("joined", "unknown_id", "duplicate", "invalid", "unavailable")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


class SendError(Exception):
    """The exporter refused a batch (4xx) or stayed unreachable through every retry."""


def label_value(cell: Any) -> Any:
    """A CSV cell as the JSON value a label would be: 1 -> 1, 0.5 -> 0.5, true -> True, cat -> "cat"."""
    if not isinstance(cell, str):
        return cell
    text = cell.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass
class Summary:
    sent: int = 0
    batches: int = 0
    retries: int = 0
    skipped: int = 0  # rows without an id or a label
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        # `unavailable` (the exporter's Redis label store was down through every retry) only when it happened
        counts = ", ".join(f"{name} {self.outcomes[name]}" for name in OUTCOMES
                           if name != "unavailable" or self.outcomes[name])
        return f"{self.sent} labels in {self.batches} batches: {counts}; {self.skipped} rows skipped, {self.retries} retries"


def batches(path: Path, id_column: str, label_column: str, size: int, summary: Summary) -> Iterator[tuple[list, list]]:
    ids: list[Any] = []
    labels: list[Any] = []
    for chunk in read_chunks(path, label_column, progress=False):
        for row in chunk:
            identifier, label = row.get(id_column), row.get(label_column)
            if identifier in (None, "") or label in (None, ""):
                summary.skipped += 1
                continue
            ids.append(identifier)
            labels.append(label_value(label))
            if len(ids) == size:
                yield ids, labels
                ids, labels = [], []
    if ids:
        yield ids, labels


def post(url: str, body: bytes, token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return orjson.loads(response.read())


def send_batch(url: str, body: bytes, token: str | None, timeout: float, summary: Summary) -> dict[str, Any]:
    answer: dict[str, Any] | None = None
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
        time.sleep(delay)
        try:
            answer = post(url, body, token, timeout)
            if not answer.get("unavailable"):
                return answer
            # The exporter's Redis label store was unreachable: nothing of those joined; send the batch again
            # (labels that did join come back `duplicate`, never joined twice).
            problem = f"label store unavailable for {answer['unavailable']} labels"
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise SendError(f"{url} answered {error.code}: {error.read().decode(errors='replace')[:500]}") from None
            problem = f"{error.code}"
        except (urllib.error.URLError, OSError) as error:
            problem = str(getattr(error, "reason", error))
        if attempt < len(RETRY_DELAYS):
            summary.retries += 1
    if answer is not None:  # answered, but its label store stayed unavailable: counted in the summary
        return answer
    raise SendError(f"{url} unreachable after {len(RETRY_DELAYS)} retries ({problem})")


def send_labels(
    path: Path, urls: list[str], id_column: str = "id", label_column: str = "label", model: str | None = None,
    batch_size: int = 10_000, token: str | None = None, timeout: float = 30.0, out: TextIO = sys.stderr,
) -> dict[str, Summary]:
    """Send every labelled row of `path` to each exporter URL; returns a summary per URL."""
    if not path.is_file():
        raise SendError(f"{path}: no such file")
    summaries = {url: Summary() for url in urls}
    for url, summary in summaries.items():
        endpoint = url.rstrip("/") + "/v1/labels"
        for ids, labels in batches(path, id_column, label_column, batch_size, summary):
            document: dict[str, Any] = {"ids": ids, "labels": labels}
            if model is not None:
                document["model"] = model
            answer = send_batch(endpoint, orjson.dumps(document), token, timeout, summary)
            summary.sent += len(ids)
            summary.batches += 1
            summary.outcomes.update({k: int(answer.get(k, 0)) for k in OUTCOMES})
            print(f"{url}: {summary.sent} labels sent, {summary.outcomes['joined']} joined", file=out, flush=True)
    return summaries
