"""Checking one trace: records go through the model and the rules, findings come out.

The rules' checks are sorted once per rulebook into a dispatch table keyed by (verb, DDI),
so an event costs only the checks that can match it. Per-event checks run as records pass;
`finish` runs the end-of-trace checks (leaks, lists never put, enters never left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

from model.events import Event, Record
from model.irql import Irql
from model.location import SourceLocation
from model.machine import Effects, Machine

from .checks import Check, EndCheck, Match, identity_of_record, plain
from .errors import TraceSyntaxError
from .expression import Scope
from .findings import Finding, Related, fingerprint
from .rulebook import Rule, Rulebook
from .signatures import signatures

__all__ = ["ALWAYS_ON", "RECORDS_LOST", "SYNTAX_ERROR", "Dispatch", "FileCheck"]

SYNTAX_ERROR = "TRACE001"
RECORDS_LOST = "TRACE007"
# Rules no selection turns off: a trace with unparsed lines or lost records is never clean.
ALWAYS_ON = {SYNTAX_ERROR: "a trace with unparsed lines is never clean",
             RECORDS_LOST: "a trace with lost records is never clean"}
RECENT_EVENTS = 65_536  # at least this many of the last events: a finding's related events name their CPU and IRQL


Entry = tuple[Rule, Check]
Needs = tuple[frozenset[str], frozenset[str], tuple[str, ...]]  # facts, arguments, lists of effects
Step = tuple[str, "Needs | None", Callable[[Scope], "Match | None"], Rule, Check]


class Dispatch:
    """The checks of a rulebook (or a selection of it), sorted for lookup by (verb, DDI).

    With `guards` (the default), a check that needs one of some facts, arguments or
    non-empty lists of effects (`Check.requires`) runs only on events that have one; off,
    every check runs on every event of its verbs and DDIs (the tests compare both)."""

    guards = True

    def __init__(self, rules: Iterable[Rule], selection: frozenset[str] | None = None) -> None:
        self.by_ddi: dict[tuple[str, str], list[Entry]] = {}
        self.by_verb: dict[str, list[Entry]] = {}
        self.end: list[Entry] = []
        known: set[str] = set(signatures())
        for rule in rules:
            known.update(rule.doc.get("applies_to") or ())
            for check in rule.checks:
                known.update(getattr(check, "ddis", ()))
                if selection is not None and rule.code not in selection:
                    continue
                if isinstance(check, EndCheck):
                    self.end.append((rule, check))
                    continue
                ddis = getattr(check, "ddis", ())
                for verb in check.verbs:
                    if ddis:
                        for ddi in ddis:
                            self.by_ddi.setdefault((verb, ddi), []).append((rule, check))
                    else:
                        self.by_verb.setdefault(verb, []).append((rule, check))
        self.known_ddis = frozenset(known)
        self._cache: dict[tuple[str, str | None], tuple[Entry, ...]] = {}
        self._plans: dict[tuple[str, str | None], tuple[Step, ...]] = {}

    def plan_for(self, verb: str, name: str | None) -> tuple[Step, ...]:
        """`checks_for` as the engine runs it: (code, required facts, run, rule, check)."""
        key = (verb, name)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = tuple((rule.code, _needs(check.requires), check.run, rule, check)  # type: ignore[attr-defined]
                                            for rule, check in self.checks_for(verb, name))
        return plan

    def checks_for(self, verb: str, name: str | None) -> tuple[Entry, ...]:
        """The (rule, check) pairs an event of this verb and DDI can match, by code."""
        key = (verb, name)
        entries = self._cache.get(key)
        if entries is None:
            found = list(self.by_verb.get(verb, ()))
            if name is not None:
                found.extend(self.by_ddi.get((verb, name), ()))
            entries = self._cache[key] = tuple(sorted(found, key=lambda entry: entry[0].code))
        return entries

    def rules_for(self, verb: str, name: str | None) -> tuple[Rule, ...]:
        return tuple({rule.code: rule for rule, _ in self.checks_for(verb, name)}.values())


def _needs(requires: frozenset[str] | None) -> Needs | None:
    """A check's requirement (`required_facts`) as the engine tests it: (fact keys, argument
    names, names of the effects' lists)."""
    if requires is None:
        return None
    facts = frozenset(need for need in requires if ":" not in need)
    arguments = frozenset(need[4:] for need in requires if need.startswith("arg:"))
    lists = tuple(sorted(need[5:] for need in requires if need.startswith("list:")))
    if len(facts) + len(arguments) + len(lists) != len(requires):
        raise ValueError(f"a requirement the engine cannot test: {sorted(requires)}")
    return facts, arguments, lists


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
