"""Alertmanager's matcher syntax (`label="value"`, `=~`, `!=`, `!~`), parsed and evaluated here.

`mlmon act` picks the alerts of an action with the same matchers the generated Alertmanager route
uses, so what a route sends and what an action runs on can never disagree. Regexes are anchored
at both ends, as Alertmanager anchors them; a value may be quoted (Go string escapes `\\"`, `\\\\`,
`\\n`) or bare.
"""

from __future__ import annotations

import re
from typing import NamedTuple

OPERATORS = ("=~", "!~", "!=", "=")
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^"\s]*)\s*$')
_ESCAPES = {'\\"': '"', "\\\\": "\\", "\\n": "\n"}


class Matcher(NamedTuple):
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        """A missing label is the empty string, as in Alertmanager (`team!="x"` matches no team)."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def render(self) -> str:
        """The canonical text Alertmanager's config takes: the value always quoted."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """`model="fraud"` -> Matcher; ValueError naming the problem for anything else."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a matcher like alertname=\"MLMonFeatureDrift\" or severity=~\"warning|critical\"")
    label, op, value = found.groups()
    if value.startswith('"'):
        value = re.sub(r"\\.", lambda m: _ESCAPES.get(m.group(0), m.group(0)[1]), value[1:-1])
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"{text!r}: the regex does not compile ({error})") from None
    return Matcher(label, op, value)


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
