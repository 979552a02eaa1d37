"""Where an alert sends the person who opens it: the model's drift page on the exporter (`page_url`)
and its Grafana dashboard (`dashboard_url`), from the `links:` section of mlmon.yaml.

Annotations are Go templates that Prometheus renders per firing series, so the link carries that
series' model version, window and feature:

    https://mlmon.example.com/models/fraud?version=v3&window=1h#feature-amount

The window is carried over only when the page (or dashboard) offers it: a quality alert's `1d`
window is no drift window, and the page would answer 400. Versions are URL-escaped (`urlquery`):
a version may hold `+`, which a query string reads as a space. With a link's URL unset, the
annotation is left out, never written broken. Grafana addresses dashboards by uid, so the uids
live here, where both the alerts and the dashboards (dashboards/links.py) read them.
"""

from __future__ import annotations

from exporter.config.links import LinksConfig, fill, has_placeholder
from exporter.config.model import ModelConfig, format_duration

OVERVIEW_UID = "mlmon-overview"
MODEL_UID = "mlmon-model"
QUALITY_UID = "mlmon-quality"
VERSIONS_UID = "mlmon-versions"
EXPORTER_UID = "mlmon-exporter"

VERSION = "{{ $labels.model_version | urlquery }}"
FEATURE_ANCHOR = "{{ with $labels.feature }}#feature-{{ . }}{{ end }}"
# Where on the model page an alert without a feature label is explained (ids of exporter/http/pages).
ANCHORS = {"quality": "#quality", "bias": "#bias", "data_quality": "#data-quality"}
STEM_ANCHORS = {"PredictionDrift": "#prediction", "MultivariateDrift": "#multivariate",
                "ClassProbabilityDrift": "#prediction", "AttributionDrift": "#attributions"}


def window_if(windows: list[int], param: str, static: str | None) -> str:
    """`&window=<the alert's window>` when it is one of `windows`, else nothing. A window set as a
    rule label is known here (annotations see only the series' labels, not the rule's); otherwise
    a Go template reads the series' `window`."""
    names = [format_duration(w) for w in sorted(windows)]
    if static is not None:
        return f"&{param}={static}" if static in names else ""
    quoted = " ".join(f'"{n}"' for n in names)
    return f"{{{{ if eq $labels.window {quoted} }}}}&{param}={{{{ $labels.window }}}}{{{{ end }}}}"


def anchor(stem: str, category: str) -> str:
    static = STEM_ANCHORS.get(stem) or ANCHORS.get(category)
    if static is None:
        return FEATURE_ANCHOR
    return FEATURE_ANCHOR.replace("{{ end }}", f"{{{{ else }}}}{static}{{{{ end }}}}")


def page_url(links: LinksConfig, model: ModelConfig | None, stem: str, category: str, versioned: bool,
             window: str | None = None) -> str | None:
    """The drift page of the alert's model (the status page for the exporter's own alerts)."""
    base = links.exporter_url
    if base is None:
        return None
    if model is None:  # the exporter's alerts: its status page, when the URL names no model
        return None if has_placeholder(base, "model") or has_placeholder(base, "version") else f"{base}/"
    if not versioned and has_placeholder(base, "version"):
        return None  # a per-version host, and an alert about the whole model: no single page
    url = f"{fill(base, model.name, VERSION)}/models/{model.name}"
    if not versioned:  # about the whole model: every version, no feature
        return url + (STEM_ANCHORS.get(stem) or ANCHORS.get(category) or "")
    return f"{url}?version={VERSION}{window_if(model.drift.windows, 'window', window)}{anchor(stem, category)}"


def dashboard_url(links: LinksConfig, model: ModelConfig | None, category: str, versioned: bool,
                  window: str | None = None) -> str | None:
    """The Grafana dashboard of the alert: Quality for quality and bias, Model for the rest of a
    model's alerts, Exporter for the exporter's own; its variables set to the alert's."""
    base = links.grafana_url
    if base is None:
        return None
    if model is None:
        return f"{base}/d/{EXPORTER_UID}"
    quality = category in ("quality", "bias")
    uid = QUALITY_UID if quality else MODEL_UID
    url = f"{base}/d/{uid}?var-model={model.name}"
    if versioned:
        windows = model.quality_windows if quality else model.drift.windows
        url += f"&var-version={VERSION}{window_if(windows, 'var-window', window)}"
    return url


def annotations(links: LinksConfig, model: ModelConfig | None, stem: str, category: str,
                versioned: bool, window: str | None = None) -> tuple[tuple[str, str], ...]:
    """`window`: the rule's own `window` label, when it sets one."""
    pairs = (("page_url", page_url(links, model, stem, category, versioned, window)),
             ("dashboard_url", dashboard_url(links, model, category, versioned, window)))
    return tuple((key, url) for key, url in pairs if url is not None)
