"""An inline SVG bar chart: a column's window distribution over its reference, bin by bin.

Reference bars are drawn light and wide, the window's bars dark and narrow on top, so a shift
shows as dark bars leaving their light ones. Bin labels are the feature-unit labels, turned 40
degrees so twenty of them fit. Each bar pair has a <title> (the browser's tooltip) with both
percentages. One string join per chart: 100 features x 20 bins render in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.http.pages.html import esc

WIDTH, PLOT_HEIGHT, LABEL_HEIGHT, LEFT, RIGHT = 640, 130, 86, 36, 44  # RIGHT: room for the last turned label


def bar_chart(name: str, labels: Sequence[str], reference: Sequence[float], current: Sequence[float]) -> str:
    """The SVG element for one column; fractions are 0-1 and ``labels`` are shown escaped."""
    top = max(max(reference, default=0.0), max(current, default=0.0), 1e-9)
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    height = PLOT_HEIGHT + LABEL_HEIGHT
    parts = [
        f'<svg class="chart" data-feature="{esc(name)}" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="distribution of {esc(name)}">',
        f'<text x="0" y="10">{100 * top:.0f}%</text><text x="0" y="{PLOT_HEIGHT}">0%</text>',
        f'<line x1="{LEFT}" y1="{PLOT_HEIGHT}" x2="{WIDTH - RIGHT}" y2="{PLOT_HEIGHT}" stroke="#98a2b3"/>',
    ]
    scale = (PLOT_HEIGHT - 4) / top
    for i, (label, p, q) in enumerate(zip(labels, reference, current)):
        x = LEFT + i * slot
        hp, hq = p * scale, q * scale
        text = esc(label)
        parts.append(
            f'<g class="bin"><title>{text}: reference {100 * p:.1f}%, window {100 * q:.1f}%</title>'
            f'<rect class="ref" x="{x + 1:.1f}" y="{PLOT_HEIGHT - hp:.1f}" width="{slot - 2:.1f}" height="{hp:.1f}" fill="#c7d7f0"/>'
            f'<rect class="cur" x="{x + slot * 0.3:.1f}" y="{PLOT_HEIGHT - hq:.1f}" width="{slot * 0.4:.1f}" '
            f'height="{hq:.1f}" fill="#1f4e9c"/></g>'
            f'<text class="bin-label" transform="translate({x + slot / 2:.1f},{PLOT_HEIGHT + 10}) rotate(40)">{text}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
