"""The client's settings, with the defaults a sidecar next to the model server needs."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Optional

DEFAULT_URL = "http://127.0.0.1:8711"  # the sidecar's ingest listener (exporter.ingest_listen)


@dataclass(frozen=True)
class Options:
    url: str = DEFAULT_URL
    token_file: Optional[str] = None  # a file holding a bearer token, re-read at every request (tokens rotate)
    max_queue: int = 10_000           # records waiting in memory; past it log() drops and counts
    batch_size: int = 1_000           # records per request; a full batch wakes the sender early
    flush_interval: float = 0.5       # seconds between sends when batches do not fill up
    timeout: float = 2.0              # seconds per request (connect, send, answer)
    retry_for: float = 10.0           # seconds a batch is retried while the sidecar is unreachable
    max_backoff: float = 2.0          # longest pause between attempts while it is unreachable
    close_timeout: float = 2.0        # seconds close() (and the exit hook) may take to send what is queued
    ssl_context: Optional[ssl.SSLContext] = None  # for an https:// listener with a private CA or mTLS

    @staticmethod
    def from_environment(url: Optional[str], token_file: Optional[str]) -> tuple[str, Optional[str]]:
        """MLMON_URL and MLMON_TOKEN_FILE fill in what the code does not say (one image, many deployments)."""
        return (url or os.environ.get("MLMON_URL") or DEFAULT_URL, token_file or os.environ.get("MLMON_TOKEN_FILE") or None)
