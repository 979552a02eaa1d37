"""The few HTML pieces every page shares: escaping, number formatting, the page shell with its inline CSS.

Pages are plain strings built with f-strings: no template engine, no JavaScript, no external
stylesheet or font, so a page works offline, saved to a file, or behind a proxy that blocks CDNs.
Every value that comes from a config, a profile or traffic (model, version, feature and category
names) goes through ``esc``.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header.top{background:#1d2430;color:#fff;padding:10px 24px}header.top a{color:#9fc3ff;margin-right:14px}
main{padding:12px 24px;max-width:1200px}h1{font-size:22px;margin:10px 0}h2{font-size:18px;margin:22px 0 8px}
h3{font-size:15px;margin:0 0 6px}table{border-collapse:collapse;background:#fff;margin:4px 0 10px}
td,th{border:1px solid #d8dce3;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eef0f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#667085}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.critical{background:#c62828}.warning{background:#e08a00}.drifted{background:#d9480f}.none{background:#2e7d32}
.no_verdict{background:#8a94a6}.crossed{background:#c62828}.ok{background:#2e7d32}
section.feature{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:10px 14px;margin:10px 0;
display:grid;grid-template-columns:minmax(300px,1fr) 660px;gap:12px}
.reason{margin:4px 0 8px}nav.windows a{margin-right:10px}svg.chart text{font:10px sans-serif;fill:#344054}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


def esc(value: object) -> str:
    """HTML-escaped text, quotes included (safe in element content and in attribute values)."""
    return html.escape(str(value), quote=True)


def number(value: float | int | None, digits: int = 4) -> str:
    """Scores to a few significant digits; p-values that small in scientific notation; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def age(seconds: float) -> str:
    """A duration a person reads at a glance: 45 s, 12 min, 5.0 h, 3.2 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def timestamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def badge(kind: str, text: str | None = None) -> str:
    return f'<span class="badge {esc(kind)}">{esc(text or kind.replace("_", " "))}</span>'


def table(head: list[str], rows: list[list[str]], css: str = "") -> str:
    """A table from already-escaped cells (callers escape: a cell may hold a link or a badge)."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(rows_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def rows_cell(cell: str) -> str:
    # Numbers right-aligned: a cell that starts with a digit, a sign or the dash of "no value".
    numeric = cell[:1].isdigit() or cell[:1] in "-–" and len(cell) < 16
    return f'<td class="num">{cell}</td>' if numeric else f"<td>{cell}</td>"


def page(title: str, body: str, nav: list[tuple[str, str]]) -> str:
    """A complete HTML document: inline CSS, a top bar of (href, text) links, and the body."""
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width\"><link rel=\"icon\" href=\"data:,\"><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><header class=\"top\"><strong>mlmon</strong> &nbsp; {links}</header>"
        f"<main>{body}</main></body></html>\n"
    )
