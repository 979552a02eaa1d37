"""The pipeline: config -> rule groups -> four YAML files, written or compared (`--check`).

    mlmon rules build --config examples/mlmon.yaml --out alert_rules/generated/ [--check]

Output is deterministic (no timestamps, stable key order), so `--check` can compare bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from exporter.config.model import MlmonConfig

from alert_rules.alertmanager import alertmanager_config
from alert_rules.alerts import alert_groups
from alert_rules.naming import GENERATED_HEADER
from alert_rules.prometheus_rule import prometheus_rule
from alert_rules.recording import recording_groups
from alert_rules.rules import RuleGroup

RULES_FILE = "mlmon_rules.yaml"
ALERTS_FILE = "mlmon_alerts.yaml"
ALERTMANAGER_FILE = "alertmanager.yml"
PROMETHEUS_RULE_FILE = "prometheusrule.yaml"


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line PromQL as literal blocks, list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: Any) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000,
                     allow_unicode=True)
    return GENERATED_HEADER + body


def _groups_file(groups: list[RuleGroup]) -> str:
    return to_yaml({"groups": [group.to_dict() for group in groups]})


def render(config: MlmonConfig) -> dict[str, str]:
    """File name -> content for everything `mlmon rules build` writes."""
    recording, alerting = recording_groups(config), alert_groups(config)
    return {
        RULES_FILE: _groups_file(recording),
        ALERTS_FILE: _groups_file(alerting),
        ALERTMANAGER_FILE: to_yaml(alertmanager_config(config)),
        PROMETHEUS_RULE_FILE: to_yaml(prometheus_rule(config, recording + alerting)),
    }


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    """Names whose content on disk differs from `files` (missing files count as different)."""
    stale = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_files(files: dict[str, str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")


def build(config: MlmonConfig, out: Path, check: bool = False, fix: str = "make generate") -> int:
    """Write the files, or with `check` report stale ones naming `fix`, the command that rebuilds them;
    returns the CLI exit code (1 = stale)."""
    return write_or_check(render(config), out, check, fix)


def write_or_check(files: dict[str, str], out: Path, check: bool, fix: str) -> int:
    """Write `files` into `out`, or with `check` name the stale ones and the command that rebuilds them;
    returns the CLI exit code (1 = stale)."""
    if check:
        stale = stale_files(files, out)
        for name in stale:
            print(f"{out / name} is stale: run `{fix}`", file=sys.stderr)
        return 1 if stale else 0
    write_files(files, out)
    return 0
