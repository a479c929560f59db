"""Findings: what the rules say about a trace, as frozen values that reporters render."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model.location import SourceLocation

__all__ = ["Finding", "Related", "Root", "Severity", "Suppressed", "fingerprint"]


class Severity(enum.StrEnum):
    """How bad a finding is: `error` breaks a DDI contract, `warning` is likely wrong, `note` advises."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "note": 1}[self.value]


@dataclass(frozen=True, slots=True)
class Related:
    """An event that created the state a finding is about: "list built here"."""

    location: SourceLocation
    message: str
    cpu: int | None = None  # where the trace says (None when the event is too far back to know)
    irql: str | None = None


@dataclass(frozen=True, slots=True)
class Root:
    """The earlier error finding a consequence folds under: its code, where it is and its fingerprint."""

    code: str
    location: SourceLocation
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation, at the event that carries it, with the events that led to it.

    `facts` holds the numbers behind the message (addresses, sizes, IRQLs, the line text of
    an unparsed line) for reporters that show more than the message. `fingerprint` is stable
    across edits that move lines: it is made of the code, the path and the identity of the
    objects involved, never the line number.

    `consequence_of` is set when the finding judges only objects an earlier error finding
    already declared lost or broken (checker/engine/folding.py): it is shown under that root and not
    counted among the findings that gate a run.
    """

    code: str
    name: str
    severity: Severity
    message: str
    location: SourceLocation
    related: tuple[Related, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    cpu: int | None = None  # the CPU and IRQL of the event the finding is on
    irql: str | None = None
    consequence_of: Root | None = None

    @property
    def sort_key(self) -> tuple:
        loc = self.location
        return (loc.path, loc.line, loc.column, self.code)


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding the user chose not to see: `kind` is `inline` (a `# dmalint: ignore[...]`
    comment in the trace) or `baseline` (`--baseline FILE`); `justification` says why."""

    finding: Finding
    kind: str
    justification: str


def fingerprint(code: str, path: str, *identity: object) -> str:
    """A stable 16-hex-digit digest of a finding's code, path and object identity."""
    digest = hashlib.sha256("\x1f".join([code, path, *map(str, identity)]).encode("utf-8"))
    return digest.hexdigest()[:16]
