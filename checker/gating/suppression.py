"""Inline suppressions: `# dmalint: ignore[SGL003] reason` on the line before an event.

A suppression names rules by code, name or family (`ignore[SGL003,pool-double-free]`) and
hides their findings on the next event's line; the reason is kept as the justification. A
suppressed finding is not lost: it moves to `FileResult.suppressed` with its reason, and SARIF
shows it with a `suppressions` entry. A suppression that hides nothing, or names no rule, is
itself a finding (TRACE006, as ruff's unused-noqa and ESLint's unused-disable-directive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from model.events import Comment, Event
from model.location import SourceLocation

from ..findings import Finding, Suppressed, fingerprint
from ..language.rulebook import Rulebook

__all__ = ["InlineSuppressions", "UNUSED_SUPPRESSION"]

UNUSED_SUPPRESSION = "TRACE006"
_DIRECTIVE = re.compile(r"^\s*dmalint:\s*ignore\[(?P<codes>[^\]]*)\]\s*(?P<reason>.*?)\s*$")


@dataclass(slots=True)
class _Suppression:
    """One `ignore[...]` comment: what it names, where it stands, the event line it covers."""

    location: SourceLocation
    names: tuple[str, ...]
    codes: frozenset[str]
    unknown: tuple[str, ...]
    reason: str
    line: int | None = None  # the event it covers
    used: set[str] = field(default_factory=set)


class InlineSuppressions:
    """The suppressions of one trace, read as its records stream by."""

    def __init__(self, path: str, rulebook: Rulebook) -> None:
        self.path = path
        self.rulebook = rulebook
        self.pending: list[_Suppression] = []  # read from comments, waiting for the event they cover
        self._by_line: dict[int, list[_Suppression]] = {}
        self._all: list[_Suppression] = []

    def see(self, record: object) -> None:
        """Note a comment that suppresses, or bind the pending ones to the event that follows."""
        if isinstance(record, Comment):
            match = _DIRECTIVE.match(record.text)
            if match:
                self.pending.append(self._parse(record.location, match))
        elif isinstance(record, Event) and self.pending:
            line = record.location.line
            for suppression in self.pending:
                suppression.line = line
            self._by_line.setdefault(line, []).extend(self.pending)
            self.pending = []

    def _parse(self, location: SourceLocation, match: re.Match[str]) -> _Suppression:
        names = tuple(name.strip() for name in match.group("codes").split(",") if name.strip())
        codes: set[str] = set()
        unknown = []
        for name in names:
            found = self._resolve(name)
            if found:
                codes.update(found)
            else:
                unknown.append(name)
        suppression = _Suppression(location, names, frozenset(codes), tuple(unknown), match.group("reason"))
        self._all.append(suppression)
        return suppression

    def _resolve(self, name: str) -> set[str]:
        rule = self.rulebook.get(name)
        if rule is not None:
            return {rule.code}
        family = name.upper()
        return {rule.code for rule in self.rulebook if rule.code.rstrip("0123456789") == family}

    def split(self, findings: list[Finding]) -> tuple[list[Finding], list[Suppressed]]:
        """The findings still reported, and those a suppression on their line hides."""
        if not self._by_line or not findings:
            return findings, []
        kept: list[Finding] = []
        hidden: list[Suppressed] = []
        for finding in findings:
            suppression = next((s for s in self._by_line.get(finding.location.line, ()) if finding.code in s.codes), None)
            if suppression is None:
                kept.append(finding)
            else:
                suppression.used.add(finding.code)
                hidden.append(Suppressed(finding, "inline", suppression.reason))
        return kept, hidden

    def unused(self) -> list[Finding]:
        """TRACE006 findings: suppressions that hid nothing or name no rule (after the last event)."""
        rule = self.rulebook.get(UNUSED_SUPPRESSION)
        if rule is None:
            return []
        findings = []
        seen: dict[tuple[str, str], int] = {}
        for suppression in self._all:
            if suppression.unknown:
                problem = f"names no rule: {', '.join(suppression.unknown)} (dmalint rules lists the codes)"
            elif suppression.line is None:
                problem = "is followed by no event"
            elif not suppression.used:
                problem = f"hides nothing: no {', '.join(suppression.names)} finding on line {suppression.line}"
            else:
                continue
            text = f"ignore[{', '.join(suppression.names)}]"
            occurrence = seen.get((text, suppression.reason), 0)
            seen[(text, suppression.reason)] = occurrence + 1
            findings.append(Finding(
                code=rule.code, name=rule.name, severity=rule.severity,
                message=f"suppression {text} {problem}: remove it",
                location=suppression.location,
                facts={"suppression": text, "reason": suppression.reason},
                fingerprint=fingerprint(rule.code, self.path, text, suppression.reason, occurrence),
            ))
        return findings
