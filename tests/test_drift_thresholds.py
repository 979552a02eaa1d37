"""The published false-alarm/power table (docs/drift.md, "Thresholds by N and B") is honest and the
rule holds its level: benchmarks/drift_thresholds.py generated it; this reads the committed results."""

from __future__ import annotations

import json

import pytest

from benchmarks import drift_thresholds as bench

RESULTS = json.loads(bench.RESULTS.read_text())
TOLERANCE = 0.015  # measured false alarms may exceed nominal alpha by at most 1.5 points


def test_the_grid_covers_n_100_to_100k_and_b_5_to_50_for_both_kinds() -> None:
    cells = {(c["kind"], c["bins"], c["n"]) for c in RESULTS["cells"]}
    assert cells == {(k, b, n) for k in bench.KINDS for b in bench.BINS for n in bench.NS}
    assert min(bench.NS) == 100 and max(bench.NS) == 100_000 and min(bench.BINS) == 5 and max(bench.BINS) == 50
    assert RESULTS["trials"] == bench.TRIALS and RESULTS["alpha"] == bench.CONFIG.alpha


def test_mlmon_false_alarm_rate_is_at_most_nominal_plus_one_and_a_half_points_in_every_cell() -> None:
    worst = max(RESULTS["cells"], key=lambda c: c["false_alarm"]["mlmon"])
    assert worst["false_alarm"]["mlmon"] <= RESULTS["alpha"] + TOLERANCE, worst


def test_mlmon_detects_a_0_3_sd_shift_from_1000_samples() -> None:
    for cell in RESULTS["cells"]:
        if cell["n"] >= 1000:
            assert cell["power_0.3"]["mlmon"] >= 0.99, cell


@pytest.mark.parametrize("n, bins, kind", [(100, 50, "categorical"), (1_000, 10, "numeric"), (100_000, 5, "numeric")])
def test_a_rerun_of_a_cell_gives_the_committed_numbers(n: int, bins: int, kind: str) -> None:
    committed = next(c for c in RESULTS["cells"] if (c["n"], c["bins"], c["kind"]) == (n, bins, kind))
    assert bench.run_cell(n, bins, kind, 0) == committed["false_alarm"]
    assert bench.run_cell(n, bins, kind, bench.SHIFTS.index(0.3)) == committed["power_0.3"]


def test_the_docs_table_is_the_committed_results() -> None:
    text = bench.DOCS.read_text()
    start, end = text.index(bench.BEGIN) + len(bench.BEGIN), text.index(bench.END)
    assert text[start:end] == "\n" + bench.table(RESULTS)
