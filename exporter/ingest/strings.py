"""One check both decoders need: is a column all short strings?"""

from __future__ import annotations

from typing import Any


def all_short_strings(raw: list[Any], max_length: int) -> bool:
    """Every value a str of at most max_length characters, in two C-level passes.

    numpy stores strings at the width of the longest, so one long value multiplies a column's
    memory; this is checked before converting. ``str.join`` is the fastest type check there is
    (it refuses anything but str) and ``max(key=len)`` the fastest longest-string search:
    together about as cheap as the ``set(map(type, ...))`` they replace.

        >>> all_short_strings(["DE", "US"], 2), all_short_strings(["DE", "USA"], 2), all_short_strings(["DE", 1], 9)
        (True, False, False)
    """
    try:
        "".join(raw)
    except TypeError:
        return False
    return not raw or len(max(raw, key=len)) <= max_length
