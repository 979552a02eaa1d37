"""The two shapes of a call and how one try of each is made; retries and timing are runner.py's.

An HTTP try fails retryably on a connection error, a timeout, 408, 429 or 5xx (the endpoint may
recover); any other non-2xx answer fails at once (a 401 or 404 will not change by retrying).
A command fails retryably on a non-zero exit or its timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
OUTPUT_TAIL = 2048
USER_AGENT = "mlmon-act"


class SecretError(Exception):
    """A *_file secret could not be read: the run fails at once (no retry can fix a missing file)."""


def read_secret(path: str | None) -> str | None:
    """The file's content, stripped; read at each run so a rotated token is used at once."""
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretError(f"cannot read {path}: {error.strerror or error}") from None
    if not text:
        raise SecretError(f"{path} is empty")
    return text


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool
    detail: str
    output: str = ""


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    token_file: str | None = None  # read at each try (never in a dry run), sent as Authorization, never shown

    def describe(self) -> dict[str, Any]:
        """What the call sends, as `GET /actions` and a dry run show it (the token left out)."""
        headers = dict(self.headers)
        if self.token_file is not None:
            headers["Authorization"] = f"<from {self.token_file}>"
        return {"method": self.method, "url": self.url, "headers": headers, "body": self.body}

    @property
    def target(self) -> str:
        return f"{self.method} {self.url}"

    def perform(self, timeout: float) -> Outcome:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **self.headers}
        try:
            token = read_secret(self.token_file)
        except SecretError as error:
            return Outcome(False, False, str(error))
        if token is not None:
            headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        request = urllib.request.Request(self.url, data=orjson.dumps(self.body), headers=headers, method=self.method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Outcome(True, False, f"HTTP {response.status}")
        except urllib.error.HTTPError as error:
            snippet = error.read(300).decode("utf-8", "replace")
            return Outcome(False, error.code in RETRYABLE_STATUS, f"HTTP {error.code}: {snippet}")
        except (urllib.error.URLError, OSError) as error:  # refused, DNS, TLS, timeout
            reason = getattr(error, "reason", error)
            return Outcome(False, True, f"{type(error).__name__}: {reason}")


@dataclass(frozen=True)
class CommandCall:
    argv: tuple[str, ...]
    env: dict[str, str]  # added to the process's environment

    def describe(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "env": self.env}

    @property
    def target(self) -> str:
        return self.argv[0]

    def perform(self, timeout: float) -> Outcome:
        # Output goes to a temporary file, of which the record keeps the tail: a chatty command
        # never grows this process's memory.
        with tempfile.TemporaryFile() as output:
            try:
                process = subprocess.Popen(
                    list(self.argv), env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=output,
                    stderr=subprocess.STDOUT, start_new_session=True,  # its own group: a timeout stops its children too
                )
            except OSError as error:
                return Outcome(False, False, f"cannot start {self.argv[0]}: {error.strerror or error}")
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return Outcome(False, True, f"timed out after {timeout:g} s", _tail(output))
            if process.returncode != 0:
                return Outcome(False, True, f"exit status {process.returncode}", _tail(output))
            return Outcome(True, False, "exit status 0", _tail(output))


def _tail(output: IO[bytes]) -> str:
    size = output.seek(0, os.SEEK_END)
    output.seek(max(size - OUTPUT_TAIL, 0))
    return output.read().decode("utf-8", "replace")
