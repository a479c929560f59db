"""Baselines: the findings a team has accepted for now, by fingerprint, so CI reports only new ones.

`dmalint check --write-baseline FILE` records every current finding; `--baseline FILE` hides
those (they move to the report's `suppressed` list, with the baseline as the reason) and lists
the entries no finding matched any more, so they can be pruned (`--prune-baseline`). A
fingerprint is made of the rule, the trace's path as given and the identity of the objects
involved, never the line number: inserting lines above a finding does not make it new.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..findings import Finding

__all__ = ["Baseline", "BaselineEntry"]

VERSION = 1


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One accepted finding: its fingerprint, and enough to recognise it by eye."""

    fingerprint: str
    code: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Baseline:
    """The entries of a baseline file, by fingerprint."""

    source: str
    entries: dict[str, BaselineEntry]

    @property
    def justification(self) -> str:
        return f"accepted in baseline {self.source}"

    def stale(self, seen: set[str], paths: set[str]) -> list[BaselineEntry]:
        """Entries for traces this run checked whose finding no longer occurs."""
        return sorted((entry for fp, entry in self.entries.items() if fp not in seen and entry.path in paths),
                      key=lambda entry: (entry.path, entry.code, entry.fingerprint))

    @classmethod
    def read(cls, path: Path) -> Baseline:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--baseline {path}: no such file (make one with --write-baseline {path})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--baseline {path}: cannot read it: {error}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}:{error.lineno}:{error.colno}: not a dmalint baseline: {error.msg}") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("findings"), list):
            raise UsageError(f"{path}: not a dmalint baseline (version {VERSION} with a list of findings)")
        entries: dict[str, BaselineEntry] = {}
        for index, item in enumerate(data["findings"]):
            try:
                entry = BaselineEntry(str(item["fingerprint"]), str(item["code"]), str(item["path"]), str(item.get("message", "")))
            except (KeyError, TypeError):
                raise UsageError(f"{path}: findings[{index}] lacks fingerprint, code or path") from None
            entries[entry.fingerprint] = entry
        return cls(str(path), entries)

    @staticmethod
    def write(path: Path, entries: Iterable[BaselineEntry | Finding]) -> int:
        """Write a baseline atomically; returns how many entries it holds."""
        rows = []
        for item in entries:
            if isinstance(item, Finding):
                item = BaselineEntry(item.fingerprint, item.code, item.location.path, item.message)
            rows.append({"fingerprint": item.fingerprint, "code": item.code, "path": item.path, "message": item.message})
        rows.sort(key=lambda row: (row["path"], row["code"], row["fingerprint"]))
        text = json.dumps({"version": VERSION, "tool": "dmalint", "findings": rows}, indent=2) + "\n"
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, path)
        except OSError as error:
            raise UsageError(f"cannot write the baseline {path}: {error.strerror}") from None
        return len(rows)
