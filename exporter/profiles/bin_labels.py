"""Bin names a person can read: numeric bins by their edges in the feature's units, categories by name.

The metric label values stay the zero-padded indices of ``Binning.labels`` (they sort right in
Grafana and never change with the data); these display labels are for pages and the JSON report.
They follow ``Binning.assign`` exactly: bin 0 is below the reference minimum, the inner bins are
half-open except the last one (closed at the maximum), and the last bin is above the maximum.

    >>> import numpy as np
    >>> from exporter.profiles.profile import numeric_binning
    >>> display_labels(numeric_binning("amount", np.arange(100.0), bins=4))
    ('< 0', '[0, 24.75)', '[24.75, 49.5)', '[49.5, 74.25)', '[74.25, 99]', '> 99')
"""

from __future__ import annotations

from exporter.profiles.profile import OTHER, Binning

OTHER_LABEL = "(other)"  # categories outside the reference's top-K, the `__other__` bin


def format_edge(value: float) -> str:
    """Six significant digits, no trailing zeros: edges are quantiles, more digits are noise."""
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def display_labels(binning: Binning) -> tuple[str, ...]:
    """One human-readable label per bin, in bin order."""
    if binning.kind != "numeric":
        return tuple(OTHER_LABEL if c == OTHER else c for c in binning.labels)
    assert binning.edges is not None
    edges = [format_edge(e) for e in binning.edges.tolist()]
    inner = [f"[{low}, {high})" for low, high in zip(edges[:-1], edges[1:])]
    inner[-1] = inner[-1][:-1] + "]"  # the last inner bin holds the reference maximum
    return (f"< {edges[0]}", *inner, f"> {edges[-1]}")
