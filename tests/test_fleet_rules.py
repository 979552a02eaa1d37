"""Fleet-wide drift recording rules: promtool accepts them, and a real Prometheus computes the Python scores.

Two exporters get different halves of one stream; a real Prometheus scrapes both every second
with the rules loaded. ``increase()`` extrapolates each target's counters by its own factor f
(sampled span + time to the evaluation, over the sampled span; the same for all series of one
target, since they share scrape timestamps): the fleet counts are f_A a + f_B b, not a + b.
So the test checks, at one rule evaluation:

1. every fleet score equals ``exporter.stats.drift`` on the fleet bin counts recorded in the same
   evaluation (1e-6 relative: the PromQL is the Python formula);
2. those fleet counts equal f_A a + f_B b, with f read from a test-only rule on the
   predictions counter in the same group (1e-6 relative: the replicas' counts are summed);
3. the fleet score is the whole stream's score up to the extrapolation mix, which is small.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from exporter.stats import drift

from exporter.tooling import synthetic
from exporter.config.model import parse_config
from alert_rules.fleet_rules import FEATURES, bins_name, fleet_recording_rules, rule_name
from exporter.http.server import start
from tests.support.processes import PrometheusProcess, require_binary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WINDOW = 3600
MODEL = "fraud"


def fraud_config(windows: list[str]):
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data["models"] = [m for m in data["models"] if m["name"] == MODEL]
    data.pop("alerting", None)  # its routes name the teams of the models dropped here
    data["models"][0]["drift"]["windows"] = windows
    return parse_config(data, base_dir=EXAMPLES)


def write_rules(path: Path, groups: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=100_000))
    return path


def test_promtool_accepts_every_generated_rule(tmp_path: Path) -> None:
    import subprocess

    promtool = require_binary("promtool")
    config = parse_config(yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text()), base_dir=EXAMPLES)
    groups = fleet_recording_rules(config)
    result = subprocess.run([promtool, "check", "rules", str(write_rules(tmp_path / "r.yml", groups))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    records = {r["record"] for g in groups for r in g["rules"]}
    for score in ("psi", "js", "kl", "hellinger", "chisquare", "ks"):
        assert f"model_version_feature:mlmon_feature_{score}:5m" in records
        assert f"model_version:mlmon_prediction_{score}:1h" in records


def test_rule_names_follow_level_metric_operation() -> None:
    groups = fleet_recording_rules(fraud_config(["5m", "1h"]))
    assert [g["name"] for g in groups] == ["mlmon-fleet-drift-5m", "mlmon-fleet-drift-1h"]
    for rule in (r for g in groups for r in g["rules"]):
        level, metric, operation = rule["record"].split(":")
        assert level.startswith("model_") and metric.startswith("mlmon_") and operation


def samples_at(prom: PrometheusProcess, expr: str, at: float) -> dict[tuple, float]:
    """Raw samples of a recorded series at exactly one evaluation timestamp, keyed by their labels."""
    return next((samples for ts, samples in evaluations(prom, expr).items() if abs(ts - at) < 1e-6), {})


FACTOR = "test:mlmon_predictions:increase1h"


def record_factors(group: dict, name: str = FACTOR, counter: str = "mlmon_predictions_total") -> None:
    """Test-only: each target's extrapolation factor, recorded first in `group` and again last.

    A group evaluates every rule at one timestamp, but a scrape that began before that timestamp
    can be committed while the group runs: the rules after that moment see one more sample, and
    extrapolate by another factor, than the rules before it. Where the copy recorded last equals
    the first, every rule between them saw the same samples (settled_at).
    """
    expr = f"increase({counter}[1h])"
    group["rules"].insert(0, {"record": name, "expr": expr})
    group["rules"].append({"record": f"{name}:last", "expr": expr})


def scraped_since(prom: PrometheusProcess, since: float, targets: int = 2) -> float:
    """The wall-clock time by which a scrape of every target that began after `since` is queryable.

    Call it with `since` taken after the last POST returned: each such scrape holds the final counts,
    and a rule evaluation stamped after the returned time ran after those scrapes were committed.
    """
    prom.wait_for(lambda: len(prom.query(f"timestamp(up) > {since}")) == targets,
                  timeout=20, what="a scrape of every target after the last POST")
    return time.time()


def settled_at(prom: PrometheusProcess, name: str = FACTOR, targets: int = 2, after: float = 0.0) -> float:
    """The latest evaluation after `after` whose factors, first and last in the group, agree for every target.

    `after` (from scraped_since) keeps out an evaluation that ran before the final scrapes were
    committed: its first and last factors agree too, on the old counts.
    """
    def latest() -> float | None:
        first, last = evaluations(prom, name), evaluations(prom, f"{name}:last")
        return next((at for at in sorted(first, reverse=True)
                     if at > after and len(first[at]) == targets and first[at] == last.get(at)), None)

    return prom.wait_for(latest, timeout=20, what="a rule evaluation after the final scrapes that no scrape landed in")


def evaluations(prom: PrometheusProcess, expr: str) -> dict[float, dict[tuple, float]]:
    """A recorded series' samples of the last 10 s: {evaluation timestamp: {labels: value}}."""
    out: dict[float, dict[tuple, float]] = {}
    for series in prom.query(f"{expr}[10s]"):
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))
        for ts, value in series["values"]:
            out.setdefault(float(ts), {})[labels] = float(value)
    return out


