"""The layering is a test: imports point down only, packages form no cycle, and no package uses
another package's private names.

    web (the server), cli, demo, worker   entry points
    ui                                    the tabs
    sweeps                                hyperparameter search over runs of the job manager
    jobs, planning                        queue, run index, worker processes; a run planned before launch
    training, inference                   the worker's side; loading a finished run
    tasks                                 one module per task
    data, models                          reading files; backbones
    runs                                  the run folder, its events and statuses
    config, settings, users, workspace    plain configuration and files; the machine (gpus, allocator)
    errors, credentials                   below everything

An import inside ``if TYPE_CHECKING:`` names a type only and is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STUDIO = Path(__file__).resolve().parents[2] / "studio"

LAYERS = [
    {"web", "cli", "__main__", "demo", "worker"},
    {"ui"},
    {"sweeps"},
    {"jobs", "planning"},
    {"training", "inference"},
    {"tasks"},
    {"data", "models"},
    {"runs"},
    {"config", "settings", "users", "workspace", "gpus", "allocator"},
    {"errors", "credentials"},
]
RANK = {name: len(LAYERS) - level for level, names in enumerate(LAYERS) for name in names}

KNOWN_UPWARD: set[tuple[str, str]] = set()
"""Upward imports tolerated while they are being removed: none left."""


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every studio import outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("studio."):
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names if alias.name.startswith("studio.")]
    return found


def package_of(path: Path) -> str:
    return path.relative_to(STUDIO).parts[0].removesuffix(".py")


def edges() -> list[tuple[str, str, str]]:
    """(from package, to package, where) for every import between two of the studio's packages."""
    out = []
    for path in sorted(STUDIO.rglob("*.py")):
        source = package_of(path)
        if source == "__init__":
            continue
        for line, module, _ in imports(path):
            target = module.split(".")[1]
            if target != source:
                out.append((source, target, f"{path.relative_to(STUDIO.parent)}:{line} imports {module}"))
    return out


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in STUDIO.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"add these to LAYERS: {sorted(packages - set(RANK))}"


def test_imports_point_down():
    upward = [where for source, target, where in edges()
              if RANK[target] > RANK[source] and (source, target) not in KNOWN_UPWARD]
    assert not upward, "an import points up the layers:\n" + "\n".join(upward)


def test_known_exceptions_are_still_needed():
    found = {(source, target) for source, target, _ in edges() if RANK[target] > RANK[source]}
    assert KNOWN_UPWARD <= found, f"fixed, so remove from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - found)}"


def test_packages_form_no_cycle():
    graph: dict[str, set[str]] = {}
    for source, target, _ in edges():
        if (source, target) not in KNOWN_UPWARD:
            graph.setdefault(source, set()).add(target)

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            pytest.fail("packages import each other in a cycle: " + " -> ".join(trail[trail.index(node):] + [node]))
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])

    for start in sorted(graph):
        visit(start, [])


def test_no_private_name_is_used_across_packages():
    crossing = []
    for path in sorted(STUDIO.rglob("*.py")):
        for line, module, names in imports(path):
            if module.split(".")[1] != package_of(path):
                crossing += [f"{path.relative_to(STUDIO.parent)}:{line} {module}.{name}" for name in names if name.startswith("_")]
    assert not crossing, "private names used from another package (make them public or move the code):\n" + "\n".join(crossing)


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The test can fail: a data module importing the job system is reported."""
    fake = tmp_path / "studio"
    (fake / "data").mkdir(parents=True)
    (fake / "jobs").mkdir()
    (fake / "data" / "bad.py").write_text("from studio.jobs.manager import JobManager\n")
    (fake / "jobs" / "ok.py").write_text("from studio.data.bad import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["STUDIO"]), "STUDIO", fake)
    with pytest.raises(AssertionError, match="data/bad.py:1 imports studio.jobs.manager"):
        test_imports_point_down()
    with pytest.raises(pytest.fail.Exception, match="cycle"):
        test_packages_form_no_cycle()


def test_tabs_do_not_import_other_tabs():
    """What two tabs share lives in a module of its own (common, data_state, services...)."""
    crossing = []
    for path in sorted((STUDIO / "ui").glob("*_tab.py")):
        for line, module, names in imports(path):
            targets = [module, *(f"{module}.{name}" for name in names)]
            crossing += [f"ui/{path.name}:{line} imports {target}" for target in targets
                         if target.rsplit(".", 1)[-1].endswith("_tab") and target.rsplit(".", 1)[-1] != path.stem]
    assert not crossing, "\n".join(crossing)
