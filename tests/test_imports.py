"""The package's shape, as docs/architecture.md claims it: imports point one way (no cycle, lazy imports and
type-checking imports included), the measuring stages never import what reads their results, the reading commands
load no torch, the pytest options load nothing heavy, and no module grows past MAX_LINES."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vitcnn"
MAX_LINES = 400
# Stages on the measuring side of the data flow, and what they may never import (the readers and drivers of
# their results).
MEASURING = ("vitcnn.zoo", "vitcnn.measure", "vitcnn.settings", "vitcnn.result")
READERS = ("vitcnn.gate", "vitcnn.report", "vitcnn.history", "vitcnn.site", "vitcnn.ab", "vitcnn.cli",
           "vitcnn.plugin", "vitcnn.session", "vitcnn.scale", "vitcnn.workers", "vitcnn.options")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every vitcnn module `name` imports anywhere in its source (top level, in functions, under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("vitcnn") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle of imports."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
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

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle_through_a_lazy_import(tmp_path):
    package = tmp_path / "vitcnn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from vitcnn import b\n")
    (package / "b.py").write_text("def f():\n    from vitcnn.c import g\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vitcnn.a import x\n")
    known = {f"vitcnn.{p.stem}" if p.stem != "__init__" else "vitcnn": p for p in package.glob("*.py")}
    edges = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(edges) == [["vitcnn.a", "vitcnn.b", "vitcnn.c"]]


def test_the_measuring_stages_never_import_the_readers():
    edges = graph()
    wrong = {(name, target) for name, targets in edges.items() if name.startswith(MEASURING)
             for target in targets if target.startswith(READERS)}
    assert wrong == set()


@pytest.mark.parametrize("command", [
    ["compare", "results/cpu-smoke/run.json", "results/cpu-smoke/run-2.json"],
    ["check", "results/cpu-smoke/run.json"],
    ["report", "results/cpu-smoke/run.json", "--out", "{tmp}"],
    ["--help"],
])
def test_reading_commands_and_the_parser_import_no_torch(command, tmp_path):
    argv = [arg.replace("{tmp}", str(tmp_path / "report")) for arg in command]
    code = ("import sys; from vitcnn.cli import main; code = main(sys.argv[1:]); "
            "heavy = {'torch', 'timm'} & set(sys.modules); print('HEAVY', sorted(heavy), file=sys.stderr); "
            "sys.exit(3 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
