"""Every command the README and docs/ show runs as written.

The fenced ```sh blocks of README.md and docs/**/*.md are run, in order, file by file, in a fresh
copy of the repository with `.venv/bin` on PATH (as after `. .venv/bin/activate`), while `mlmon demo`
serves the example on free ports (8710/8711 in the text are rewritten to them). A block that cannot
run here says why on its fence line, e.g. ```sh no-run: needs a Kubernetes cluster; such blocks are
listed and must give a reason, so nothing is skipped silently.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest
import requests
import yaml

from tests.test_cli import wait_for_health
from exporter.tooling.localstack import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
FENCE = re.compile(r"^[ \t]*```sh(?P<info>[^\n]*)\n(?P<body>.*?)^[ \t]*```", re.M | re.S)


class Block(NamedTuple):
    path: str
    line: int
    info: str
    body: str

    @property
    def runs(self) -> bool:
        return not self.info.strip().startswith("no-run")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text()
    return [
        Block(str(path.relative_to(ROOT)), text.count("\n", 0, m.start()) + 1, m.group("info"), m.group("body"))
        for m in FENCE.finditer(text)
    ]


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in blocks_of(path)]


def test_the_block_finder_sees_runnable_and_excused_blocks() -> None:
    found = FENCE.findall("text\n```sh\necho hi\n```\n```sh no-run: needs docker\ndocker ps\n```\n```yaml\na: 1\n```\n")
    assert [info for info, _ in found] == ["", " no-run: needs docker"]


def test_every_excused_block_says_why() -> None:
    unexplained = [f"{b.path}:{b.line}" for b in all_blocks() if not b.runs and ":" not in b.info]
    assert unexplained == [], "write ```sh no-run: <reason>"


def tracked_copy(target: Path) -> None:
    """The repository as a fresh clone has it (tracked files only), plus the test venv."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            destination = target / name.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    (target / ".venv").symlink_to(VENV_BIN.parent)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the repo and `mlmon demo` serving the example config on free ports."""
    copy = tmp_path_factory.mktemp("docs") / "mlmon"
    copy.mkdir()
    tracked_copy(copy)
    metrics_port, ingest_port = free_port(), free_port()
    data = yaml.safe_load((copy / "examples" / "mlmon.yaml").read_text())
    data.setdefault("exporter", {})
    data["exporter"]["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    data["exporter"]["ingest_listen"] = f"127.0.0.1:{ingest_port}"
    demo_config = copy / "examples" / "docs-test.yaml"  # beside the example, so its relative references resolve
    demo_config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PATH": f"{copy / '.venv' / 'bin'}:{os.environ['PATH']}"}
    demo = subprocess.Popen(
        [str(VENV_BIN / "mlmon"), "demo", "-c", str(demo_config), "--rate", "50"],
        cwd=copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{metrics_port}/healthz", demo)
        # The README's first look at /metrics expects the demo's traffic to have arrived.
        for _ in range(300):
            if "mlmon_predictions_total{" in requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text:
                break
            assert demo.poll() is None, demo.stderr.read() if demo.stderr else "mlmon demo exited"
            time.sleep(0.1)
        yield copy, {**env, "MLMON_DOCS_METRICS_PORT": str(metrics_port), "MLMON_DOCS_INGEST_PORT": str(ingest_port)}
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()


def with_ports(body: str, env: dict[str, str]) -> str:
    body = re.sub(r"(localhost|127\.0\.0\.1):8710\b", rf"\1:{env['MLMON_DOCS_METRICS_PORT']}", body)
    return re.sub(r"(localhost|127\.0\.0\.1):8711\b", rf"\1:{env['MLMON_DOCS_INGEST_PORT']}", body)


@pytest.mark.parametrize("doc", [str(p.relative_to(ROOT)) for p in doc_files() if any(b.runs for b in blocks_of(p))])
def test_the_commands_of_a_page_run_as_written(doc: str, workspace: tuple[Path, dict[str, str]]) -> None:
    copy, env = workspace
    for block in blocks_of(ROOT / doc):
        if not block.runs:
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", with_ports(block.body, env)],
            cwd=copy, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, (
            f"{block.path}:{block.line} exited {result.returncode}\n{block.body}\nstdout:\n{result.stdout[-2000:]}\n"
            f"stderr:\n{result.stderr[-2000:]}"
        )
