"""Promoting a vetted window to the reference, and restarting a capture (docs/reference.md).

A real exporter on loopback: seeded drifted traffic makes the drift scores high; promoting that
window switches the reference (new hash in mlmon_model_info); more traffic from the same drifted
distribution then scores at the noise level of two samples of one distribution, measured by an
independent simulation. Refusals are clear 4xx answers, the switch survives a restart and a reload.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import requests

from exporter.cli import main
from exporter.config.model import MlmonConfig
from exporter.profiles.pca import EXTRAS_KEY as PCA_KEY, field_of, fit_pca
from exporter.profiles.profile import Binning, Profile, categorical_binning, numeric_binning
from exporter.profiles.promote import Provenance, binned_stats, promote_profile
from exporter.state.snapshot import FILE_NAME as SNAPSHOT_FILE
from tests.conftest import LiveExporter, build_config, series, toy_model_data

TOKEN = "promote-test-token"
COLORS = ["red", "green", "blue"]
N = 3000
MIN_SAMPLES = 500


def reference_profile(seed: int = 1, rows: int = 20_000) -> Profile:
    """The toy model's reference from a seeded clean distribution, with the PCA basis of multivariate drift."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, rows)
    color = rng.choice(COLORS, rows, p=[0.5, 0.3, 0.2])
    flag = np.where(rng.random(rows) < 0.4, "true", "false")
    score = rng.uniform(0.0, 1.0, rows)
    features = {
        "x": numeric_binning("x", x, bins=10),
        "color": categorical_binning("color", color, max_categories=5),
        "flag": categorical_binning("flag", flag, max_categories=2, kind="boolean"),
    }
    basis = fit_pca([x, color.tolist(), flag.tolist()], [field_of(features[n]) for n in ("x", "color", "flag")])
    assert basis is not None
    return Profile("toy", rows, features, numeric_binning("score", score, bins=4), extras={PCA_KEY: basis.to_json()},
                   source="seeded clean traffic")


def drifted(rng: np.random.Generator, n: int, version: str = "v1") -> list[dict[str, Any]]:
    """Traffic that moved: x shifted by one sd, blue common, flag mostly true, scores higher."""
    x = rng.normal(1.0, 1.0, n)
    color = rng.choice(COLORS, n, p=[0.2, 0.3, 0.5])
    flag = rng.random(n) < 0.7
    score = rng.beta(3, 2, n)
    return [{"model": "toy", "model_version": version, "features": {"x": float(a), "color": str(c), "flag": bool(f)},
             "prediction": float(s)} for a, c, f, s in zip(x, color, flag, score)]


