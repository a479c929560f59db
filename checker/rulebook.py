"""Rule metadata read from `rules/<family>/<name>.yaml`: codes, names, severities, docs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ResourceError
from .findings import Severity
from .resources import rules_dir

__all__ = ["Rule", "Rulebook", "builtin_rulebook"]

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

    @property
    def family(self) -> str:
        return self.path.parent.name


class Rulebook:
    """The rules of a run, by code."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = {rule.code: rule for rule in sorted(rules, key=lambda rule: rule.code)}

    def __getitem__(self, code: str) -> Rule:
        return self.rules[code]

    def __iter__(self):
        return iter(self.rules.values())

    def __len__(self) -> int:
        return len(self.rules)

    @classmethod
    def load(cls, directory: Path) -> Rulebook:
        rules: list[Rule] = []
        for path in sorted(directory.glob("*/*.yaml")):
            rules.append(_load_rule(path))
        seen: dict[str, Path] = {}
        for rule in rules:
            if rule.code in seen:
                raise ResourceError(f"{rule.path}: code {rule.code} is already used by {seen[rule.code]}")
            seen[rule.code] = rule.path
        return cls(rules)


def _load_rule(path: Path) -> Rule:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    return Rule(
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
