"""The import graph: commands are leaves, and no module depends on itself through others."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("pipeline", "infra")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports (module-level and inside functions alike)."""
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_no_module_imports_from_commands() -> None:
    offenders = {
        module: sorted(t for t in targets if t.startswith("pipeline.commands"))
        for module, targets in imports().items()
        if not module.startswith("pipeline.commands") and module != "pipeline.cli"
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_library_module_imports_local_mode() -> None:
    """No arrow up: the library (what build jobs run) never depends on local mode; local mode and the commands that
    drive it sit above it (``pipeline.release`` once reported progress through ``pipeline.local.progress``)."""
    offenders = {
        module: sorted(t for t in targets if t.startswith("pipeline.local"))
        for module, targets in imports().items()
        if module.startswith("pipeline") and not module.startswith(("pipeline.local", "pipeline.commands"))
        and module != "pipeline.cli"
    }  # fmt: skip
    assert {m: t for m, t in offenders.items() if t} == {}


def test_the_import_graph_has_no_cycle() -> None:
    graph = imports()
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            # A package's __init__ re-exporting its submodules is not a dependency of those submodules on it.
            if node.startswith(target + "."):
                continue
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_source_file_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for package in (*PACKAGES, "tests", "benchmarks")
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}
