"""Types shared by the `alerting:` section and its `actions:` (alerting.py, actions.py): durations in
Alertmanager's syntax, http(s) URLs without credentials, secret file paths, the strict base model
and the route timings.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Absolute paths only: Alertmanager resolves relative *_file paths against its own config
# directory, which differs between docker-compose, Helm and a laptop.
SECRET_FILE = Annotated[str, Field(pattern=r"^/\S+$", description="Absolute path of a file holding the secret.")]


def _duration(value: object) -> str:
    """Alertmanager/Prometheus durations are kept as text ("30s", "4h") and checked here."""
    text = str(value).strip()
    if not re.fullmatch(r"(\d+[smhdw])+", text) or not re.search(r"[1-9]", text):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 4h or 1d")
    return text


AmDuration = Annotated[str, BeforeValidator(_duration)]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def am_duration_seconds(text: str) -> int:
    """Seconds of a checked AmDuration, compound ones too ("1h30m" -> 5400)."""
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text))


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/@]+(/\S*)?", value):
        raise ValueError(
            f"{value!r} must be an http(s) URL without user:password@ (put credentials in a *_file field)"
        )
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Timing(Strict):
    group_by: list[str] | None = Field(None, description="Labels that make one notification group.")
    group_wait: AmDuration | None = Field(None, description="Wait before the first notification of a group.")
    group_interval: AmDuration | None = Field(None, description="Wait before notifying about new alerts in a group.")
    repeat_interval: AmDuration | None = Field(None, description="Wait before re-sending a still-firing group.")
