"""Checking one trace: records go through the model and the rules, findings come out."""

from __future__ import annotations

from model.events import Record
from model.machine import Effects, Machine

from .errors import TraceSyntaxError
from .findings import Finding, fingerprint
from .rulebook import Rulebook

__all__ = ["FileCheck", "SYNTAX_ERROR"]

SYNTAX_ERROR = "TRACE001"


class FileCheck:
    """The state of checking one trace: the model's replay and the rules' findings so far."""

    def __init__(self, path: str, rulebook: Rulebook) -> None:
        self.path = path
        self.rulebook = rulebook
        self.machine = Machine()
        self.last: Effects | None = None
        self._unparsed_texts: dict[str, int] = {}

    def feed(self, record: Record) -> list[Finding]:
        """Apply one record to the model and return what the rules find in it."""
        self.last = self.machine.apply(record)
        return []

    def unparsed(self, error: TraceSyntaxError) -> Finding:
        """The TRACE001 finding for a line that does not parse."""
        rule = self.rulebook[SYNTAX_ERROR]
        text = error.text.strip()
        occurrence = self._unparsed_texts.get(text, 0)
        self._unparsed_texts[text] = occurrence + 1
        return Finding(
            code=rule.code,
            name=rule.name,
            severity=rule.severity,
            message=rule.message.format(problem=error.message),
            location=error.location,
            facts={"text": error.text, "expected": list(error.expected)},
            fingerprint=fingerprint(rule.code, self.path, text, occurrence),
        )

    def finish(self) -> list[Finding]:
        """End-of-trace findings (leaks, lists never put) once every record was fed."""
        return []
