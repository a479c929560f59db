"""Folding consequences under their root finding, as a compiler reports the first error and
not the cascade it causes.

A rule says in its `fold:` section (read by checker/language/fold.py) (docs/rules.md, "Consequences") which objects its findings
judge (`about`), and whether a finding of it declares them lost or broken (`declares`), with
what they keep alive (`keeps`). Objects are named by kind and the line of the record that
made them (a list by its build, a block by its allocation), the facts the finding already
holds, so an address the driver reuses is a new object.

A finding is a consequence when every object it is about was declared lost or broken by an
earlier error finding (or by one found at the same event): it then carries `consequence_of`,
the root it folds under (the first root, when the declaring finding was itself a
consequence). Consequences are kept and reported under their root, but they do not count
towards the exit status or the totals.

One `Folder` a trace; findings come to it in the order the engine finds them, so a report
streams as before: a root is always found before its consequences, or with them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from ..findings import Finding, Root, Severity
from ..language.fold import Fold

__all__ = ["Folder"]

def _lines(value: Any) -> Iterator[int]:
    """The lines a fact names: one line, `12, 40` (the rules' `lines(...)`), or none."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, str):
        for part in value.split(","):
            if part.strip().isdigit():
                yield int(part)


def _objects(pairs: tuple[tuple[str, str], ...], facts: Mapping[str, Any]) -> set[tuple[str, int]]:
    return {(kind, line) for kind, name in pairs for line in _lines(facts.get(name))}


class Folder:
    """The objects of one trace that error findings declared lost or broken, and by which root."""

    def __init__(self, folds: Mapping[str, Fold]) -> None:
        self.folds = folds  # by rule code: only the rules with a fold section
        self.lost: dict[tuple[str, int], Root] = {}

    def fold(self, findings: list[Finding]) -> list[Finding]:
        """The findings of one event (or of the end of the trace), each a consequence or not.
        Those that declare go first, so a leak found at the end folds under the list found
        never put at the same time that keeps it."""
        if not self.folds:
            return findings
        folded = list(findings)
        order = sorted(range(len(findings)), key=lambda i: self._declares(findings[i]) is None)
        for index in order:
            folded[index] = self._one(findings[index])
        return folded

    def _declares(self, finding: Finding) -> Fold | None:
        fold = self.folds.get(finding.code)
        if fold is None or fold.declares is None or finding.severity is not Severity.ERROR:
            return None
        return fold

    def _one(self, finding: Finding) -> Finding:
        fold = self.folds.get(finding.code)
        if fold is None:
            return finding
        about = _objects(fold.about, finding.facts)
        root = None
        if about and about <= self.lost.keys():
            root = min((self.lost[o] for o in about), key=lambda r: (r.location.line, r.location.column, r.code))
            finding = replace(finding, consequence_of=root)
        if self._declares(finding) is not None:
            mine = root or Root(finding.code, finding.location, finding.fingerprint)
            for key in about | _objects(fold.keeps, finding.facts):
                self.lost.setdefault(key, mine)
        return finding