def config_data(folder: Path, **exporter: Any) -> dict[str, Any]:
    model = toy_model_data()
    model["drift"]["min_samples"] = MIN_SAMPLES
    (folder / "admin-token").write_text(TOKEN + "\n")
    return {"exporter": {"window_slots": 10, "state_dir": "state", "admin_bearer_token_file": "admin-token", **exporter},
            "models": [model]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    reference_profile().write(tmp_path / "toy.json")
    return tmp_path


@pytest.fixture
def config(folder: Path) -> MlmonConfig:
    return build_config(config_data(folder), base_dir=folder)


def promote_url(live: LiveExporter, model: str = "toy") -> str:
    return f"{live.metrics_url}/v1/models/{model}/reference:promote"


def promote(live: LiveExporter, token: str | None = TOKEN, **body: Any) -> requests.Response:
    body = {"version": "v1", "window": "5m", "actor": "retrain-job", "reason": "seasonal shift vetted", **body}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(promote_url(live), json=body, headers=headers, timeout=10)


def psi(live: LiveExporter, feature: str) -> float:
    return live.value("mlmon_feature_drift_score", model="toy", model_version="v1", feature=feature, window="5m",
                      method="psi")


def model_hash(live: LiveExporter, version: str = "v1") -> str:
    info = series(live.samples(), "mlmon_model_info", model="toy", model_version=version)
    (labels,) = info
    return dict(labels)["reference_hash"]


def noise_psi_99th(edges: np.ndarray, trials: int = 300) -> float:
    """The 99th percentile of PSI between a window A+B and a reference A, A and B drawn from one distribution
    (the drifted x), binned on the same edges: what "noise level" means after the promote. By hand, no mlmon code."""
    rng = np.random.default_rng(11)
    inner = edges[1:-1]
    out = []
    for _ in range(trials):
        a, b = rng.normal(1.0, 1.0, N), rng.normal(1.0, 1.0, N)

        def bins(v: np.ndarray) -> np.ndarray:
            index = np.searchsorted(inner, v, side="right") + 1
            index[v < edges[0]], index[v > edges[-1]] = 0, len(edges)
            return np.bincount(index, minlength=len(edges) + 1)

        p, q = bins(a), bins(a) + bins(b)
        # An empty bin's fraction is 1e-4, the convention docs/drift.md states (Evidently's).
        p, q = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
        out.append(float(((q - p) * np.log(q / p)).sum()))
    return float(np.quantile(out, 0.99))


def test_promoting_the_drifted_window_brings_scores_to_noise_and_changes_the_hash(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, folder: Path) -> None:
    live = start_exporter(config)
    rng = np.random.default_rng(5)
    live.post_ok(drifted(rng, N))
    before_hash = model_hash(live)
    assert psi(live, "x") > 0.25 and psi(live, "color") > 0.25  # major drift against the clean reference
    multivariate_before = live.value("mlmon_multivariate_drift_score", model="toy", model_version="v1", window="5m")

    answer = promote(live)
    assert answer.status_code == 200, answer.text
    promoted = answer.json()
    assert promoted["samples"] == N and promoted["switched_versions"] == ["v1"]
    assert promoted["previous_hash"].removeprefix("sha256:")[:12] == before_hash
    assert model_hash(live) == promoted["short_hash"] != before_hash
    assert Path(promoted["path"]).parent == folder / "state" / "references"

    live.post_ok(drifted(rng, N))  # more traffic from the same drifted distribution
    edges = reference_profile().features["x"].edges
    noise = noise_psi_99th(edges)
    assert psi(live, "x") < noise < 0.01
    assert psi(live, "color") < 0.01 and psi(live, "flag") < 0.01
    assert live.value("mlmon_prediction_drift_score", model="toy", model_version="v1", window="5m", method="psi") < 0.01
    verdicts = series(live.samples(), "mlmon_feature_drift_detected", model="toy", model_version="v1", window="5m")
    assert set(verdicts.values()) == {0.0}
    multivariate_after = live.value("mlmon_multivariate_drift_score", model="toy", model_version="v1", window="5m")
    assert multivariate_after < 0.01 < multivariate_before
    # The bins stayed: the counters went on counting both batches.
    bins = series(live.samples(), "mlmon_feature_bin_total", model="toy", model_version="v1", feature="x")
    assert sum(bins.values()) == 2 * N
    assert live.value("mlmon_reference_switches_total", model="toy", result="promoted") == 1


def test_the_promoted_profile_keeps_the_bins_and_says_where_it_came_from(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, tmp_path: Path) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(6), 1000))
    assert promote(live).status_code == 200
    out = tmp_path / "promoted.json"
    assert main(["reference", "show", "--url", live.metrics_url, "--model", "toy", "--version", "v1",
                 "-o", str(out)]) == 0
    profile, old = Profile.read(out), reference_profile()
    assert profile.features["x"].edges.tolist() == old.features["x"].edges.tolist()
    assert profile.features["color"].categories == old.features["color"].categories
    assert profile.rows == 1000 == int(profile.features["x"].reference_counts.sum())
    assert profile.extras["pca"]["components"] == old.extras["pca"]["components"]
    promotion = profile.extras["promotion"]
    assert (promotion["actor"], promotion["reason"], promotion["window"]) == ("retrain-job", "seasonal shift vetted", "5m")
    assert promotion["previous_hash"] == old.content_hash


