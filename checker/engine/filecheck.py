"""Checking one trace: records go through the model and the rules, findings come out.

The rulebook's dispatch table (checker/language/dispatch.py) gives the checks an event can
match, so an event costs only those. Per-event checks run as records pass; `finish` runs the
end-of-trace checks (leaks, lists never put, enters never left).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from model.events import Event, Record
from model.irql import Irql
from model.location import SourceLocation
from model.machine import Effects, Machine

from ..errors import TraceSyntaxError
from ..findings import Finding, Related, fingerprint
from ..language.checks import Check, Match, identity_of_record, plain
from ..language.codes import SYNTAX_ERROR
from ..language.rulebook import Rule, Rulebook
from ..language.scope import Scope

__all__ = ["RECENT_EVENTS", "FileCheck"]

RECENT_EVENTS = 65_536  # at least this many of the last events: a finding's related events name their CPU and IRQL


def _has_one_of(arguments: frozenset[str], lists: tuple[str, ...], record: Event, effects: Effects) -> bool:
    """Has the event one of these arguments, or one of these lists of its effects non-empty?"""
    if arguments:
        if record.verb == "leave":
            return True  # `arg.X` at a leave may be its enter's argument: no telling here
        for argument in getattr(record, "arguments", ()):
            if argument.name in arguments:
                return True
    for name in lists:
        if getattr(effects, name):
            return True
    return False


class FileCheck:
    """The state of checking one trace: the model's replay and the rules' findings so far."""

    def __init__(self, path: str, rulebook: Rulebook, selection: frozenset[str] | None = None,
                 observer: Callable[[Effects, Machine], None] | None = None) -> None:
        self.path = path
        self.observer = observer  # sees every record's Effects (the HTML report's timeline)
        self.rulebook = rulebook
        self.dispatch = rulebook.dispatch(selection)
        self.machine = Machine()
        self.last: Effects | None = None
        self.last_location: SourceLocation | None = None
        self._occurrences: dict[tuple, int] = {}
        self._recent: dict[int, tuple[int | None, Irql | None]] = {}  # line -> (cpu, IRQL) of the last events, bounded
        self._pairs: dict[tuple[int | None, Irql | None], tuple[int | None, Irql | None]] = {}
        self._once: dict[str, set] = {}
        self._known_ddis = set(self.dispatch.known_ddis) | set(self.machine.handled_ddis())

    def knows_ddi(self, name: str) -> bool:
        """Does a rule, the model or the parameter table know this DDI? (TRACE004)"""
        return name in self._known_ddis

    def feed(self, record: Record) -> list[Finding]:
        """Apply one record to the model and return what the rules find in it."""
        effects = self.last = self.machine.apply(record)
        if self.observer is not None:
            self.observer(effects, self.machine)
        if not isinstance(record, Event):
            return []
        location = self.last_location = record.location
        recent = self._recent
        pair = (effects.cpu, effects.irql)
        recent[location.line] = self._pairs.setdefault(pair, pair)  # a few distinct pairs, shared
        if len(recent) > 2 * RECENT_EVENTS:  # keep the newest half: amortised O(1) an event
            self._recent = dict(islice(recent.items(), RECENT_EVENTS, None))
        plan = self.dispatch.plan_for(record.verb, getattr(record, "name", None))
        if not plan:
            return []
        scope = None
        found: dict[str, tuple[Finding, Check]] | None = None
        facts = effects.facts
        guards = self.dispatch.guards
        for code, requires, run, rule, check in plan:
            if requires is not None and guards:  # the event must have one of what the check needs
                needed_facts, needed_arguments, needed_lists = requires
                for name, _ in facts:
                    if name in needed_facts:
                        break
                else:
                    if not _has_one_of(needed_arguments, needed_lists, record, effects):
                        continue
            if found is not None and code in found:
                continue  # one finding per rule per event
            if scope is None:
                scope = Scope(effects, self.machine, self)
            match = run(scope)
            if match is None or not self._first_time(rule, check, scope):
                continue
            if found is None:
                found = {}
            found[code] = (self._finding(rule, match, location, identity_of_record(record)), check)
        if found is None:
            return []
        if len(found) > 1:
            return [finding for finding, check in found.values() if not found.keys() & set(check.replaced_by)]
        return [finding for finding, _ in found.values()]

    def _first_time(self, rule: Rule, check: Check, scope: Scope) -> bool:
        if check.once is None:
            return True
        seen = self._once.setdefault(rule.code, set())
        key = repr(plain(check.once(scope)))
        if key in seen:
            return False
        seen.add(key)
        return True

    def _finding(self, rule: Rule, match: Match, location: SourceLocation, default_identity: tuple) -> Finding:
        identity = match.identity or default_identity
        recent = self._at
        occurrence_key = (rule.code, identity)
        occurrence = self._occurrences.get(occurrence_key, 0)
        self._occurrences[occurrence_key] = occurrence + 1
        return Finding(
            code=rule.code,
            name=rule.name,
            severity=rule.severity,
            message=match.message,
            location=location,
            related=tuple(Related(at, text, *recent(at.line)) for at, text in match.related),
            facts={name: plain(value) for name, value in match.values.items()},
            fingerprint=fingerprint(rule.code, self.path, *identity, occurrence),
            cpu=recent(location.line)[0],
            irql=recent(location.line)[1],
        )

    def _at(self, line: int) -> tuple[int | None, str | None]:
        """The CPU and IRQL of the event at `line`, if it is among the last events seen."""
        cpu, irql = self._recent.get(line, (None, None))
        return cpu, None if irql is None else str(irql)

    def unparsed(self, error: TraceSyntaxError) -> Finding:
        """The TRACE001 finding for a line that does not parse."""
        rule = self.rulebook[SYNTAX_ERROR]
        match = Match({"text": error.text, "expected": list(error.expected)}, (), (error.text.strip(),),
                      rule.message.format(problem=error.message))
        return self._finding(rule, match, error.location, ())

    def finish(self) -> list[Finding]:
        """End-of-trace findings (leaks, lists never put, enters never left), located at the
        trace's last event and related to where each object was made."""
        if self.last_location is None:
            return []
        end = SourceLocation(self.path, self.last_location.line, 1, 1)
        scope = Scope(self.last, self.machine, self)
        findings = []
        for rule, check in self.dispatch.end:
            for match in check.run_end(scope):  # type: ignore[attr-defined]
                findings.append(self._finding(rule, match, end, ("end",)))
        return findings