def test_fleet_rules_on_two_replicas_give_the_python_scores_of_the_whole_stream(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = fraud_config(["1h"])
    groups = fleet_recording_rules(config)
    record_factors(groups[0])  # each target's extrapolation factor, in the same evaluation as the scores
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model(MODEL)
        states = [r.exporter.store.version_state(model, "v1") for r in replicas]  # counters exported from 0
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 2,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(8)
            halves = [synthetic.records(MODEL, "v1", 1500, rng, drift=0.0),
                      synthetic.records(MODEL, "v1", 1500, rng, drift=0.6, id_prefix="b")]
            for replica, half in zip(replicas, halves):
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=half, timeout=10).raise_for_status()
            after = scraped_since(prom, time.time())  # both replicas scraped with their final counts
            at = settled_at(prom, after=after)

            bins = samples_at(prom, bins_name(FEATURES, WINDOW), at)
            factors = samples_at(prom, FACTOR, at)
            assert len(factors) == 2
            f = {dict(k)["instance"]: v / 1500 for k, v in factors.items()}
            layout = states[0].layout
            for column, binning in enumerate(layout.binnings[:-1]):
                fleet = np.array([bins[tuple(sorted({"model": MODEL, "model_version": "v1", "feature": binning.name,
                                                     "bin": label}.items()))] for label in binning.labels])
                halves_counts = [s.cumulative[layout.slice(column)].astype(float) for s in states]
                mixed = sum(f[t] * c for t, c in zip(targets, halves_counts))
                np.testing.assert_allclose(fleet, mixed, rtol=1e-6, atol=1e-9)  # (2) the replicas are summed

                seg = drift.Segments.of_sizes([binning.n_bins])
                p = binning.reference_ratio
                q = drift.fractions(fleet, seg)[0]
                ref_counts = binning.reference_counts.astype(float)
                python = {
                    "psi": drift.psi(p, q, seg)[0], "js": drift.js_distance(p, q, seg)[0], "kl": drift.kl(p, q, seg)[0],
                    "hellinger": drift.hellinger(p, q, seg)[0], "chisquare": drift.chisquare(ref_counts, fleet, seg)[0][0],
                }
                if binning.kind == "numeric":
                    python["ks"] = drift.ks(p, q, seg, np.array([1.0]), np.array([1.0])).statistic[0]
                whole = drift.fractions(sum(halves_counts), seg)[0]
                for score, expected in python.items():
                    got = samples_at(prom, f'{rule_name(FEATURES, score, WINDOW)}{{feature="{binning.name}"}}', at)
                    assert len(got) == 1, (score, binning.name)
                    assert list(got.values())[0] == pytest.approx(expected, rel=1e-6, abs=1e-12), (score, binning.name)
                # (3) against the whole stream. (2) shows the fleet counts are exactly sum(f_i * c_i) where
                # the c_i add up to the whole stream; with equal factors the shares would be the whole
                # stream's exactly. The factors differ by how far each replica's first scrape is from the
                # window start, so the tolerance grows with their measured spread (0 spread -> 10%).
                spread = max(f.values()) / min(f.values()) - 1
                assert drift.psi(p, whole, seg)[0] == pytest.approx(python["psi"], rel=0.1 + 4 * spread, abs=0.005)
    finally:
        for replica in replicas:
            replica.stop()
