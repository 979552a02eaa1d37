"""Drift evaluation from window bin counts vs recomputing the same scores from raw samples with scipy.

50 features (40 numeric, 10 categorical), a 20,000-row reference, windows of 10k and 100k rows.
mlmon's side is what a scrape does: every score (PSI, JS, KL, Hellinger, chi-square, KS with
p-value, Wasserstein) of every feature and the prediction from the window's bin counts. The
baseline is what a user with the raw window would run: scipy's ks_2samp, wasserstein_distance,
chi2_contingency, entropy and jensenshannon per feature (histograms with numpy for the binned scores).

    python -m benchmarks drift
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats
from scipy.spatial import distance

from exporter.config.model import DriftConfig
from exporter.http.drift_report import Reference, score_window
from exporter.profiles.profile import categorical_binning, numeric_binning
from exporter.state.store import Layout

N_NUMERIC, N_CATEGORICAL, REFERENCE_ROWS = 40, 10, 20_000
CATEGORIES = np.array([f"c{i:02d}" for i in range(12)])
CATEGORY_P = np.linspace(2, 1, 12) / np.linspace(2, 1, 12).sum()


def data(rows: int, rng: np.random.Generator, shift: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    numeric = [rng.normal(shift * (i % 3), 1 + i % 4, size=rows) for i in range(N_NUMERIC)]
    categorical = [rng.choice(CATEGORIES, size=rows, p=CATEGORY_P) for _ in range(N_CATEGORICAL)]
    return numeric, categorical


def scipy_scores(ref: tuple[list, list], cur: tuple[list, list], binnings: list) -> None:
    for binning, r, c in zip(binnings[:N_NUMERIC], ref[0], cur[0]):
        edges = np.concatenate([[-np.inf], binning.edges, [np.inf]])
        p = np.histogram(r, edges)[0] / len(r)
        q = np.histogram(c, edges)[0] / len(c)
        pc, qc = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
        float(np.sum((qc - pc) * np.log(qc / pc)))
        distance.jensenshannon(p, q)
        stats.entropy(qc, pc)
        stats.ks_2samp(r, c)
        stats.wasserstein_distance(r, c) / r.std()
    for r, c in zip(ref[1], cur[1]):
        cats, rc = np.unique(r, return_counts=True)
        cc = np.array([np.sum(c == k) for k in cats])
        p, q = rc / rc.sum(), cc / cc.sum()
        float(np.sum((q - p) * np.log(np.clip(q, 1e-4, None) / p)))
        distance.jensenshannon(p, q)
        stats.chi2_contingency(np.vstack([rc, cc]), correction=False)


def main() -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(7)
    reference = data(REFERENCE_ROWS, rng, 0.0)
    binnings = [numeric_binning(f"n{i}", v, 10) for i, v in enumerate(reference[0])]
    binnings += [categorical_binning(f"c{i}", v.tolist(), 20) for i, v in enumerate(reference[1])]
    binnings.append(numeric_binning("prediction", rng.random(REFERENCE_ROWS), 10))
    layout = Layout(tuple(binnings), np.concatenate([[0], np.cumsum([b.n_bins for b in binnings])]).astype(np.int64))
    ref = Reference.of(layout)
    config = DriftConfig()
    rows = []
    print(f"{'window':>8} {'mlmon from bins':>16} {'scipy from raw':>15} {'ratio':>8}")
    for window in (10_000, 100_000):
        current = data(window, rng, 0.1)
        columns = current[0] + [v.tolist() for v in current[1]] + [rng.random(window)]
        counts = np.concatenate([np.bincount(b.assign(np.asarray(v) if b.kind == "numeric" else v), minlength=b.n_bins)
                                 for b, v in zip(binnings, columns)])
        repeats = 200
        started = time.perf_counter()
        for _ in range(repeats):
            score_window(ref, counts, config)
        ours = (time.perf_counter() - started) / repeats
        started = time.perf_counter()
        scipy_scores(reference, current, binnings)
        theirs = time.perf_counter() - started
        ratio = theirs / ours
        print(f"{window:>8} {ours * 1e3:>13.3f} ms {theirs * 1e3:>12.1f} ms {ratio:>7.0f}x", flush=True)
        rows.append((f"drift 50 features, {window // 1000}k window", f"{ours * 1e3:.3f} ms/eval (scipy {theirs:.2f} s)",
                     f"{ratio:.0f}x faster"))
    return rows


if __name__ == "__main__":
    main()
