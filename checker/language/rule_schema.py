"""Validating rule files against `rules/schema.json`, with every error at its file, line and column.

jsonschema reports a path into the loaded data; PyYAML's node tree keeps where each node
stands in the file. Walking the path through the nodes gives the line and column of the
offending value (or key, for a key that is not allowed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from ..errors import ResourceError
from ..resources import YAML_LOADER, rules_dir

__all__ = ["RuleProblem", "RuleText", "examine_rule_file", "rule_schema", "validate_rule_file", "validate_rule_text"]

_ANNOTATION = re.compile(r"#\s*(ruleid|ok|todoruleid|todook):\s*([a-z0-9-]+)")


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with a rule file, where it stands."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error: {self.message}"


@dataclass(frozen=True, slots=True)
class RuleText:
    """One rule file read once: its problems, and when it has none its data and compiled checks."""

    problems: list[RuleProblem]
    data: dict | None = None
    checks: tuple = ()


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(rule_schema())


@cache
def rule_schema() -> dict:
    path = rules_dir() / "schema.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResourceError(f"cannot read the rule schema {path}: {error}") from None


def _node_at(node: yaml.Node, path: list) -> tuple[yaml.Node, bool]:
    """The node a data path leads to (and whether the whole path was found)."""
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = next((value for name, value in node.value if name.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            match = node.value[key]
        else:
            match = None
        if match is None:
            return node, False
        node = match
    return node, True


def _key_node(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((name for name, _ in node.value if name.value == key), None)
    return None


def validate_rule_text(text: str, path: str, stem: str | None = None) -> list[RuleProblem]:
    """Every problem of one rule file's text, sorted by position."""
    return examine_rule_text(text, path, stem).problems


def examine_rule_text(text: str, path: str, stem: str | None = None) -> RuleText:
    """One rule file's text loaded, validated and compiled, each once: its problems sorted
    by position, or its data and checks."""
    try:
        root = yaml.compose(text, Loader=YAML_LOADER)
        data = yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = getattr(error, "problem", None) or str(error)
        return RuleText([RuleProblem(path, line, column, f"not valid YAML: {problem}")])
    if root is None or not isinstance(data, dict):
        return RuleText([RuleProblem(path, 1, 1, "a rule file holds a mapping of fields (code, name, severity, ...)")])
    problems: list[RuleProblem] = []
    for error in _validator().iter_errors(data):
        node, _ = _node_at(root, list(error.absolute_path))
        message = error.message
        if error.validator is None and error.message.startswith("False schema"):
            problems.append(_not_for_this_kind(root, data, list(error.absolute_path), error.instance, path))
            continue
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - allowed, key=str):
                key_node = _key_node(node, key) or node
                if key is True or key is False:  # YAML 1.1 reads on/off/yes/no as booleans
                    key_node = _boolean_key_node(node) or node
                    problems.append(RuleProblem(path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                f"unknown field '{key_node.value}' (YAML reads it as {str(key).lower()}; "
                                                f"a check names its events with 'verbs')"))
                    continue
                known = ", ".join(sorted(allowed))
                problems.append(RuleProblem(path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                            f"unknown field '{key}' (rule files have: {known})"))
            continue
        where = "/".join(str(part) for part in error.absolute_path)
        if where:
            message = f"{where}: {message}"
        problems.append(RuleProblem(path, node.start_mark.line + 1, node.start_mark.column + 1, message))
    if stem is not None and isinstance(data.get("name"), str) and data["name"] != stem:
        node, _ = _node_at(root, ["name"])
        problems.append(RuleProblem(path, node.start_mark.line + 1, node.start_mark.column + 1,
                                    f"the rule's name '{data['name']}' differs from its file name '{stem}'"))
    problems.extend(_fixture_problems(root, data, path))
    if problems:
        return RuleText(sorted(set(problems), key=lambda p: (p.line, p.column, p.message)))
    problems, checks = _compiled(root, data, path)
    return RuleText(problems) if problems else RuleText([], data, checks)


