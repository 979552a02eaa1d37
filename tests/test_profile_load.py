"""Strict profile loading: every bad reference is refused at startup with one line naming the file and the fix.

The kinds below are the ones the reliability probe found (issue 16, item 9): files that are not
files, files that are not JSON, and JSON that is not a sound profile of this model, with or
without a content_hash. Each is refused by `mlmon config check` and by `mlmon serve` with exit 2,
one line on stderr and no traceback; a FIFO never hangs startup.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from conftest import EXAMPLES, ROOT, example_config_data
from exporter.cli import main
from exporter.config.model import load_config
from exporter.profiles.files import read_regular_file
from exporter.profiles.load import load_profile, load_profiles
from exporter.profiles.profile import ProfileError
from tests.support.processes import free_port

MLMON = [sys.executable, "-m", "exporter.cli"]
FRAUD = json.loads((EXAMPLES / "reference" / "fraud.json").read_text())


def edited(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """A profile changed by hand with its content_hash removed, so only validation can catch it."""

    def write(path: Path) -> None:
        data = copy.deepcopy(FRAUD)
        change(data)
        data.pop("content_hash", None)
        path.write_text(json.dumps(data))

    return write


def replaced(make: Callable[[Path], Any]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.unlink()
        make(path)

    return write


AMOUNT_EDGES = len(FRAUD["features"]["amount"]["edges"])
AMOUNT_COUNTS = len(FRAUD["features"]["amount"]["counts"])

# (kind, how to break fraud.json, what the one line says)
BAD_PROFILES = [
    ("missing", replaced(lambda p: None), "cannot read (No such file or directory)"),
    ("a directory", replaced(lambda p: p.mkdir()), "is a directory, not a regular file"),
    ("a FIFO nobody writes to", replaced(lambda p: os.mkfifo(p)), "is a FIFO, not a regular file"),
    ("a symlink loop", replaced(lambda p: os.symlink(p.name, p)), "cannot read (Too many levels of symbolic links)"),
    ("a character device", replaced(lambda p: os.symlink("/dev/zero", p)), "is a character device"),
    ("truncated JSON", lambda p: p.write_text(p.read_text()[:500]), "not JSON"),
    ("an empty file", lambda p: p.write_bytes(b""), "not JSON"),
    ("binary garbage", lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)), "not UTF-8 text"),
    ("JSON nested 100,000 deep", lambda p: p.write_text("[" * 100_000), "not JSON"),
    ("edited by hand (hash mismatch)", lambda p: p.write_text(json.dumps(dict(FRAUD, rows=1))), "content_hash does not match"),
    ("edges of length 1", edited(lambda d: d["features"]["amount"].update(edges=[1.0], counts=[0, 0])),
     "amount: edges must hold at least 2 values"),
    ("edges all NaN", edited(lambda d: d["features"]["amount"].update(edges=[float("nan")] * AMOUNT_EDGES)),
     "amount: edges must be finite"),
    ("edges decreasing", edited(lambda d: d["features"]["amount"]["edges"].reverse()), "strictly increasing"),
    ("negative counts", edited(lambda d: d["features"]["amount"].update(counts=[-5] * AMOUNT_COUNTS)),
     "amount: counts must be non-negative"),
    ("fractional counts", edited(lambda d: d["features"]["amount"].update(counts=[0.5] * AMOUNT_COUNTS)),
     "amount: counts must be a list of integers"),
    ("categories not a list", edited(lambda d: d["features"]["country"].update(categories=5)),
     "country: categories must be a list of strings"),
    ("features a list", edited(lambda d: d.update(features=[])), "`features` must be an object"),
    ("stats not numbers", edited(lambda d: d["features"]["amount"].update(stats=["std"])), "stats must be an object"),
    ("PCA block of the old format", edited(lambda d: d["extras"]["pca"].pop("format")),
     "extras.pca is not format 2 (encoded features); rebuild the profile"),
    ("PCA block missing keys", edited(lambda d: d["extras"].update(pca={"format": 2, "features": [{"name": "amount", "kind": "numeric"}]})),
     "extras.pca.features must list at least 2"),
    ("PCA components of the wrong shape", edited(lambda d: d["extras"]["pca"].update(components=[[1.0, 2.0, 3.0]])),
     "extras.pca.components must be k x 14"),
    ("PCA feature of an unknown kind", edited(lambda d: d["extras"]["pca"]["features"][0].update(kind="ordinal")),
     "each must be {name, kind: numeric|categorical|boolean}"),
    ("PCA categorical feature without categories", edited(lambda d: d["extras"]["pca"]["features"][2].pop("categories")),
     "'country' needs a list of distinct category texts"),
    ("PCA feature of another type than configured",
     edited(lambda d: d["extras"]["pca"]["features"][0].update(kind="categorical", categories=["x"])),
     "extras.pca uses 'amount', not features of 'fraud' of the same type"),
    ("PCA categories not the profile's", edited(lambda d: d["extras"]["pca"]["features"][2]["categories"].__setitem__(0, "Atlantis")),
     "extras.pca: categories of 'country' are not the profile's top-K categories"),
    ("calibration knots decreasing", edited(lambda d: d["extras"].update(calibration={"x": [0.9, 0.1], "y": [0.2, 0.8]})),
     "bad calibration block"),
    ("another model's profile", edited(lambda d: d.update(model="something_else")),
     "is the profile of model 'something_else', not of 'fraud'"),
    ("a feature of another type", edited(lambda d: d["features"].update(amount=d["features"]["country"])),
     "feature 'amount' is numeric in the config, categorical in the profile"),
]
IDS = [kind for kind, _, _ in BAD_PROFILES]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The example config and its references, copied so a test can break them."""
    shutil.copytree(EXAMPLES / "reference", tmp_path / "reference")
    data = example_config_data()
    # Free ports: a profile wrongly accepted would start serving, and fail the test by its timeout.
    data["exporter"]["metrics_listen"] = f"127.0.0.1:{free_port()}"
    data["exporter"]["ingest_listen"] = f"127.0.0.1:{free_port()}"
    (tmp_path / "mlmon.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def fraud_reference(workdir: Path) -> Path:
    return workdir / "reference" / "fraud.json"


def run_mlmon(*args: str) -> subprocess.CompletedProcess[str]:
    # A FIFO that hung startup would fail here by timeout rather than hang the suite.
    return subprocess.run([*MLMON, *args], capture_output=True, text=True, cwd=ROOT, timeout=30)


def test_the_shipped_references_load(workdir: Path) -> None:
    profiles = load_profiles(load_config(workdir / "mlmon.yaml"))
    assert sorted(profiles) == ["delivery_time", "fraud"]


@pytest.mark.parametrize(("kind", "breaks", "says"), BAD_PROFILES, ids=IDS)
def test_a_bad_profile_is_one_error_naming_the_file_and_the_fix(workdir: Path, kind: str, breaks, says: str) -> None:
    breaks(fraud_reference(workdir))
    config = load_config(workdir / "mlmon.yaml")
    with pytest.raises(ProfileError) as raised:
        load_profile(config.reference_path(config.models[0]), config.models[0])
    message = str(raised.value)
    assert message.startswith(str(fraud_reference(workdir)) + ": ")
    assert says in message
    assert "\n" not in message
    assert "mlmon profile build" in message  # the fix: rebuild, or point `reference` at a profile file


@pytest.mark.parametrize(("kind", "breaks", "says"), BAD_PROFILES, ids=IDS)
def test_config_check_exits_2_with_one_line_for_a_bad_profile(
    workdir: Path, capsys: pytest.CaptureFixture[str], kind: str, breaks, says: str
) -> None:
    breaks(fraud_reference(workdir))
    assert main(["config", "check", "-c", str(workdir / "mlmon.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


@pytest.mark.parametrize(("kind", "breaks", "says"), BAD_PROFILES, ids=IDS)
def test_serve_exits_2_with_one_line_and_no_traceback_for_a_bad_profile(workdir: Path, kind: str, breaks, says: str) -> None:
    breaks(fraud_reference(workdir))
    result = run_mlmon("serve", "--config", str(workdir / "mlmon.yaml"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_as_a_process_prints_one_line_for_binary_garbage(workdir: Path) -> None:
    fraud_reference(workdir).write_bytes(np.random.default_rng(2).bytes(4096))
    result = run_mlmon("config", "check", "-c", str(workdir / "mlmon.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith("reference profile: ") and result.stderr.count("\n") == 1


def test_a_fifo_is_refused_without_being_opened_for_a_blocking_read(tmp_path: Path) -> None:
    fifo = tmp_path / "ref.json"
    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match="is a FIFO"):
        read_regular_file(fifo)


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2000)
    with pytest.raises(ProfileError, match="too large for a profile"):
        read_regular_file(big, limit=1000)
    assert read_regular_file(big, limit=2000) == b" " * 2000
