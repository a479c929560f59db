"""A rule's `check:` compiled into something the engine runs: `EventCheck`, `IrqlCheck`, `EndCheck`.

Three kinds cover the catalogue (docs/rules.md):

- `event`: on events of some verbs (and DDIs), a `where` condition over the event, the
  model's facts and queries, optionally `for` each element of a tuple (one finding at most);
- `irql`: a table of DDIs and the level each must be called at (`exactly` / `at_most`),
  rows optionally conditional (`when`: paged pool);
- `end`: after the last event, `each` object a model query still holds (`live_sgls`...)
  that satisfies `where` is a finding (leaks, lists never put, enters never left).

Everything is compiled when the rule loads; a rule that does not compile is a rule-file
error at its file, line and column, never a failure halfway through a trace.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from model.irql import Irql, irql_of
from model.location import SourceLocation
from model.machine import Machine
from model.values import Symbol

from .expression import Expression, ExpressionError, Scope, compile_expression, required_facts, truth

__all__ = ["VERBS", "Check", "CheckError", "EndCheck", "EventCheck", "IrqlCheck", "Match", "compile_checks"]

VERBS = ("call", "enter", "leave", "callback", "done", "mem", "dma", "mdl", "sgl", "lost")


@cache
def end_queries() -> frozenset[str]:
    """The queries a rule's `each:` may name: those the model's families declare (`QUERIES`)."""
    return Machine().query_names()


_IRQL_VALUES = ("ddi", "irql", "required", "relation")
_SAFE_INTEGER = 1 << 53


class CheckError(Exception):
    """A `check:` that does not compile: `path` leads to the YAML node, `column` is 1-based
    within an expression (None when the problem is the node itself)."""

    def __init__(self, path: Sequence[str | int], message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.path = list(path)
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class Match:
    """One finding's worth of answers: the values its message names, where its related
    events are, its identity for the fingerprint, and the message itself."""

    values: Mapping[str, Any]
    related: tuple[tuple[SourceLocation, str], ...]
    identity: tuple[str, ...]
    message: str


class _Template:
    """A `{name:spec}` message template; names must be among the rule's values."""

    def __init__(self, text: str, names: Sequence[str], path: Sequence[str | int]) -> None:
        self.parts: list[tuple[str, str | None, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:
            raise CheckError(path, f"bad message template: {error}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                if conversion or not field.isidentifier():
                    raise CheckError(path, f"template field '{{{field}}}' must be a plain name from values:")
                if field not in names:
                    raise CheckError(path, f"template names '{{{field}}}' but the check's values are: {', '.join(names) or 'none'}")
                if "{" in (spec or ""):
                    raise CheckError(path, f"template field '{{{field}}}' has a nested format")
            self.parts.append((literal, field, spec or ""))

    def render(self, values: Mapping[str, Any]) -> str:
        out = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is not None:
                out.append(_format(values.get(field), spec))
        return "".join(out)


def _format(value: Any, spec: str) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Irql):
        return str(value)  # the name, or the number of a level without one
    if isinstance(value, SourceLocation):
        return f"line {value.line}"
    if isinstance(value, int) and spec:
        try:
            return format(value, spec)
        except ValueError:
            return str(value)
    if isinstance(value, (tuple, list)):
        return ", ".join(_format(item, "") for item in value)
    return str(value)


def plain(value: Any) -> Any:
    """A value as a finding's facts keep it: JSON-ready, symbolic names kept. Numbers beyond
    2**53 (kernel addresses) become hex strings, which JSON readers cannot round off."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _SAFE_INTEGER:
        return hex(value)
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Irql):
        return str(value)
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, SourceLocation):
        return {"line": value.line, "column": value.column}
    if isinstance(value, (tuple, list)):
        return [plain(item) for item in value]
    return str(value)


class Check:
    """What every kind shares: values, related events, identity, `once`, `replaced_by`."""

    kind = ""

    def __init__(self, spec: Mapping[str, Any], message: str, implicit: Sequence[str] = (),
                 base: Sequence[str | int] = ("check",)) -> None:
        base = list(base)
        self.base = base
        self.values: dict[str, Expression] = {
            name: _compile(text, [*base, "values", name]) for name, text in (spec.get("values") or {}).items()
        }
        names = [*implicit, *self.values]
        if "message" in spec:  # one check of several may word its findings its own way
            self.message = _Template(spec["message"], names, [*base, "message"])
        else:
            self.message = _Template(message, names, ["message"])
        self.variants: list[tuple[Expression, _Template]] = []
        for index, entry in enumerate(spec.get("variants") or ()):
            self.variants.append((_compile(entry["when"], [*base, "variants", index, "when"]),
                                  _Template(entry["message"], names, [*base, "variants", index, "message"])))
        self.related: list[tuple[Expression, _Template]] = []
        for index, entry in enumerate(spec.get("related") or ()):
            self.related.append((_compile(entry["at"], [*base, "related", index, "at"]),
                                 _Template(entry["message"], names, [*base, "related", index, "message"])))
        self.identity = [_compile(text, [*base, "identity", index]) for index, text in enumerate(spec.get("identity") or ())]
        self.once = _compile(spec["once"], [*base, "once"]) if "once" in spec else None
        self.replaced_by = tuple(spec.get("replaced_by") or ())
        self.requires: frozenset[str] | None = None  # what an event needs one of to match (`required_facts`)

    def _match(self, scope: Scope, implicit: Mapping[str, Any] | None = None) -> Match:
        values = dict(implicit or {})
        for name, expression in self.values.items():
            values[name] = expression(scope)
        related = []
        for at, template in self.related:
            location = at(scope)
            if isinstance(location, SourceLocation):
                related.append((location, template.render(values)))
        identity = tuple(str(plain(expression(scope))) for expression in self.identity)
        message = next((template for when, template in self.variants if truth(when(scope))), self.message)
        return Match(values, tuple(related), identity, message.render(values))


class EventCheck(Check):
    """On events of its `verbs` (and `ddi` names): a finding where `where` holds, for the
    event or for the first element of `for` that satisfies it."""

    kind = "event"

    def __init__(self, spec: Mapping[str, Any], message: str, base: Sequence[str | int] = ("check",)) -> None:
        super().__init__(spec, message, implicit=(), base=base)
        self.verbs = tuple(spec["verbs"])
        self.ddis = tuple(spec.get("ddi") or ())
        self.iterate = _compile(spec["for"], [*self.base, "for"]) if "for" in spec else None
        self.where = _compile(spec["where"], [*self.base, "where"]) if "where" in spec else None
        self.requires = self._requirement(spec)

    @staticmethod
    def _requirement(spec: Mapping[str, Any]) -> frozenset[str] | None:
        """What the event must have, one of, for this check to find anything (None: no such
        requirement; see `required_facts`): what `for` iterates over must hold an item,
        `where` must hold."""
        needs = required_facts(str(spec["for"]), items=True) if "for" in spec else None
        if needs is None and "where" in spec:
            needs = required_facts(str(spec["where"]))
        return needs

    def run(self, scope: Scope) -> Match | None:
        if self.iterate is None:
            if self.where is not None and not truth(self.where(scope)):
                return None
            return self._match(scope)
        items = self.iterate(scope)
        if not isinstance(items, (tuple, list)):
            return None
        for item in items:
            inner = scope.with_item(item)
            if self.where is None or truth(self.where(inner)):
                return self._match(inner)
        return None


@dataclass(frozen=True, slots=True)
class _IrqlRow:
    ddis: frozenset[str]
    level: Irql
    exactly: bool
    when: Expression | None


class IrqlCheck(Check):
    """A table of DDIs and the level each is called at: `exactly` or `at_most`, rows
    optionally conditional (`when`). The first row an event breaks is the finding; an event
    whose level is unknown is not judged."""

    kind = "irql"

    def __init__(self, spec: Mapping[str, Any], message: str, base: Sequence[str | int] = ("check",)) -> None:
        super().__init__(spec, message, implicit=_IRQL_VALUES, base=base)
        self.verbs = tuple(spec.get("verbs") or ("call", "enter"))
        self.rows: list[_IrqlRow] = []
        for index, row in enumerate(spec["table"]):
            path = [*self.base, "table", index]
            bound = "exactly" if "exactly" in row else "at_most"
            level = irql_of(Symbol(str(row[bound])))
            if level is None:
                raise CheckError([*path, bound], f"'{row[bound]}' is not an IRQL (PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, DIRQL, HIGH_LEVEL)")
            when = _compile(row["when"], [*path, "when"]) if "when" in row else None
            self.rows.append(_IrqlRow(frozenset(row["ddi"]), level, bound == "exactly", when))
        self.ddis = tuple(sorted({ddi for row in self.rows for ddi in row.ddis}))

    def run(self, scope: Scope) -> Match | None:
        level = scope.effects.irql
        if level is None:
            return None
        name = scope.record.name
        for row in self.rows:
            if name not in row.ddis:
                continue
            broken = level.level != row.level.level if row.exactly else level.level > row.level.level
            if broken and (row.when is None or truth(row.when(scope))):
                implicit = {"ddi": name, "irql": level, "required": row.level,
                            "relation": "exactly" if row.exactly else "at most"}
                return self._match(scope, implicit)
        return None


class EndCheck(Check):
    """After the last event: each object `each` (a model query) still holds that satisfies
    `where` is a finding, located at the end of the trace, related to where it was made."""

    kind = "end"

    def __init__(self, spec: Mapping[str, Any], message: str, base: Sequence[str | int] = ("check",)) -> None:
        super().__init__(spec, message, implicit=(), base=base)
        query = spec["each"]
        if query not in end_queries():
            raise CheckError([*self.base, "each"], f"unknown query '{query}' (queries: {', '.join(sorted(end_queries()))})")
        self.query = query
        self.where = _compile(spec["where"], [*self.base, "where"]) if "where" in spec else None
        self.verbs = ()
        self.ddis = ()

    def run_end(self, scope: Scope) -> list[Match]:
        matches = []
        for item in scope.machine.query(self.query):
            inner = scope.with_item(item)
            if self.where is None or truth(self.where(inner)):
                matches.append(self._match(inner))
        return matches


_KINDS: dict[str, type[Check]] = {"event": EventCheck, "irql": IrqlCheck, "end": EndCheck}


def compile_checks(doc: Mapping[str, Any]) -> tuple[Check, ...]:
    """The compiled checks of a rule's YAML (already schema-valid): `check` is one check, or a
    list of them when a rule needs two kinds (an event half and an end-of-trace half)."""
    spec = doc.get("check")
    if spec is None:
        return ()
    message = str(doc["message"])
    if isinstance(spec, list):
        return tuple(_KINDS[one["kind"]](one, message, base=("check", index)) for index, one in enumerate(spec))
    return (_KINDS[spec["kind"]](spec, message),)


def _compile(text: Any, path: list[str | int]) -> Expression:
    try:
        return compile_expression(str(text))
    except ExpressionError as error:
        raise CheckError(path, error.message, error.column) from None


def identity_of_record(record: Any) -> tuple[str, ...]:
    """An event's identity for a fingerprint when a rule names none: what it did, not where."""
    parts = [type(record).__name__]
    for field in dataclasses.fields(record):
        if field.name not in ("location", "context"):
            parts.append(f"{field.name}={getattr(record, field.name)!r}")
    return tuple(parts)
