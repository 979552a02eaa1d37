"""The command line a new user meets: every mistake is exit 2 and one line naming the problem and
the fix, never a traceback; one flag vocabulary (-c/--config, -o/--out, --check) with the old
spellings still accepted and flagged as deprecated."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import example_config_data
from tests.test_cli import EXAMPLES, EXAMPLE_CONFIG, MLMON, ROOT, free_port, wait_for_health


def run_mlmon(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLMON, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def user_config(tmp_path: Path, **exporter: str) -> Path:
    """The example config as a user's own file, outside the repo, with its profiles next to it."""
    data = example_config_data()
    data["exporter"].update(exporter)
    for model in data["models"]:
        shutil.copy(EXAMPLES / model["reference"], tmp_path / Path(model["reference"]).name)
        model["reference"] = Path(model["reference"]).name
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_version_prints_the_package_version() -> None:
    from exporter import __version__

    result = run_mlmon("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mlmon {__version__}"


def test_an_unknown_log_level_is_one_line_naming_the_choices() -> None:
    assert_one_line_error(run_mlmon("--log-level", "LOUD", "config", "schema"), "LOUD", "DEBUG", "--help")


def test_log_level_is_case_insensitive() -> None:
    assert run_mlmon("--log-level", "debug", "config", "check", "-c", str(EXAMPLE_CONFIG)).returncode == 0


def test_an_unwritable_out_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_mlmon("config", "schema", "-o", str(blocker / "schema.json"))
    assert_one_line_error(result, "cannot use", str(blocker))


def test_out_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "schema.json"
    assert run_mlmon("config", "schema", "--out", str(target)).returncode == 0
    assert json.loads(target.read_text())["title"]


def test_config_check_takes_the_config_like_every_other_command(tmp_path: Path) -> None:
    result = run_mlmon("config", "check", "-c", str(user_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "references readable" in result.stdout


def test_config_check_still_accepts_the_old_positional_file_with_a_deprecation_line(tmp_path: Path) -> None:
    result = run_mlmon("config", "check", str(user_config(tmp_path)))
    assert result.returncode == 0
    assert "deprecated" in result.stderr and "config check -c FILE" in result.stderr


def test_a_new_user_can_check_the_config_before_building_profiles(tmp_path: Path) -> None:
    config = user_config(tmp_path)
    (tmp_path / "fraud.json").unlink()
    missing = run_mlmon("config", "check", "-c", str(config))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "fraud.json" in missing.stderr and "mlmon profile build" in missing.stderr and "--skip-profiles" in missing.stderr
    only_config = run_mlmon("config", "check", "-c", str(config), "--skip-profiles")
    assert only_config.returncode == 0 and "not checked" in only_config.stdout


def test_the_same_address_for_both_listeners_is_a_config_error(tmp_path: Path) -> None:
    config = user_config(tmp_path, metrics_listen="0.0.0.0:9000", ingest_listen="127.0.0.1:9000")
    result = run_mlmon("config", "check", "-c", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "same address" in result.stderr and "0.0.0.0:9000" in result.stderr


def test_profile_build_writes_to_out_and_says_what_it_does_when_piped(tmp_path: Path) -> None:
    out = tmp_path / "profiles" / "fraud.json"
    result = run_mlmon(
        "profile", "build", "-c", str(EXAMPLE_CONFIG), "--model", "fraud", str(EXAMPLES / "data" / "fraud_reference.csv"),
        "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert "read " in result.stderr and "rows" in result.stderr and "PCA" in result.stderr


def test_profile_build_still_accepts_output_with_a_deprecation_line(tmp_path: Path) -> None:
    out = tmp_path / "fraud.json"
    result = run_mlmon(
        "profile", "build", "-c", str(EXAMPLE_CONFIG), "--model", "fraud", str(EXAMPLES / "data" / "fraud_reference.csv"),
        "--output", str(out),
    )
    assert result.returncode == 0 and out.exists()
    assert "--output is deprecated" in result.stderr


def test_profile_build_without_out_is_one_line(tmp_path: Path) -> None:
    result = run_mlmon(
        "profile", "build", "-c", str(EXAMPLE_CONFIG), "--model", "fraud", str(EXAMPLES / "data" / "fraud_reference.csv")
    )
    assert_one_line_error(result, "-o/--out")


def test_profile_build_says_when_a_feature_gets_fewer_bins_than_asked(tmp_path: Path) -> None:
    data = example_config_data()
    model = data["models"][0]
    numeric = next(f for f in model["features"] if f["type"] == "numeric")
    numeric["bins"] = 6
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(data))
    source = (EXAMPLES / "data" / "fraud_reference.csv").read_text().splitlines()
    columns = source[0].split(",")
    index = columns.index(numeric["name"])
    lines = [source[0]]
    for i, line in enumerate(source[1:2001]):  # the feature takes only the values 0, 1 and 2 (Poisson-like)
        cells = line.split(",")
        cells[index] = str(i % 3)
        lines.append(",".join(cells))
    data_file = tmp_path / "data.csv"
    data_file.write_text("\n".join(lines) + "\n")
    result = run_mlmon("profile", "build", "-c", str(config), "--model", model["name"], str(data_file), "-o", str(tmp_path / "p.json"))
    assert result.returncode == 0, result.stderr
    found = re.search(rf"{numeric['name']}: (\d+) bins instead of the 6 asked for", result.stderr)
    assert found and int(found.group(1)) < 6, result.stderr


def test_generators_need_an_out_instead_of_writing_into_the_working_directory(tmp_path: Path) -> None:
    for what in ("rules", "dashboards"):
        result = run_mlmon(what, "build", "-c", str(EXAMPLE_CONFIG), cwd=tmp_path)
        assert_one_line_error(result, "-o/--out")
        assert list(tmp_path.iterdir()) == []


def test_a_stale_check_names_the_command_that_rebuilds_the_users_files(tmp_path: Path) -> None:
    config = user_config(tmp_path)
    for what in ("rules", "dashboards"):
        out = tmp_path / f"my-{what}"
        assert run_mlmon(what, "build", "-c", str(config), "-o", str(out)).returncode == 0
        assert run_mlmon(what, "build", "-c", str(config), "-o", str(out), "--check").returncode == 0
        next(p for p in sorted(out.iterdir()) if p.is_file()).write_text("edited by hand\n")
        stale = run_mlmon(what, "build", "-c", str(config), "-o", str(out), "--check")
        assert stale.returncode == 1
        assert f"mlmon {what} build -c {config} -o {out}" in stale.stderr
        assert "make generate" not in stale.stderr


def test_serve_writes_json_logs_when_asked(tmp_path: Path) -> None:
    metrics_port, ingest_port = free_port(), free_port()
    config = user_config(tmp_path, metrics_listen=f"127.0.0.1:{metrics_port}", ingest_listen=f"127.0.0.1:{ingest_port}")
    process = subprocess.Popen(
        [*MLMON, "--log-format", "json", "serve", "-c", str(config)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for_health(f"http://127.0.0.1:{metrics_port}/healthz", process).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = [line for line in (process.stderr.read() if process.stderr else "").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any("serving metrics on" in e["message"] for e in entries)


def test_make_demo_installs_only_the_runtime_dependencies(tmp_path: Path) -> None:
    # The venv `make demo` builds, built for real in a fresh folder: runtime packages only.
    venv = tmp_path / "demo-venv"
    built = subprocess.run(["make", "runtime-venv", f"VENV={venv}"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, timeout=120).stdout.lower()
    assert "flask==" in installed and "numpy==" in installed and "mlmon==" in installed
    for test_only in ("helm-python-sdk", "kubernetes-validate", "scikit-learn", "pytest"):
        assert f"{test_only}==" not in installed, test_only
    assert subprocess.run([str(venv / "bin" / "mlmon"), "--version"], capture_output=True, timeout=60).returncode == 0
    # and `make demo` asks for that venv, not the test one
    plan = subprocess.run(["make", "-n", "demo", f"VENV={venv}"], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "[test]" not in plan
