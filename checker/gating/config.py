"""Configuration: `[tool.dmalint]` in pyproject.toml, or a `dmalint.toml`, found from the
current directory upwards (the nearest wins; dmalint.toml before pyproject.toml in one
directory). Command-line options override it.

Keys: `select`, `ignore` (lists of codes, names or families), `severity` (a table: code ->
error | warning | note), `fail-on` (error | warning | note | never), `rules` (extra rule
directories, relative to the file), `baseline` (a baseline file, relative to the file),
`fold` (true | false: fold consequences under their root finding; true by default).
An unknown key, or a value of the wrong kind, is an error naming the file, line and key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["Config", "find_config", "load_config"]

FAIL_ON = ("error", "warning", "note", "never")
SEVERITIES = ("error", "warning", "note")
_KEYS = {"select", "ignore", "severity", "fail-on", "rules", "baseline", "fold"}


@dataclass(frozen=True, slots=True)
class Config:
    """What a configuration file says (empty when there is none); `path` is where it was read."""

    path: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    rules: tuple[Path, ...] = ()
    baseline: Path | None = None
    fold: bool = True


def find_config(start: Path) -> Path | None:
    """The nearest dmalint.toml, or pyproject.toml with a [tool.dmalint] table, from `start` up."""
    for directory in (start, *start.parents):
        candidate = directory / "dmalint.toml"
        if candidate.is_file():
            return candidate
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and re.search(r"^\s*\[tool\.dmalint[\].]", _read(candidate), re.MULTILINE):
            return candidate
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the configuration: {error}") from None


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from None
    pyproject = path.name == "pyproject.toml"
    table = data.get("tool", {}).get("dmalint", {}) if pyproject else data
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.dmalint] must be a table")
    where = _Locator(path, text, "tool.dmalint" if pyproject else None)
    for key in table:
        if key not in _KEYS:
            raise UsageError(f"{where(key)}: unknown key '{key}' (keys: {', '.join(sorted(_KEYS))})")
    base = path.parent
    severity = _table_of_strings(table.get("severity", {}), "severity", where)
    for code, level in severity.items():
        if level not in SEVERITIES:
            raise UsageError(f"{where(code)}: severity.{code} must be one of {', '.join(SEVERITIES)}, not '{level}'")
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"{where('fail-on')}: fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise UsageError(f"{where('baseline')}: baseline must be a file name")
    fold = table.get("fold", True)
    if not isinstance(fold, bool):
        raise UsageError(f"{where('fold')}: fold must be true or false, not {fold!r}")
    select = table.get("select")
    return Config(
        path=path,
        select=None if select is None else _strings(select, "select", where),
        ignore=_strings(table.get("ignore", []), "ignore", where),
        severity={code.upper(): level for code, level in severity.items()},
        fail_on=fail_on,
        rules=tuple(base / directory for directory in _strings(table.get("rules", []), "rules", where)),
        baseline=None if baseline is None else base / baseline,
        fold=fold,
    )


def _strings(value: Any, key: str, where: _Locator) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"{where(key)}: {key} must be a list of strings")
    return tuple(item.strip() for item in value)


def _table_of_strings(value: Any, key: str, where: _Locator) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{where(key)}: {key} must be a table of CODE = \"level\"")
    return dict(value)


class _Locator:
    """`file:line` of a key (tomllib keeps no positions: find the key's line in the text)."""

    def __init__(self, path: Path, text: str, table: str | None) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.table = table

    def __call__(self, key: str) -> str:
        inside = self.table is None
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[([^\]]+)\]", line)
            if header:
                name = header.group(1).strip()
                inside = self.table is None or name == self.table or name.startswith(self.table + ".")
                continue
            if inside and pattern.match(line):
                return f"{self.path}:{number}"
        return str(self.path)
