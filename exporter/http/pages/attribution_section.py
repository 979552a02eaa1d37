"""The model page's "What drives the model" section: importance shares now vs reference as bars, the rank
signals and the drift impact ranking, from the drift report's `attributions` block (docs/explainability.md)."""

from __future__ import annotations

from typing import Any

from exporter.http.pages.html import esc, number, table
from exporter.http.pages.svg import bar_chart


def _verdict(block: dict[str, Any]) -> str:
    if block.get("drifted") is None:
        return "no verdict (N < min_samples)" if block.get("ndcg") is not None else "no attributions in the window"
    return "drifted" if block["drifted"] else "not drifted"


def attribution_section(version: dict[str, Any]) -> str:
    block = version.get("attributions")
    if not block:
        return ""
    features = block["features"]
    out = ['<h2 id="attributions">What drives the model</h2>']
    if "samples" in block:
        thresholds = block["thresholds"]
        out.append(table(["", ""], [
            ["records with attributions (window)", number(block["samples"])],
            [f"nDCG of the importance ranking (violation below {number(thresholds['ndcg'])})", number(block["ndcg"])],
            [f"share TV from the reference (drift at {number(thresholds['share_tv'])})", number(block["share_tv"])],
            ["top driver changed", "–" if block["top_driver_changed"] is None else "yes" if block["top_driver_changed"] else "no"],
            ["verdict", _verdict(block)],
        ]))
    if block.get("share_tv") is not None:  # live and reference shares both known
        names = [f["feature"] for f in features]
        reference = [f["reference_share"] or 0.0 for f in features]
        current = [f.get("share") or 0.0 for f in features]
        out.append('<p class="muted">importance share per feature: reference vs now</p>')
        out.append(bar_chart("importance", names, reference, current))
    rows = [[esc(f["feature"]), number(f["reference_importance"]), number(f["reference_share"]),
             number(f.get("importance")), number(f.get("share")), number(f["drift_impact"])] for f in features]
    out.append(table(["feature", "reference importance", "reference share", "importance now", "share now",
                      "drift impact"], rows, "attributions"))
    out.append(f'<p class="muted">reference importance from: {esc(block["reference_source"])}; rows by drift impact '
               "(reference share x drift score)</p>")
    return "".join(out)