def _boolean_key_node(node: yaml.Node) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((name for name, _ in node.value if name.tag == "tag:yaml.org,2002:bool"), None)
    return None


def _not_for_this_kind(root: yaml.Node, data: dict, where: list, instance: object, path: str) -> RuleProblem:
    """A field a check of this kind has no use for (a `false` schema in rules/schema.json)."""
    owner: object = data
    for part in where:
        owner = owner[part]  # type: ignore[index]
    key = next((k for k, v in owner.items() if v == instance), None) if isinstance(owner, dict) else None
    node, _ = _node_at(root, where)
    key_node = _key_node(node, key) if isinstance(key, str) else None
    at = key_node or node
    kind = owner.get("kind") if isinstance(owner, dict) else None
    return RuleProblem(path, at.start_mark.line + 1, at.start_mark.column + 1,
                       f"'{key}' has no use in a check of kind {kind}")


def _fixture_problems(root: yaml.Node, data: dict, path: str) -> list[RuleProblem]:
    """Fixtures annotate only this rule, and between them have a ruleid and an ok case."""
    tests = data.get("tests")
    name = data.get("name")
    if not isinstance(tests, list) or not isinstance(name, str):
        return []
    problems = []
    kinds: set[str] = set()
    for index, fixture in enumerate(tests):
        if not isinstance(fixture, str):
            continue
        node, _ = _node_at(root, ["tests", index])
        for number, line in enumerate(fixture.splitlines()):
            match = _ANNOTATION.search(line)
            if match is None:
                continue
            kinds.add(match.group(1))
            if match.group(2) != name:
                # a block scalar's text starts on the line after its indicator
                problems.append(RuleProblem(path, node.start_mark.line + 2 + number, 1,
                                            f"fixture annotates '{match.group(2)}', not this rule '{name}'"))
    missing = [kind for kind in ("ruleid", "ok") if kind not in kinds]
    if missing:
        node, _ = _node_at(root, ["tests"])
        problems.append(RuleProblem(path, node.start_mark.line + 1, node.start_mark.column + 1,
                                    f"the fixtures need at least one '# {missing[0]}: {name}' case"))
    return problems


def _compiled(root: yaml.Node, data: dict, path: str) -> tuple[list[RuleProblem], tuple]:
    """The rule's compiled checks, or why its `check:` does not compile (expressions parse,
    names and functions exist, templates name only the check's values); a problem in an
    expression points into it."""
    from .checks import CheckError, compile_checks

    try:
        checks = compile_checks(data)
    except CheckError as error:
        node, _ = _node_at(root, error.path)
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if error.column is not None and isinstance(node, yaml.ScalarNode) and node.style in (None, "", "'", '"'):
            column += error.column - 1 + (1 if node.style in ("'", '"') else 0)
        where = "/".join(str(part) for part in error.path)
        return [RuleProblem(path, line, column, f"{where}: {error.message}")], ()
    return _fold_problems(root, data, path), checks


def _fold_problems(root: yaml.Node, data: dict, path: str) -> list[RuleProblem]:
    """A `fold:` section names only values the rule's checks compute."""
    from .fold import fold_of

    fold = fold_of(data)
    if fold is None:
        return []
    check = data.get("check")
    values = {name for one in (check if isinstance(check, list) else [check]) if isinstance(one, dict)
              for name in (one.get("values") or {})}
    problems = []
    for section, pairs in (("about", fold.about), ("keeps", fold.keeps)):
        for kind, name in pairs:
            if name not in values:
                node, _ = _node_at(root, ["fold", section, kind])
                problems.append(RuleProblem(path, node.start_mark.line + 1, node.start_mark.column + 1,
                                            f"fold/{section}/{kind}: '{name}' is not one of the check's values "
                                            f"({', '.join(sorted(values)) or 'none'})"))
    return problems


def validate_rule_file(path: Path) -> list[RuleProblem]:
    return examine_rule_file(path).problems


def examine_rule_file(path: Path) -> RuleText:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return RuleText([RuleProblem(str(path), 1, 1, f"cannot read the rule file: {error}")])
    return examine_rule_text(text, str(path), path.stem)
