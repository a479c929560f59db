"""The code's shape: the pipeline's stages import only the stages before them, no module import
forms a circle, and the model stays a pure library (checker/__init__.py draws the stages)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from .helpers import ROOT

# Stages of the pipeline, in order: a module may import its own stage and those before it.
STAGES = {"model": 0, "base": 1, "reading": 2, "language": 3, "gating": 4, "engine": 5, "reporters": 6, "cli": 7}
BASE = {"checker", "checker.errors", "checker.findings", "checker.resources"}
# What the model may not import: it does no I/O, reads no files and prints nothing.
IMPURE = {"io", "os", "pathlib", "sys", "subprocess", "shutil", "tempfile", "socket", "logging", "yaml", "lark",
          "rich", "jinja2", "jsonschema", "tomllib", "json", "checker"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> str:
    if module == "model" or module.startswith("model."):
        return "model"
    if module in BASE:
        return "base"
    if module in ("checker.cli", "checker.__main__"):
        return "cli"
    return module.split(".")[1]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str) -> set[str]:
    """Every module this file imports, at run time (not under `if TYPE_CHECKING:`), at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.add(target)
                for alias in child.names:  # `from . import fastpath` imports a module
                    if f"{target}.{alias.name}" in MODULES:
                        found.add(f"{target}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


FILES = {_module(p): p for folder in ("checker", "model") for p in sorted((ROOT / folder).rglob("*.py"))}
MODULES = set(FILES)
GRAPH = {module: {m for m in _imports(path, module) if m in MODULES} for module, path in FILES.items()}


def test_every_module_is_in_a_stage():
    assert {_stage(m) for m in MODULES} <= set(STAGES), sorted({_stage(m) for m in MODULES} - set(STAGES))


def test_imports_point_down_the_pipeline():
    wrong = [f"{module} ({_stage(module)}) imports {target} ({_stage(target)})"
             for module, targets in GRAPH.items() for target in sorted(targets)
             if STAGES[_stage(target)] > STAGES[_stage(module)]]
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
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
            connect(node)
    return found


def test_no_import_circle():
    # a package's __init__ importing its own modules is how packages work, not a circle
    graph = {m: {t for t in targets if not (m.rpartition(".")[0] == t or t == m)} for m, targets in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_model_is_pure():
    wrong = [f"{module} imports {target}" for module, path in FILES.items() if _stage(module) == "model"
             for target in sorted(_imports(path, module)) if target.split(".")[0] in IMPURE]
    assert wrong == []


@pytest.mark.parametrize("graph", [{"a": {"b"}, "b": {"a"}}, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}])
def test_the_circle_finder_finds_circles(graph):
    assert _cycles(graph) and all(len(c) > 1 for c in _cycles(graph))


def test_an_upward_import_would_be_seen(tmp_path):
    """The checks above read the real tree: make sure they see a relative import of a later
    stage, one inside a function, and skip one under TYPE_CHECKING."""
    fake = tmp_path / "reader.py"
    fake.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from ..engine.run import RunResult\n"
                    "def f():\n    from ..reporters.text import TextReport\n")
    imports = _imports(fake, "checker.reading.reader")
    assert "checker.reporters.text" in imports and "checker.engine.run" not in imports
    assert STAGES[_stage("checker.reporters.text")] > STAGES[_stage("checker.reading.reader")]


def test_the_machine_is_made_of_families_not_mixins():
    from model.machine import Machine

    assert Machine.__bases__ == (object,)
    machine = Machine()
    seen: dict[str, str] = {}
    for family in machine.families:
        assert type(family).__module__.endswith("_ddis"), type(family)
        for ddi, method in family.HANDLERS.items():
            assert ddi not in seen, f"{ddi} is handled by {seen[ddi]} and {type(family).__name__}"
            seen[ddi] = type(family).__name__
            assert callable(getattr(family, method))
    assert machine.handled_ddis() == frozenset(seen)


def test_no_family_reaches_back_into_the_machine():
    """Not even for a type: a family gets what it uses, never the machine."""
    wrong = []
    for module, path in FILES.items():
        if not module.startswith("model.") or module == "model.machine":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module == "machine" and node.level == 1 or node.module == "model.machine"):
                wrong.append(module)
    assert wrong == []


def test_end_queries_come_from_the_families():
    """A rule's `each:` names a query a family declares; a new family's queries need no
    edit of the rule language."""
    from checker.language.rule_schema import examine_rule_text
    from model.machine import Machine

    machine = Machine()
    declared = {name for part in (*machine.families, machine.routines) for name in getattr(part, "QUERIES", {})}
    assert machine.query_names() == declared >= {"live_sgls", "live_blocks", "live_mdls", "open_frames"}
    rule = (ROOT / "rules" / "pool" / "pool-leak.yaml").read_text(encoding="utf-8")
    assert "each: live_blocks" in rule
    problems = examine_rule_text(rule.replace("each: live_blocks", "each: live_widgets"), "pool-leak.yaml", "pool-leak").problems
    assert [p.message for p in problems] == [
        f"check/each: unknown query 'live_widgets' (queries: {', '.join(sorted(declared))})"]
