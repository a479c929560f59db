"""The rules' checks sorted once per rulebook (or selection of it) into a dispatch table keyed
by (verb, DDI), so an event costs only the checks that can match it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..reading.signatures import signatures
from .checks import Check, EndCheck, Match
from .scope import Scope

if TYPE_CHECKING:  # the rulebook makes the table: at run time this module does not need it
    from .rulebook import Rule

__all__ = ["Dispatch", "Entry", "Needs", "Step"]


Entry = tuple["Rule", Check]
Needs = tuple[frozenset[str], frozenset[str], tuple[str, ...]]  # facts, arguments, lists of effects
Step = tuple[str, "Needs | None", Callable[[Scope], "Match | None"], "Rule", Check]


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
