"""The package layout keeps its imports one way: no module cycles, rooms of `exporter/` import only
rooms below them, and `exporter` never reaches up into `dashboards` or `alert_rules`.

Every import counts, also those inside functions and under TYPE_CHECKING: a cycle hidden in a
function is still a cycle in the design. docs/architecture.md explains the rooms.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exporter", "alert_rules", "dashboards", "chart_values")

# The rooms of exporter/, lowest first: a room may import itself and any room before it.
EXPORTER_LAYERS = ("catalog", "logs", "config", "stats", "profiles", "ingest", "state", "http", "actions", "tooling", "cli")
# The composition root: the `mlmon` command runs the generators of the sibling packages.
COMPOSITION_ROOT = "exporter.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules a file imports (`from a.b import c` counts a.b.c when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first: a package's own imports count too,
    # but an edge to one's own enclosing package is not a cycle worth reporting.
    return {name: {t for t in targets if not name.startswith(t + ".")} - {name} for name, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "exporter" or len(parts) == 1:
        return None
    return parts[1]


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_every_exporter_room_has_a_place_in_the_layers():
    rooms = {room_of(m) for m in project_modules()} - {None, "__init__"}
    assert rooms <= set(EXPORTER_LAYERS), f"add {sorted(rooms - set(EXPORTER_LAYERS))} to EXPORTER_LAYERS and docs"


@pytest.mark.parametrize("module", sorted(m for m in project_modules() if room_of(m)))
def test_exporter_rooms_import_only_rooms_below_them(module):
    graph = import_graph()
    here = EXPORTER_LAYERS.index(room_of(module))
    upward = [t for t in graph[module] if room_of(t) and EXPORTER_LAYERS.index(room_of(t)) > here]
    assert upward == [], f"{module} ({EXPORTER_LAYERS[here]}) imports a room above it: {upward}"


def test_exporter_never_imports_the_generators_except_from_the_command_line():
    graph = import_graph()
    upward = {
        module: sorted(t for t in targets if t.split(".")[0] != "exporter")
        for module, targets in graph.items()
        if module.startswith("exporter") and module != COMPOSITION_ROOT
    }
    assert {m: t for m, t in upward.items() if t} == {}


def test_alert_rules_never_imports_dashboards():
    graph = import_graph()
    assert [m for m, targets in graph.items() if m.startswith("alert_rules") and any(t.startswith("dashboards") for t in targets)] == []
