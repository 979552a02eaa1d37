"""The drift page of one model: per feature its chart, scores, N, p-value and verdict with the reason.

It renders a document from ``model_data.model_document`` and nothing else, so the live page
(``/models/<model>``) and the file `mlmon report` writes are the same page from the same numbers.
Features arrive sorted by severity (drifted first), as the drift report sorts them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from exporter.http.pages.attribution_section import attribution_section
from exporter.http.pages.html import badge, esc, number, page, percent, table, timestamp
from exporter.http.pages.svg import bar_chart
from exporter.state.store import QUALITY

TEST_NAMES = {"ks": "KS", "chisquare": "chi-square"}


def reason(column: dict[str, Any], thresholds: dict[str, Any], method: str) -> str:
    """Why the verdict is what it is, with the numbers the rule compared (docs/drift.md, "Deciding drift")."""
    n, p, score = column["samples"], column["p_value"], column["decision_score"]
    test = TEST_NAMES[column["test"]]
    if column["drifted"] is None:
        return f"no verdict: N = {n:,} is below min_samples {thresholds['min_samples']:,}"
    rejects = p is not None and p < thresholds["alpha"]
    large = score is not None and score >= thresholds["min_effect"]
    p_text = f"{test} p = {number(p)} {'<' if rejects else '≥'} alpha {number(thresholds['alpha'])}"
    effect = f"{method} = {number(score)} {'≥' if large else '<'} min_effect {number(thresholds['min_effect'])}"
    if column["drifted"]:
        level = column["severity"]
        where = {"critical": f"≥ critical {number(thresholds['critical'])}",
                 "warning": f"≥ warning {number(thresholds['warning'])}"}.get(level, f"< warning {number(thresholds['warning'])}")
        return f"drifted: {p_text} and {effect} ({method} {where})"
    return f"not drifted: {p_text if not rejects else effect}"


def column_section(column: dict[str, Any], report: dict[str, Any], role: str) -> str:
    thresholds, method = report["thresholds"], report["method"]
    scores = [[esc(m), number(v)] for m, v in column["scores"].items()]
    scores.append([f"p-value ({TEST_NAMES[column['test']]})", number(column["p_value"])])
    scores.append(["N (window)", number(column["samples"])])
    chart = bar_chart(column["name"], column["bin_labels"], column["reference_fractions"], column["current_fractions"])
    name = esc(column["name"])
    return (
        f'<section class="feature {role}" id="{role}-{name}" data-feature="{name}" data-severity="{esc(column["severity"])}">'
        f'<div><h3>{name} <span class="muted">{esc(column["kind"])}</span> {badge(column["severity"])}</h3>'
        f'<p class="reason">{esc(reason(column, thresholds, method))}</p>{table(["score", "value"], scores)}</div>'
        f'<div>{chart}<div class="legend muted"><span style="background:#c7d7f0"></span>reference'
        f'<span style="background:#1f4e9c"></span>window</div></div></section>'
    )


def summary(version: dict[str, Any]) -> str:
    ref = version["reference"]
    reference = (f"capturing ({ref['captured_rows']:,} of {ref['target']:,} rows)" if ref["capturing"]
                 else f"<code>{esc(ref['short_hash'])}</code> · {ref['rows']:,} rows · {esc(ref['source'] or 'profile')}")
    dataset = version.get("dataset_drift")
    verdict = badge("no_verdict") if dataset is None else badge("drifted" if dataset else "none",
                                                                 "dataset drift" if dataset else "no dataset drift")
    ratio = version.get("drifted_features_ratio")
    rows = [
        ["reference", reference],
        ["predictions (all time / window)", f"{version['predictions']:,} / {version['window_predictions']:,}"],
        ["dataset verdict", f"{verdict} drifted features {percent(ratio) if ratio is not None else '–'}"
                            + (f" (flags at ≥ {percent(version['thresholds']['drifted_share'])})" if 'thresholds' in version else "")],
    ]
    if "method" in version:
        t = version["thresholds"]
        rows.append(["rule", esc(f"{version['method']}: warning {t['warning']}, critical {t['critical']}; "
                                 f"drifted when p < {t['alpha']} and {version['method']} ≥ {t['min_effect']}; "
                                 f"no verdict below N = {t['min_samples']}")])
    return table(["", ""], rows, "summary")


def multivariate(version: dict[str, Any]) -> str:
    mv = version.get("multivariate")
    if not mv:
        return ""
    rows = [["PCA reconstruction-error PSI", number(mv["psi"])], ["p-value", number(mv["p_value"])],
            ["N (window)", number(mv["samples"])]]
    if "drifted" in mv:
        verdict = "no verdict (N < min_samples)" if mv["drifted"] is None else "drifted" if mv["drifted"] else "not drifted"
        band = mv.get("reference_band") or [None, None]
        rows += [["verdict", verdict], ["mean error (window)", number(mv.get("error_mean"))],
                 ["reference band", f"{number(band[0])} – {number(band[1])}"]]
    return f'<h2 id="multivariate">Multivariate</h2>{table(["", ""], rows)}'


def quality(version: dict[str, Any]) -> str:
    section = version.get("quality") or {}
    windows = [w for w in section.get("windows", []) if w["metrics"]]
    if not windows:
        return ""
    out = [f'<h2 id="quality">Quality</h2><p class="muted">{section["labelled"]:,} labelled predictions in all</p>']
    for w in windows:
        rows = []
        for m in w["metrics"]:
            bound = " ".join(f"{side} {number(m[side])}" for side in ("min", "max") if m[side] is not None) or "–"
            interval = f"[{number(m['lower'])}, {number(m['upper'])}]" if m["lower"] is not None else "–"
            state = "–" if m["crossed"] is None else badge("crossed" if m["crossed"] else "ok")
            rows.append([esc(m["metric"]), esc(m["kind"]), number(m["value"]), interval, bound, state])
        out.append(f"<h3>window {esc(w['window'])} · {w['labelled']:,} labelled</h3>")
        out.append(table(["metric", "kind", "value", "95% interval", "threshold", "state"], rows, "quality"))
        if w["bias"]:
            bias = [[esc(b["attribute"]), esc(b["metric"]), number(b["value"])] for b in w["bias"]]
            out.append(f'<h3 id="bias">bias, window {esc(w["window"])}</h3>{table(["attribute", "metric", "value"], bias)}')
    return "".join(out)


def data_quality(version: dict[str, Any]) -> str:
    dq = version["data_quality"]
    rows = [[esc(name), *(number(counts[k]) for k in QUALITY)] for name, counts in dq["features"].items()]
    rows.append(["<em>prediction</em>", *(number(dq["prediction"][k]) for k in QUALITY)])
    return (f'<h2 id="data-quality">Data quality (since start)</h2>'
            f'{table(["feature", *QUALITY], rows, "data-quality")}'
            f'<p class="muted">unknown feature keys: {dq["unknown_features"]:,}</p>')


def version_section(version: dict[str, Any]) -> str:
    head = f'<h2 id="version-{esc(version["model_version"])}">Version {esc(version["model_version"])}</h2>'
    if version.get("capturing_reference"):
        return head + summary(version) + "<p>The reference is still being captured: no drift yet.</p>" + data_quality(version)
    features = "".join(column_section(f, version, "feature") for f in version["features"])
    prediction = column_section(version["prediction"], version, "prediction")
    return (head + summary(version) + f'<h2>Features ({len(version["features"])}, most severe first)</h2>{features}'
            + multivariate(version) + attribution_section(version)
            + f'<h2 id="prediction">Prediction</h2>{prediction}' + quality(version)
            + data_quality(version))


def window_links(doc: dict[str, Any], version: str | None) -> str:
    links = []
    for window in doc["windows"]:
        query = urlencode({"window": window, **({"version": version} if version else {})})
        text = esc(window)
        links.append(f"<strong>{text}</strong>" if window == doc["window"] else f'<a href="?{esc(query)}">{text}</a>')
    return f'<nav class="windows">window: {" ".join(links)}</nav>'


def render_model_page(doc: dict[str, Any], nav: list[tuple[str, str]], version: str | None = None,
                      live: bool = True) -> str:
    """The whole page; ``live`` adds the window switcher (a saved report has only its own window)."""
    title = f"{doc['model']} · drift over {doc['window']}"
    body = [f"<h1>{esc(doc['model'])} <span class=\"muted\">{esc(doc['task'])} · window {esc(doc['window'])}</span></h1>",
            f'<p class="muted">generated {timestamp(doc["generated_at"])}</p>']
    if live:
        body.append(window_links(doc, version))
    if not doc["versions"]:
        body.append("<p>No traffic seen for this model yet.</p>")
    body.extend(version_section(v) for v in reversed(doc["versions"]))  # the newest version first
    return page(title, "".join(body), nav)


def model_href(model: str, window: str | None = None, version: str | None = None) -> str:
    query = urlencode({k: v for k, v in (("window", window), ("version", version)) if v})
    return f"/models/{quote(model, safe='')}" + (f"?{query}" if query else "")
