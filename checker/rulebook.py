"""Rule metadata read from `rules/<family>/<name>.yaml`: codes, names, severities, docs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .checks import Check, CheckError, compile_checks
from .errors import ResourceError, RuleFileError
from .findings import Severity
from .resources import YAML_LOADER, rules_dir
from .rule_schema import RuleProblem, validate_rule_file

__all__ = ["Rule", "Rulebook", "builtin_rulebook", "rule_files", "validate_rule_directories"]

_REQUIRED = ("code", "name", "severity", "summary", "message")


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule's metadata. `doc` holds the rest of its YAML (why, contract, example, ...)."""

    code: str
    name: str
    severity: Severity
    summary: str
    message: str
    path: Path
    doc: Mapping[str, Any]
    checks: tuple[Check, ...] = ()

    @property
    def family(self) -> str:
        return self.path.parent.name


class Rulebook:
    """The rules of a run, by code."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = {rule.code: rule for rule in sorted(rules, key=lambda rule: rule.code)}
        self._dispatch: dict[frozenset[str] | None, Any] = {}

    def dispatch(self, selection: frozenset[str] | None = None) -> Any:
        """The selected rules' checks sorted by (verb, DDI) for the engine, made once."""
        table = self._dispatch.get(selection)
        if table is None:
            from .engine import Dispatch

            table = self._dispatch[selection] = Dispatch(self, selection)
        return table

    def __getitem__(self, code: str) -> Rule:
        return self.rules[code]

    def __iter__(self):
        return iter(self.rules.values())

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, key: str) -> Rule | None:
        """A rule by code (`SGL002`) or name (`sgl-double-put`)."""
        rule = self.rules.get(key.upper())
        return rule or next((r for r in self.rules.values() if r.name == key.lower()), None)

    @classmethod
    def load(cls, *directories: Path) -> Rulebook:
        """Every rule file of the directories (`<family>/<name>.yaml`), validated first: all the
        problems of all files are raised together, each at its file, line and column."""
        problems = validate_rule_directories(*directories)
        if problems:
            raise RuleFileError(problems)
        return cls([_load_rule(path) for directory in directories for path in rule_files(directory)])


def rule_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*.yaml"))


def validate_rule_directories(*directories: Path) -> list[RuleProblem]:
    """The problems of every rule file, and codes or names used twice (naming both files)."""
    problems: list[RuleProblem] = []
    codes: dict[str, Path] = {}
    names: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            problems.append(RuleProblem(str(directory), 1, 1, "not a directory of rules"))
            continue
        for path in rule_files(directory):
            found = validate_rule_file(path)
            problems.extend(found)
            if found:
                continue
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
            for key, seen, what in ((data["code"], codes, "code"), (data["name"], names, "name")):
                if key in seen:
                    problems.append(RuleProblem(str(path), 1, 1, f"{what} {key} is already used by {seen[key]}"))
                seen[key] = path
    return problems

def _load_rule(path: Path) -> Rule:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ResourceError(f"{path}: cannot read the rule: {error}") from None
    if not isinstance(data, dict):
        raise ResourceError(f"{path}: a rule file holds a mapping")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ResourceError(f"{path}: the rule lacks {', '.join(missing)}")
    if data["name"] != path.stem:
        raise ResourceError(f"{path}: the rule's name {data['name']!r} differs from its file name")
    try:
        severity = Severity(data["severity"])
    except ValueError:
        raise ResourceError(f"{path}: severity must be error, warning or note") from None
    try:
        checks = compile_checks(data)
    except CheckError as error:
        raise ResourceError(f"{path}: {'/'.join(map(str, error.path))}: {error.message}") from None
    return Rule(
        checks=checks,
        code=str(data["code"]),
        name=str(data["name"]),
        severity=severity,
        summary=str(data["summary"]),
        message=str(data["message"]),
        path=path,
        doc=data,
    )


@cache
def builtin_rulebook() -> Rulebook:
    """The rules dmalint ships."""
    return Rulebook.load(rules_dir())