@pytest.mark.parametrize("body, status, words", [
    ({"version": "v9"}, 404, "no version 'v9'"),
    ({"window": "2h"}, 400, "5m, 1h"),
    ({"version": "small"}, 422, "at least drift.min_samples=500"),
    ({"reason": ""}, 400, "`reason` is required"),
])
def test_a_promote_that_cannot_be_is_refused_with_a_clear_error(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig,
        body: dict[str, Any], status: int, words: str) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(7), 1000))
    live.post_ok(drifted(np.random.default_rng(8), 20, version="small"))  # an almost empty window
    hash_before = model_hash(live)
    answer = promote(live, **body)
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert model_hash(live) == hash_before
    assert live.value("mlmon_reference_switches_total", model="toy", result="refused") == 1
    assert live.value("mlmon_reference_switches_total", model="toy", result="promoted") == 0


def test_an_unknown_model_is_404(start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig) -> None:
    live = start_exporter(config)
    answer = requests.post(f"{live.metrics_url}/v1/models/nope/reference:promote", json={},
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 404 and "unknown model 'nope'" in answer.json()["error"]


def test_unauthenticated_or_wrong_credentials_are_refused(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, folder: Path) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(9), 1000))
    hash_before = model_hash(live)
    assert promote(live, token=None).status_code == 403
    assert promote(live, token="wrong").status_code == 401
    # Without any admin credentials configured there is no way in, loopback or not.
    open_config = build_config({**config_data(folder), "exporter": {"window_slots": 10, "state_dir": "state"}},
                               base_dir=folder)
    other = start_exporter(open_config)
    other.post_ok(drifted(np.random.default_rng(9), 1000))
    answer = promote(other, token=None)
    assert answer.status_code == 403 and "admin_bearer_token_file" in answer.json()["error"]
    assert model_hash(live) == hash_before


def test_a_promote_without_a_state_dir_is_refused(
        start_exporter: Callable[[MlmonConfig], LiveExporter], folder: Path) -> None:
    data = config_data(folder)
    del data["exporter"]["state_dir"]
    live = start_exporter(build_config(data, base_dir=folder))
    live.post_ok(drifted(np.random.default_rng(10), 1000))
    answer = promote(live)
    assert answer.status_code == 409 and "state_dir" in answer.json()["error"]


def test_a_restart_and_a_reload_keep_the_promoted_reference_and_the_state(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, folder: Path) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(12), 2000))
    promoted = promote(live).json()
    live.stop()  # writes the final snapshot
    again = start_exporter(config)
    assert model_hash(again) == promoted["short_hash"]
    assert again.value("mlmon_state_restores_total", result="reference_mismatch") == 0
    assert again.value("mlmon_predictions_total", model="toy", model_version="v1") == 2000
    assert again.value("mlmon_reference_switches_total", model="toy", result="promoted") == 1
    assert psi(again, "x") < 0.001  # the restored window against the restored (promoted) reference
    # A reload re-reads mlmon.yaml and the config's profile: the promoted one still applies.
    again.running.options = again.running.options.__class__(config_path=str(folder / "mlmon.yaml"))
    (folder / "mlmon.yaml").write_text(json.dumps(config_data(folder)))
    ok, message = again.running.reload()
    assert ok and "state kept for toy" in message, message
    assert model_hash(again) == promoted["short_hash"]


def test_a_new_reference_in_the_config_wins_over_an_older_promote(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, folder: Path) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(13), 1000))
    promoted = promote(live).json()
    live.stop()
    reference_profile(seed=2).write(folder / "toy.json")  # someone deployed a rebuilt reference
    again = start_exporter(config)
    again.post_ok(drifted(np.random.default_rng(13), 10))  # state started fresh: the old counts were of another reference
    assert again.value("mlmon_state_restores_total", result="reference_mismatch") == 1
    assert model_hash(again) not in (promoted["short_hash"], promoted["previous_hash"].removeprefix("sha256:")[:12])
    assert model_hash(again) == reference_profile(seed=2).short_hash


