"""Names that end up as Prometheus label values and in URLs.

Config-defined, so bounded, but kept to a safe alphabet so they never need escaping in PromQL or
paths. One definition for the model, the alerting config and the error messages that explain it.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Iterable

from pydantic import Field

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


def repeated(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, sorted (models, features and receivers must each be unique)."""
    return sorted(name for name, n in Counter(names).items() if n > 1)
