"""Rule metadata read from `rules/<family>/<name>.yaml`: codes, names, severities, docs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import RuleFileError
from ..findings import Severity
from ..resources import rules_dir
from .checks import Check
from .dispatch import Dispatch
from .fold import Fold, fold_of
from .rule_schema import RuleProblem, examine_rule_file

__all__ = ["Rule", "Rulebook", "builtin_rulebook", "rule_files", "validate_rule_directories"]



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
    fold: Fold | None = None  # what its findings are about, for folding consequences (checker/engine/folding.py)

    @property
    def family(self) -> str:
        return self.path.parent.name


class Rulebook:
    """The rules of a run, by code."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = {rule.code: rule for rule in sorted(rules, key=lambda rule: rule.code)}
        self._dispatch: dict[frozenset[str] | None, Dispatch] = {}
        self.folds = {rule.code: rule.fold for rule in self.rules.values() if rule.fold is not None}

    def dispatch(self, selection: frozenset[str] | None = None) -> Dispatch:
        """The selected rules' checks sorted by (verb, DDI) for the engine, made once."""
        table = self._dispatch.get(selection)
        if table is None:
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
        problems, rules = _read_rule_directories(*directories)
        if problems:
            raise RuleFileError(problems)
        return cls(rules)


def rule_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*.yaml"))


def validate_rule_directories(*directories: Path) -> list[RuleProblem]:
    """The problems of every rule file, and codes or names used twice (naming both files)."""
    return _read_rule_directories(*directories)[0]


def _read_rule_directories(*directories: Path) -> tuple[list[RuleProblem], list[Rule]]:
    """Every rule file read, validated and compiled once: the problems of all of them, and
    the rules of those without any."""
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    codes: dict[str, Path] = {}
    names: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            problems.append(RuleProblem(str(directory), 1, 1, "not a directory of rules"))
            continue
        for path in rule_files(directory):
            text = examine_rule_file(path)
            problems.extend(text.problems)
            if text.problems or text.data is None:
                continue
            data = text.data
            for key, seen, what in ((data["code"], codes, "code"), (data["name"], names, "name")):
                if key in seen:
                    problems.append(RuleProblem(str(path), 1, 1, f"{what} {key} is already used by {seen[key]}"))
                seen[key] = path
            rules.append(_rule(path, data, text.checks))
    return problems, rules


def _rule(path: Path, data: dict, checks: tuple[Check, ...]) -> Rule:
    """A rule from its validated data (rules/schema.json has its fields and their values)."""
    return Rule(
        checks=checks,
        code=str(data["code"]),
        name=str(data["name"]),
        severity=Severity(data["severity"]),
        summary=str(data["summary"]),
        message=str(data["message"]),
        path=path,
        doc=data,
        fold=fold_of(data),
    )


@cache
def builtin_rulebook() -> Rulebook:
    """The rules dmalint ships."""
    return Rulebook.load(rules_dir())