def test_batches_in_flight_are_counted_whole_across_promotes(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(14), 1000))
    sent = [1000]

    def feed() -> None:
        rng = np.random.default_rng(15)
        session = requests.Session()
        for _ in range(20):
            session.post(live.predictions_url, json=drifted(rng, 200), timeout=10).raise_for_status()
            sent[0] += 200

    feeder = threading.Thread(target=feed)
    feeder.start()
    hashes = set()
    while feeder.is_alive():
        answer = promote(live)
        assert answer.status_code == 200, answer.text
        hashes.add(answer.json()["reference_hash"])
    feeder.join()
    samples = live.samples()
    for feature in ("x", "color", "flag"):
        bins = series(samples, "mlmon_feature_bin_total", model="toy", model_version="v1", feature=feature)
        assert sum(bins.values()) == sent[0] == 5000
    assert len(hashes) >= 1


def test_cli_promote_and_capture_reset(start_exporter: Callable[[MlmonConfig], LiveExporter], folder: Path,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = config_data(folder)
    captured = toy_model_data(name="toy", reference={"capture": 1000})
    captured["drift"]["min_samples"] = MIN_SAMPLES
    data["models"] = [captured]
    live = start_exporter(build_config(data, base_dir=folder))
    token = folder / "admin-token"
    rng = np.random.default_rng(16)
    live.post_ok(drifted(rng, 1000))  # the capture completes
    live.post_ok(drifted(rng, 1000))
    first = model_hash(live)
    out = tmp_path / "new.json"
    assert main(["reference", "promote", "--url", live.metrics_url, "--token-file", str(token), "--model", "toy",
                 "--version", "v1", "--window", "1h", "--reason", "vetted", "--actor", "ci", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "reference promoted from version v1 window 1h (1000 samples)" in printed  # the 1000 after the capture
    assert Profile.read(out).short_hash == model_hash(live) != first
    assert main(["reference", "capture", "--reset", "--url", live.metrics_url, "--token-file", str(token),
                 "--model", "toy", "--version", "v1", "--reason", "new feature pipeline"]) == 0
    assert live.value("mlmon_reference_capturing", model="toy", model_version="v1") == 1
    live.post_ok(drifted(rng, 1000))
    assert live.value("mlmon_reference_capturing", model="toy", model_version="v1") == 0
    assert model_hash(live) not in (first, Profile.read(out).short_hash)
    assert live.value("mlmon_reference_switches_total", model="toy", result="capture_reset") == 1
    # Refusals exit 1 and print the exporter's reason.
    assert main(["reference", "promote", "--url", live.metrics_url, "--token-file", str(token), "--model", "toy",
                 "--version", "v7", "--window", "1h", "--reason", "x"]) == 1
    assert "404 model toy has no version 'v7'" in capsys.readouterr().err
    shown = requests.get(f"{live.metrics_url}/v1/models/toy/reference?version=v1", timeout=10).json()
    assert [s["result"] for s in shown["recent_switches"]] == ["promoted", "capture_reset", "refused"]
    assert shown["recent_switches"][0]["actor"] == "ci"


def test_binned_stats_by_hand() -> None:
    # edges 0, 10, 20; 30 values in [0, 10), 10 in [10, 20]: midpoints 5 and 15.
    binning = Binning("v", "numeric", np.zeros(4, dtype=np.int64), edges=np.array([0.0, 10.0, 20.0]))
    stats = binned_stats(binning, np.array([0, 30, 10, 0]), {"std": 3.0})
    assert stats["mean"] == pytest.approx(7.5)
    assert stats["std"] == pytest.approx(np.sqrt((30 * 2.5**2 + 10 * 7.5**2) / 39))
    assert stats["p50"] == pytest.approx(20 / 3) and stats["p75"] == pytest.approx(10.0)
    assert (stats["count"], stats["min"], stats["max"], stats["binned"]) == (40, 0.0, 20.0, 1)
    # All mass in one point: the old spread is kept (the Wasserstein scale must not become 0).
    assert binned_stats(binning, np.array([0, 0, 0, 40]), {"std": 3.0})["std"] == 3.0


def test_a_window_mostly_outside_the_old_bins_warns() -> None:
    old = reference_profile()
    binnings = [*old.features.values(), old.prediction]
    counts = [np.r_[0, np.full(b.n_bins - 2, 10), 500] if b.kind == "numeric" else np.full(b.n_bins, 100)
              for b in binnings]
    _, warnings = promote_profile(old, binnings, counts, 600, Provenance("v1", "1h", "me", "why", 0.0))
    assert any(w.startswith("x: ") and "outside the reference range" in w for w in warnings)


def test_state_saved_just_before_a_promote_still_restores_onto_the_promoted_reference(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig, folder: Path) -> None:
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(17), 2000))
    snapshot = folder / "state" / SNAPSHOT_FILE
    live.running.exporter.snapshotter.save()
    before = snapshot.read_bytes()  # as if the process died after the promote, before any later snapshot
    promoted = promote(live).json()
    live.stop()
    snapshot.write_bytes(before)
    again = start_exporter(config)
    assert model_hash(again) == promoted["short_hash"]
    assert again.value("mlmon_state_restores_total", result="reference_mismatch") == 0
    assert again.value("mlmon_predictions_total", model="toy", model_version="v1") == 2000


def test_basic_auth_of_the_web_config_admits_a_promote_too(config: MlmonConfig) -> None:
    from exporter.http.server import ServeOptions, start

    web_config = Path(__file__).resolve().parents[1] / "examples" / "web-config.yml"  # prometheus / changeme
    running = start(config, "127.0.0.1:0", "127.0.0.1:0", ServeOptions(web_config_file=str(web_config)))
    try:
        live = LiveExporter(running)
        live.post_ok(drifted(np.random.default_rng(18), 1000))
        body = {"version": "v1", "window": "5m", "actor": "ops", "reason": "vetted"}
        url = f"{live.metrics_url}/v1/models/toy/reference:promote"
        assert requests.post(url, json=body, auth=("prometheus", "wrong"), timeout=10).status_code == 401
        answer = requests.post(url, json=body, auth=("prometheus", "changeme"), timeout=10)
        assert answer.status_code == 200, answer.text
        # The admin token admits the admin paths only, never /metrics behind basic auth.
        assert requests.get(f"{live.metrics_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10).status_code == 401
    finally:
        running.stop()


def test_a_file_reference_switches_every_version_and_versions_seen_later(
        start_exporter: Callable[[MlmonConfig], LiveExporter], config: MlmonConfig) -> None:
    live = start_exporter(config)
    rng = np.random.default_rng(19)
    live.post_ok(drifted(rng, 1000))
    live.post_ok(drifted(rng, 100, version="v2"))
    answer = promote(live).json()
    assert sorted(answer["switched_versions"]) == ["v1", "v2"]
    live.post_ok(drifted(rng, 100, version="v3"))
    assert {model_hash(live, v) for v in ("v1", "v2", "v3")} == {answer["short_hash"]}


def test_a_promoted_captured_reference_survives_a_restart(
        start_exporter: Callable[[MlmonConfig], LiveExporter], folder: Path) -> None:
    data = config_data(folder)
    data["models"] = [toy_model_data(name="toy", reference={"capture": 600})]
    data["models"][0]["drift"]["min_samples"] = MIN_SAMPLES
    config = build_config(data, base_dir=folder)
    live = start_exporter(config)
    live.post_ok(drifted(np.random.default_rng(20), 1500))
    answer = promote(live, window="1h")
    assert answer.status_code == 200 and answer.json()["samples"] == 900, answer.text  # the 900 binned after the capture
    live.stop()
    again = start_exporter(config)
    assert model_hash(again) == answer.json()["short_hash"]
    assert again.value("mlmon_reference_capturing", model="toy", model_version="v1") == 0
