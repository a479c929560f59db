"""A fast path for the common trace lines: caches and a few compiled regexes instead of Lark,
same records.

The grammar (`grammar/dmatrace.lark`) stays the one definition of the format. This module
recognizes only a strict, canonical subset of it: events (optional tracefmt prefix, context
fields in the writer's order t, seq, cpu, tid, irql, then a verb), comment lines and blank
lines, with values that are numbers, TRUE/FALSE/NULL, names, strings without escapes, and
structures and lists of those one level deep. For such a line `FastPath.parse` returns exactly
the record `RecordTransformer` builds from Lark's parse (same classes, field values, argument
names, location and warnings). For anything else (directives, deeper values, escapes, unusual
spacing, fields out of order, any value the format forbids, any line that would not parse) it
returns `FALLBACK` and the caller asks Lark, so every error message is still Lark's. It never
raises and never reports an error.

Why the regexes are the grammar's tokens: every token below is followed by a delimiter that
cannot continue it (white space, ',', ')', ']', '}', ':', '#' or the end of the line), so each
token is the longest match, as Lark's lexer takes it; keywords appear only where the
contextual lexer accepts no NAME; HEX is tried before DECIMAL as its priority says.
tests/test_fastpath.py proves the equality on every shipped line and on generated and
randomly edited ones.

Speed: one regex (`_LINE`) cuts a line of the two common shapes, `t=SECONDS FIELDS VERB...`
and tracefmt's `[CPU]PID.TID::TIMESTAMP [PROVIDER] FIELDS VERB...`, in three: the part that
changes on every line of a capture (the t= value or the time stamp), checked whole there; the
context fields up to the value of `irql=` (a "prefix"); and the text from the verb on (a
"body"). Prefix and body are looked up among those the regexes have read before (`_parse`
remembers them). The event part of the regexes, `_HEAD`, reads a line one way only (every field
starts with its own literal and ends at white space), so a prefix read once is read the same on
every line that has it, whatever its time, and a body's record depends on its text only. So
the cut need not be right, only the parts found: a cut in the wrong place finds nothing, and
the line takes the regexes. A body not seen before is cut further: `Name(` to the first ')'
and the tail after it, the arguments at ", " (each argument's text is kept), `read|write
ADDRESS` and the length after it, mdl's and sgl's lists at ", " (numbers, elements and lists of
page frames are kept); each piece is checked whole or found among those checked before, else
the strict regexes decide. All caches are bounded (a full one starts again; the bodies' cache
keeps the generation before too) and hold frozen values only, so sharing them between records
is safe and memory stays flat. Repeated strings (DDI, argument and field names, symbols) are
interned.

Records are built without their dataclass `__init__` (which sets each field through
`object.__setattr__`): the generated constructors below set every slot directly, from the
dataclass's own field list, checked at import; if a record class changes shape the fast path
turns itself off (`AVAILABLE` is False, and a test says so) rather than build a wrong record.
An event of the two common shapes is built by one generated function: its location, its
context and its record.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import MISSING, fields
from functools import partial
from typing import Any

from model.events import (
    NO_CONTEXT,
    Argument,
    Call,
    Callback,
    Comment,
    Context,
    DmaAccess,
    Done,
    Enter,
    Leave,
    MdlRecord,
    MemAccess,
    SgElement,
    SglRecord,
)
from model.irql import Irql
from model.location import SourceLocation
from model.values import NULL, Struct, Symbol

from .signatures import Signature
from .transform import _int, unknown_parameter

__all__ = ["AVAILABLE", "FALLBACK", "FastPath"]

_intern = sys.intern


class _Fallback:
    """The fast path's answer for a line it is not sure of: ask Lark."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FALLBACK"


FALLBACK: Any = _Fallback()

# --- record constructors ----------------------------------------------------------------

# The fields each record class must have, in order: the constructors take them positionally.
_SHAPES: dict[type, tuple[str, ...]] = {
    SourceLocation: ("path", "line", "column", "end_column"),
    Context: ("t", "seq", "cpu", "tid", "irql", "pid", "timestamp", "provider"),
    Argument: ("name", "value", "out", "positional"),
    Call: ("location", "context", "name", "arguments", "result"),
    Enter: ("location", "context", "name", "arguments"),
    Callback: ("location", "context", "name", "arguments"),
    Leave: ("location", "context", "name", "arguments", "result"),
    Done: ("location", "context", "name", "result"),
    MemAccess: ("location", "context", "access", "address", "length"),
    DmaAccess: ("location", "context", "access", "address", "length", "fill", "data"),
    MdlRecord: ("location", "context", "address", "va", "offset", "byte_count", "pfns", "next"),
    SglRecord: ("location", "context", "address", "elements"),
    SgElement: ("address", "length"),
    Comment: ("location", "text"),
}
_EVENTS = (Call, Enter, Callback, Leave, Done, MemAccess, DmaAccess, MdlRecord, SglRecord)
# The context fields a prefix gives, in the order its cache entries hold them.
_PREFIX_FIELDS = ("seq", "cpu", "tid", "irql", "pid", "provider")


def _check_shape(cls: type) -> None:
    names = tuple(f.name for f in fields(cls))
    if names != _SHAPES[cls] or hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} has fields {names}, the fast path expects {_SHAPES[cls]}")
    for f in fields(cls):
        if f.default_factory is not MISSING:  # type: ignore[misc]
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory")


def _twin(cls: type) -> type | None:
    """A class with the same base and slots as `cls` but plain attribute setting, or None.

    A frozen dataclass's slots can be set only through their member descriptors, a call each.
    Cheaper: make an instance of the twin (object's own __init__: a call to the class costs
    less than object.__new__), fill it with plain attribute stores, then make it the real class
    by `__class__` assignment, which Python allows exactly when the two layouts are the same
    (same base, same slots)."""
    plain = {name: getattr(object, name) for name in ("__init__", "__setattr__", "__delattr__")}
    try:
        twin = type(f"_{cls.__name__}Fill", (cls.__base__,), {"__slots__": cls.__slots__, **plain})
        twin().__class__ = cls
    except TypeError:
        return None
    return twin


_NAMESPACE: dict[str, Any] = {"_new": object.__new__}
_TWINS: dict[type, type | None] = {}


def _emit(target: str, cls: type, values: list[str]) -> list[str]:
    """Lines of generated code that build an instance of `cls` in the local `target`, its
    fields set to the expressions `values`, in `_SHAPES` order."""
    kind = cls.__name__
    if cls not in _TWINS:
        _check_shape(cls)
        _TWINS[cls] = _twin(cls)
    _NAMESPACE[f"_{kind}"] = cls
    twin = _TWINS[cls]
    if twin is not None:
        _NAMESPACE[f"_{kind}Fill"] = twin
        stores = [f"    {target}.{name} = {value}" for name, value in zip(_SHAPES[cls], values, strict=True)]
        return [f"    {target} = _{kind}Fill()", *stores, f"    {target}.__class__ = _{kind}"]
    lines = [f"    {target} = _new(_{kind})"]
    for name, value in zip(_SHAPES[cls], values, strict=True):
        _NAMESPACE[f"_set_{kind}_{name}"] = getattr(cls, name).__set__  # the slot's member descriptor
        lines.append(f"    _set_{kind}_{name}({target}, {value})")
    return lines


def _compile(name: str, params: list[str], body: list[str]) -> Any:
    """A function made from generated lines; its name shows in profiles."""
    source = "\n".join([f"def {name}({', '.join(params)}):", *body])
    exec(compile(source, f"<fastpath {name}>", "exec"), _NAMESPACE)  # noqa: S102 - code from the dataclass fields
    return _NAMESPACE[name]


def _constructor(cls: type) -> Any:
    """make_X(every field of X, positionally): an X, as its dataclass `__init__` would build it."""
    names = list(_SHAPES[cls])
    return _compile(f"make_{cls.__name__}", names, [*_emit("self", cls, names), "    return self"])


def _builder(cls: type) -> Any:
    """build_X(path, line, end_column, t, timestamp, prefix, values): an event X at column 1,
    its location, context and record in one call. `prefix` holds the context fields in
    `_PREFIX_FIELDS` order; `values` the event's own fields (after location and context)."""
    own = [f"_{name}" for name in _SHAPES[cls][2:]]
    context = ["t", "seq", "cpu", "tid", "irql", "pid", "timestamp", "provider"]
    body = [
        f"    {', '.join(_PREFIX_FIELDS)}, = prefix",
        f"    {', '.join(own)}, = values",
        *_emit("location", SourceLocation, ["path", "line", "1", "end_column"]),
        *_emit("context", Context, context),
        *_emit("record", cls, ["location", "context", *own]),
        "    return record",
    ]
    return _compile(f"build_{cls.__name__}", ["path", "line", "end_column", "t", "timestamp", "prefix", "values"], body)


def _proven(makes: dict[type, Any], builds: dict[type, Any]) -> None:
    """Raise TypeError unless the generated code gives instances with every field set."""
    for cls, make in makes.items():
        sample = make(*range(len(_SHAPES[cls])))
        if type(sample) is not cls or [getattr(sample, name) for name in _SHAPES[cls]] != list(range(len(_SHAPES[cls]))):
            raise TypeError(f"make_{cls.__name__} does not build a {cls.__name__}")
    for cls, build in builds.items():
        own = tuple(range(10, 10 + len(_SHAPES[cls]) - 2))
        record = build("p", 2, 3, 4.0, "5", (6, 7, 8, 9, 10, 11), own)
        context = (4.0, 6, 7, 8, 9, 10, "5", 11)
        if (
            type(record) is not cls
            or type(record.location) is not SourceLocation
            or type(record.context) is not Context
            or tuple(getattr(record.location, name) for name in _SHAPES[SourceLocation]) != ("p", 2, 1, 3)
            or tuple(getattr(record.context, name) for name in _SHAPES[Context]) != context
            or tuple(getattr(record, name) for name in _SHAPES[cls][2:]) != own
        ):
            raise TypeError(f"build_{cls.__name__} does not build a {cls.__name__}")


try:
    _make = {cls: _constructor(cls) for cls in _SHAPES}
    _build = {cls: _builder(cls) for cls in _EVENTS}
    _proven(_make, _build)
    AVAILABLE = True
except (TypeError, AttributeError):  # a record class changed: keep to Lark until this file follows
    _make = {}
    _build = {}
    AVAILABLE = False

if AVAILABLE:
    _location = _make[SourceLocation]
    _context = _make[Context]
    _comment = _make[Comment]
    _make_argument = _make[Argument]
    _make_sg_element = _make[SgElement]
    _build_call = _build[Call]
    _build_enter = _build[Enter]
    _build_callback = _build[Callback]
    _build_leave = _build[Leave]
    _build_done = _build[Done]
    _build_mem = _build[MemAccess]
    _build_dma = _build[DmaAccess]
    _build_mdl = _build[MdlRecord]
    _build_sgl = _build[SglRecord]
    # The record constructor of each builder, for the lines `_parse` reads (any column, any context).
    _MAKE_OF = {_build[cls]: _make[cls] for cls in _EVENTS}

# --- the line shapes --------------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_INT = r"(?:0[xX][0-9A-Fa-f]+|[0-9]+)"
_STRING = r'"[^"\\\r\n]*"'  # strings with an escape go to Lark
_SCALAR = rf"(?:{_INT}|{_NAME}|{_STRING})"
# Structures and lists one level deep, of scalars (deeper ones go to Lark).
_STRUCT = rf"\{{(?:{_NAME}={_SCALAR}(?:,[ \t]*{_NAME}={_SCALAR})*)?\}}"
_LIST = rf"\[(?:{_SCALAR}(?:,[ \t]*{_SCALAR})*)?\]"
_VALUE = rf"(?:{_SCALAR}|{_STRUCT}|{_LIST})"
_ARG = rf"(?:{_NAME}=>?)?{_VALUE}"
_ARGS = rf"\(((?:{_ARG}(?:,[ \t]*{_ARG})*)?)\)"
_RETURNS = rf"(?:[ \t]*->[ \t]*({_VALUE}))?"
# What may follow the record: white space and a comment. A lookahead, so a match ends
# where the record's text ends (its location's end_column).
_END = r"(?=[ \t]*(?:#[^\r\n]*)?\Z)"
_IRQL_NAME = r"(?:PASSIVE|APC|DISPATCH)(?:_LEVEL)?|DIRQL|HIGH_LEVEL"
_TIME = r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}-[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"  # WPP_TIME
_SIZE = rf"[ \t]+({_INT})(?:[ \t]+fill=({_INT})|[ \t]+data=((?:0[xX])?[0-9A-Fa-f]+))?{_END}"  # mem, dma

_HEAD = re.compile(
    r"[ \t]*"
    # tracefmt's prefix [CPU]PID.TID::TIMESTAMP [PROVIDER]: groups 1-5
    rf"(?:\[([0-9]+)\]([0-9A-Fa-f]+)\.([0-9A-Fa-f]+)::({_TIME})"
    r"[ \t]*\[([^\]\s](?:[^\]\r\n]*[^\]\s])?)?\][ \t]*)?"
    # context fields in the writer's order: groups 6-10
    r"(?:t=([0-9]+(?:\.[0-9]+)?)[ \t]+)?"
    rf"(?:seq=({_INT})[ \t]+)?"
    rf"(?:cpu=({_INT})[ \t]+)?"
    rf"(?:tid=({_INT})[ \t]+)?"
    rf"(?:irql=({_IRQL_NAME}|{_INT})[ \t]+)?"
    # the verb: group 11
    r"(callback|call|enter|leave|done|mem|dma|mdl|sgl)[ \t]+"
)
_HEAD_MATCH = _HEAD.match
# A line of the two common shapes cut in three (see the module's docstring): the part that
# changes on every line (the t= value: group 1; or tracefmt's [CPU]PID.TID before '::' and the
# time stamp: groups 2 and 3), the context fields in the writer's order up to the first space
# after `irql=` (group 4), and the body (group 5, all the rest). The time parts are checked
# whole here; the other parts need not be, being looked up. Written for the regex engine's
# quick paths: `(?:X|)` rather than `(?:X)?`, `[^ ]` rather than `\S` (or `\w`).
_LINE = re.compile(
    r"(?:t=([0-9]+(?:\.[0-9]+|))"
    r"|(\[[^:]*)::([0-9]{1,2}/[0-9]{1,2}/[0-9]{4}-[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+|)))"
    r"( (?:\[[^\]]*\] |)(?:t=[^ ]+ |)(?:seq=[^ ]+ |)(?:cpu=[^ ]+ |)(?:tid=[^ ]+ |)irql=[^ ]+ )"
    r"((?s:.*))"
).match
_CALL = re.compile(rf"({_NAME}){_ARGS}{_RETURNS}{_END}")
_ENTER = re.compile(rf"({_NAME}){_ARGS}{_END}")  # enter and callback
_LEAVE = re.compile(rf"({_NAME}){_RETURNS}(?:[ \t]*{_ARGS})?{_END}")
_DONE = re.compile(rf"({_NAME}){_RETURNS}{_END}")
_MEM = re.compile(rf"(read|write)[ \t]+({_INT})[ \t]+({_INT}){_END}")
_DMA = re.compile(rf"(read|write)[ \t]+({_INT}){_SIZE}")
_MDL = re.compile(
    rf"({_INT})[ \t]+va=({_INT})[ \t]+offset=({_INT})[ \t]+bytes=({_INT})"
    rf"[ \t]+pfns=\[((?:{_INT}(?:,[ \t]*{_INT})*)?)\](?:[ \t]+next=({_INT}))?{_END}"
)
_SGL = re.compile(rf"({_INT})[ \t]+\[((?:{_INT}:{_INT}(?:,[ \t]*{_INT}:{_INT})*)?)\]{_END}")
_COMMENT = re.compile(r"[ \t]*(#[^\r\n]*)\Z")
_BLANK = re.compile(r"[ \t]*\Z")
# A body not seen before, cut after its verb: `Name(` up to the first ')' (group 2) and the
# rest; `read|write ADDRESS` and the rest. Each piece is then checked whole, or looked up.
_WORD = "[0-9A-Za-z]+"  # a number token, and more
_INVOCATION = re.compile(rf"({_NAME})\(([^)]*)\)((?s:.*))").match
_ACCESS = re.compile(rf"(read|write) ({_WORD})( (?s:.*))").match
_ACCESSES = {"read": "read", "write": "write"}  # the same strings, interned
_INT_TOKEN = re.compile(_INT + r"\Z").match
# mdl and sgl cut at single spaces; their lists then cut at ", ", each item checked whole.
_MDL_CUT = re.compile(
    rf"({_WORD}) va=({_WORD}) offset=({_WORD}) bytes=({_WORD}) pfns=\[([^\]]*)\](?: next=({_WORD})|)((?s:.*))"
).match
_SGL_CUT = re.compile(rf"({_WORD}) \[([^\]]*)\]((?s:.*))").match
_RESULT_TAIL = re.compile(_RETURNS + _END).match  # what follows `Name(arguments)`
_SIZE_TAIL = re.compile(_SIZE).match  # what follows `read|write ADDRESS`

# Splitting a validated list: each item is the longest match at its start, as validated.
_ARG_ITEMS = re.compile(_ARG)
_ARG_PARTS = re.compile(rf"(?:({_NAME})(=>?))?({_VALUE})\Z")
_SCALAR_ITEMS = re.compile(_SCALAR)
_FIELD_ITEMS = re.compile(rf"({_NAME})=({_SCALAR})")
_INT_ITEMS = re.compile(_INT)
_SG_ITEMS = re.compile(rf"({_INT}):({_INT})")

_IRQLS: dict[str, Irql] = {}
for _name in ("PASSIVE", "APC", "DISPATCH"):
    _IRQLS[_name] = Irql.from_name(_name)
    _IRQLS[_name + "_LEVEL"] = Irql.from_name(_name + "_LEVEL")
for _name in ("DIRQL", "HIGH_LEVEL"):
    _IRQLS[_name] = Irql.from_name(_name)

# Numbers the regexes checked (HEX or DECIMAL) convert with int(text, 0), which reads 0x-hex and
# decimal alike but refuses a decimal with a leading zero ("010"): that raises, and the line
# goes to Lark, which reads it as 10. Rare in captures; never a wrong value.
_BASE_0 = itertools.repeat(0)

_CACHE_LIMIT = 1 << 14  # entries per cache: a cache that grows past it starts again
# The bodies' cache keeps its last full generation too (a body found there moves back to the
# new one), so it holds between 16,384 and 32,768 bodies: a capture's bodies come back after
# a while (the same addresses, reused), and starting again from nothing loses many of them.
_NO_ARGUMENTS: tuple = ((), None)


def _remember(cache: dict, key: Any, value: Any) -> None:
    """cache[key] = value, starting the cache again when it is full: memory stays flat."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


class _Bare:
    """A bare (positional) argument's value, waiting for its name from the DDI table."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _scalar(text: str) -> Any:
    """The value of one value token (validated by the regexes above)."""
    first = text[0]
    if first == "{":
        fields = tuple((_intern(name), _scalar(value)) for name, value in _FIELD_ITEMS.findall(text))
        if len({name for name, _ in fields}) != len(fields):
            raise ValueError("a field given twice: Lark's path says so")
        return Struct(fields)
    if first == "[":
        return tuple(_scalar(value) for value in _SCALAR_ITEMS.findall(text))
    if first == '"':
        return text[1:-1]
    if "0" <= first <= "9":
        return _int(text)
    if text == "TRUE":
        return True
    if text == "FALSE":
        return False
    if text == "NULL":
        return NULL
    return Symbol(_intern(text))


# A parsed line body (the text from the verb on): the record's builder; where the record's
# text ends, as `end_column - len(line)` (the body ends the line, so this holds wherever the
# body starts); its fields after location and context; its warnings (columns relative to the
# verb) or None.
_Entry = tuple


class FastPath:
    """The fast path of one `LineParser`: `parse(text, line)` gives the record or FALLBACK."""

    def __init__(self, path: str, table: dict[str, Signature], transformer: Any) -> None:
        self.path = path
        self.table = table
        self.transformer = transformer  # warnings go to its list, as Lark's path puts them
        self._bodies: dict[str, _Entry] = {}  # the text from the verb on -> its entry
        self._old_bodies: dict[str, _Entry] = {}  # the generation before
        self._fields: dict[str, tuple] = {}  # what lies between `t=SECONDS` and the verb -> the prefix's fields
        self._stamped: dict[tuple[str, str], tuple] = {}  # a tracefmt line's parts around the time stamp -> t, the same
        self._ddis: dict[str, tuple[str, Signature | None, frozenset[str] | None]] = {}
        self._values: dict[str, Any] = {}
        self._arguments: dict[str, tuple[str, Argument] | _Bare] = {}
        self._bare: dict[tuple[str, str | None], Argument] = {}
        self._results: dict[str, tuple] = {}  # what follows `Name(arguments)` -> (result or None, end)
        self._sizes: dict[str, tuple] = {}  # what follows `read|write ADDRESS` -> (length, fill, data, end)
        self._ints: dict[str, int] = {}
        self._int_of = self._ints.__getitem__  # KeyError for a number not seen before
        self._elements: dict[str, SgElement] = {}  # `ADDRESS:LENGTH` -> its element
        self._pfns: dict[str, tuple[int, ...]] = {}  # what `pfns=[...]` holds -> its numbers
        self._element_of = self._elements.__getitem__
        self._irqls: dict[str, Irql] = {}  # IRQL numbers as written
        self._argument_of = self._arguments.__getitem__  # KeyError for an argument not seen before
        self._verbs = {
            "call": partial(self._invoked, _build_call, _CALL),
            "enter": partial(self._invoked, _build_enter, _ENTER),
            "callback": partial(self._invoked, _build_callback, _ENTER),
            "leave": self._leave,
            "done": self._done,
            "mem": self._mem,
            "dma": self._dma,
            "mdl": self._mdl,
            "sgl": self._sgl,
        }

    # --- the line ---------------------------------------------------------------

    def parse(self, text: str, line: int) -> Any:
        """The record on `text` (None for a blank line), or FALLBACK if Lark must decide."""
        try:
            cut = _LINE(text)
            if cut is None:
                return self._parse(text, line)
            seconds, ids, stamp, fields, body = cut.groups()
            if seconds is not None:
                prefix = self._fields.get(fields)
                if prefix is None:
                    return self._parse(text, line)
                t = float(seconds)
            else:
                stamped = self._stamped.get((ids, fields))
                if stamped is None:
                    return self._parse(text, line)
                t, prefix = stamped
            entry = self._bodies.get(body) or self._body(body)
            if entry is None:
                return self._parse(text, line)
            build, back, values, warnings = entry
            if warnings is not None:
                self._warn(len(text) - len(body), warnings)
            return build(self.path, line, len(text) + back, t, stamp, prefix, values)
        except Exception:  # never the fast path's place to report anything: Lark decides
            return FALLBACK

    def _parse(self, text: str, line: int) -> Any:
        """`parse` by the regexes, for any line; remembers the context fields of a line of the
        two common shapes for `parse`."""
        head = _HEAD_MATCH(text)
        if head is None:
            return self._other(text, line)
        cpu_text, pid_text, tid_text, stamp, provider, t, seq, cpu, tid, irql, verb = head.groups()
        if irql is not None:
            irql = _IRQLS.get(irql) or self._irqls.get(irql) or self._irql(irql)
            if irql is None:
                return FALLBACK
        if seq is not None:
            seq = _int(seq)
        if t is not None:
            t = float(t)
        if cpu_text is not None:
            if cpu is not None or tid is not None:
                return FALLBACK  # fields that repeat the prefix: Lark compares them
            cpu = int(cpu_text)
            tid = int(tid_text, 16)
            pid = int(pid_text, 16)
            provider = provider or ""
            context = _context(t, seq, cpu, tid, irql, pid, stamp, provider)
        elif t is None and seq is None and cpu is None and tid is None and irql is None:
            context = NO_CONTEXT
        else:
            if cpu is not None:
                cpu = self._number(cpu)
            if tid is not None:
                tid = self._number(tid)
            context = _context(t, seq, cpu, tid, irql, None, None, None)
        start = head.start(11)
        body = text[start:]
        entry = self._bodies.get(body) or self._body(body, verb, head.end() - start)
        if entry is None:
            return FALLBACK
        build, back, values, warnings = entry
        column = 1 if text[0] not in " \t" else len(text) - len(text.lstrip(" \t")) + 1
        record = _MAKE_OF[build](_location(self.path, line, column, len(text) + back), context, *values)
        if warnings is not None:
            self._warn(start, warnings)
        prefix = (seq, cpu, tid, irql, context.pid, context.provider)
        if cpu_text is None:
            if text[:2] == "t=" and text[head.end(6)] == " ":
                _remember(self._fields, text[head.end(6) : start], prefix)
        elif text[0] == "[" and text[head.end(4)] == " ":
            _remember(self._stamped, (text[: head.start(4) - 2], text[head.end(4) : start]), (t, prefix))
        return record

    def _body(self, body: str, verb: str | None = None, pos: int = 0) -> _Entry | None:
        """The entry of a body not in the newest generation of the cache, or None; the verb and
        where its payload starts, or (not given) the body's first word and one space after it
        (a body whose verb is followed by more white space fails then: `_parse` reads it)."""
        entry = self._old_bodies.get(body)
        if entry is None:
            if verb is None:
                verb = body.partition(" ")[0]
                pos = len(verb) + 1
            read = self._verbs.get(verb)
            if read is None:
                return None
            entry = read(body, pos)
            if entry is None:
                return None
        if len(self._bodies) >= _CACHE_LIMIT:  # the newest generation is full: it becomes the old one
            self._old_bodies = self._bodies
            self._bodies = {}
        self._bodies[body] = entry
        return entry

    def _warn(self, start: int, warnings: tuple) -> None:
        self.transformer.warnings.extend([(start + column, message) for column, message in warnings])

    def _other(self, text: str, line: int) -> Any:
        match = _COMMENT.match(text)
        if match is not None:
            start = match.start(1)
            body = match.group(1)
            return _comment(_location(self.path, line, start + 1, start + 1 + len(body)), body[1:])
        if _BLANK.match(text) is not None:
            return None
        return FALLBACK

    def _irql(self, text: str) -> Irql | None:
        """The IRQL a number token gives, or None for one the format forbids (Lark says why)."""
        level = _int(text)
        if not 0 <= level <= 31:
            return None
        irql = Irql.from_number(level)
        _remember(self._irqls, text, irql)
        return irql

    def _number(self, text: str) -> int | None:
        """The value of a number token, or None if `text` is not one."""
        number = self._ints.get(text)
        if number is None and _INT_TOKEN(text) is not None:
            number = _int(text)
            _remember(self._ints, text, number)
        return number

    # --- verbs: the body of a line (from the verb on) and where the verb's payload starts,
    # to the body's entry, or None --------------------------------------------------------------

    def _result(self, tail: str) -> tuple | None:
        """What follows an argument list: (the result or None, where the record's text ends as
        `_Entry` has it), or None if the tail is not `[-> value] [comment]`."""
        match = _RESULT_TAIL(tail)
        if match is None:
            return None
        text = match.group(1)
        result = (None if text is None else self._value(text), match.end() - len(tail) + 1)
        _remember(self._results, tail, result)
        return result

    def _invoked(self, build: Any, strict: Any, body: str, pos: int) -> _Entry | None:
        """call, enter and callback (`build` says which; `strict` is its regex): `Name(arguments)`
        at `pos`, with `-> result` for a call. First cut at the first ')' and ", " (a ')' or ", "
        in a string cuts an argument in two, which is no argument), then the regex."""
        returns = build is _build_call
        cut = _INVOCATION(body, pos)
        if cut is not None:
            name, args, tail = cut.groups()
            result = self._results.get(tail) or self._result(tail)
            if result is not None and (returns or result[0] is None):
                ddi = self._ddis.get(name) or self._ddi(name)
                resolved = self._resolve(ddi, args, True, body, cut.start(2))
                if resolved is not None:
                    value, back = result
                    values = (ddi[0], resolved[0], value) if returns else (ddi[0], resolved[0])
                    return (build, back, values, resolved[1])
        match = strict.match(body, pos)
        if match is None:
            return None
        ddi = self._ddi(match.group(1))
        resolved = self._resolve(ddi, match.group(2), False, body, match.start(2))
        if resolved is None:
            return None
        values = (ddi[0], resolved[0])
        if returns:
            result = match.group(3)
            values += (None if result is None else self._value(result),)
        return (build, match.end() - len(body) + 1, values, resolved[1])

    def _leave(self, body: str, pos: int) -> _Entry | None:
        match = _LEAVE.match(body, pos)
        if match is None:
            return None
        name, result, args = match.groups()
        ddi = self._ddi(name)
        resolved: tuple | None = _NO_ARGUMENTS
        if args is not None:
            resolved = self._resolve(ddi, args, False, body, match.start(3))
            if resolved is None:
                return None
        value = None if result is None else self._value(result)
        return (_build_leave, match.end() - len(body) + 1, (ddi[0], resolved[0], value), resolved[1])

    def _done(self, body: str, pos: int) -> _Entry | None:
        match = _DONE.match(body, pos)
        if match is None:
            return None
        result = match.group(2)
        values = (_intern(match.group(1)), None if result is None else self._value(result))
        return (_build_done, match.end() - len(body) + 1, values, None)

    def _access(self, body: str, pos: int) -> tuple | None:
        """`read|write ADDRESS ...` at `pos`, for mem and dma: (access, address, length, fill,
        data, where the record's text ends as `_Entry` has it), or None for the regexes."""
        cut = _ACCESS(body, pos)
        if cut is None:
            return None
        access, address, tail = cut.groups()
        size = self._sizes.get(tail) or self._size(tail)
        number = self._ints.get(address)
        if number is None:
            number = self._number(address)
        if size is None or number is None:
            return None
        return (_ACCESSES[access], number, *size)

    def _size(self, tail: str) -> tuple | None:
        """What follows `read|write ADDRESS`: (length, fill, data, where the record's text ends
        as `_Entry` has it), or None if it is not ` LENGTH [fill=BYTE|data=HEX] [comment]`."""
        match = _SIZE_TAIL(tail)
        if match is None:
            return None
        payload = self._payload(*match.groups()[1:])
        if payload is None:
            return None
        size = (_int(match.group(1)), *payload, match.end() - len(tail) + 1)
        _remember(self._sizes, tail, size)
        return size

    @staticmethod
    def _payload(fill: str | None, data: str | None) -> tuple[int | None, bytes | None] | None:
        """dma's fill= and data= values, or None for a value the format forbids (Lark says why)."""
        if fill is not None:
            value = _int(fill)
            return None if value > 0xFF else (value, None)
        if data is not None:
            digits = data[2:] if data[:2] in ("0x", "0X") else data
            return None if len(digits) % 2 else (None, bytes.fromhex(digits))
        return (None, None)

    def _mem(self, body: str, pos: int) -> _Entry | None:
        found = self._access(body, pos)
        if found is not None:
            access, address, length, fill, data, back = found
            if fill is None and data is None:
                return (_build_mem, back, (access, address, length), None)
        match = _MEM.match(body, pos)
        if match is None:
            return None
        access, address, length = match.groups()
        return (_build_mem, match.end() - len(body) + 1, (_intern(access), int(address, 0), int(length, 0)), None)

    def _dma(self, body: str, pos: int) -> _Entry | None:
        found = self._access(body, pos)
        if found is not None:
            return (_build_dma, found[5], found[:5], None)
        match = _DMA.match(body, pos)
        if match is None:
            return None
        access, address, length, fill, data = match.groups()
        payload = self._payload(fill, data)
        if payload is None:
            return None
        values = (_intern(access), int(address, 0), int(length, 0), *payload)
        return (_build_dma, match.end() - len(body) + 1, values, None)

    def _mdl(self, body: str, pos: int) -> _Entry | None:
        cut = _MDL_CUT(body, pos)
        if cut is not None:
            address, va, offset, byte_count, pfns, next_, tail = cut.groups()
            texts = (address, va, offset, byte_count) if next_ is None else (address, va, offset, byte_count, next_)
            numbers = self._numbers(texts)
            pfn_values = self._pfns.get(pfns) or self._pfn_list(pfns)
            end = self._results.get(tail) or self._result(tail)
            if numbers is not None and pfn_values is not None and end is not None and end[0] is None:
                values = (*numbers[:4], pfn_values, numbers[4] if next_ is not None else None)
                return (_build_mdl, end[1], values, None)
        match = _MDL.match(body, pos)
        if match is None:
            return None
        address, va, offset, byte_count, pfns, next_ = match.groups()
        pfn_values = tuple(map(int, _INT_ITEMS.findall(pfns), _BASE_0)) if pfns else ()
        next_value = None if next_ is None else int(next_, 0)
        values = (int(address, 0), int(va, 0), int(offset, 0), int(byte_count, 0), pfn_values, next_value)
        return (_build_mdl, match.end() - len(body) + 1, values, None)

    def _sgl(self, body: str, pos: int) -> _Entry | None:
        cut = _SGL_CUT(body, pos)
        if cut is not None:
            address, items, tail = cut.groups()
            number = self._ints.get(address)
            if number is None:
                number = self._number(address)
            elements = self._sg_elements(items.split(", ")) if items else ()
            end = self._results.get(tail) or self._result(tail)
            if number is not None and elements is not None and end is not None and end[0] is None:
                return (_build_sgl, end[1], (number, elements), None)
        match = _SGL.match(body, pos)
        if match is None:
            return None
        address, items = match.groups()
        elements = tuple(_make_sg_element(int(a, 0), int(n, 0)) for a, n in _SG_ITEMS.findall(items)) if items else ()
        return (_build_sgl, match.end() - len(body) + 1, (int(address, 0), elements), None)

    def _pfn_list(self, text: str) -> tuple[int, ...] | None:
        """The page frames of an mdl's `pfns=[...]` list, kept: an MDL's buffer comes back."""
        pfns = self._numbers(text.split(", ")) if text else ()
        if pfns is not None:
            _remember(self._pfns, text, pfns)
        return pfns

    def _numbers(self, texts: Any) -> tuple[int, ...] | None:
        """The values of number tokens, or None if one of the texts is not a number."""
        try:
            return tuple(map(self._int_of, texts))
        except KeyError:  # one not seen before
            numbers = tuple(map(self._number, texts))
            return None if None in numbers else numbers  # type: ignore[return-value]

    def _sg_elements(self, texts: list[str]) -> tuple[SgElement, ...] | None:
        """The elements of `ADDRESS:LENGTH` texts, or None if one is not an element."""
        try:
            return tuple(map(self._element_of, texts))
        except KeyError:  # one not seen before
            elements = []
            for text in texts:
                address, _, length = text.partition(":")
                numbers = self._numbers((address, length))  # no ':', no length: None
                if numbers is None:
                    return None
                element = _make_sg_element(*numbers)
                _remember(self._elements, text, element)
                elements.append(element)
            return tuple(elements)

    # --- arguments ------------------------------------------------------------------

    def _ddi(self, name: str) -> tuple[str, Signature | None, frozenset[str] | None]:
        """The DDI called `name` (a checked NAME token): its interned name, signature and parameters."""
        ddi = self._ddis.get(name)
        if ddi is None:
            signature = self.table.get(name)
            params = None if signature is None else frozenset(signature.params)
            ddi = (_intern(name), signature, params)
            _remember(self._ddis, name, ddi)
        return ddi

    def _value(self, text: str) -> Any:
        values = self._values
        value = values.get(text, values)
        if value is values:
            value = _scalar(text)
            _remember(values, text, value)
        return value

    def _argument(self, text: str) -> tuple[str, Argument] | _Bare | None:
        """One argument's text: `Name=value` or `Name=>value` as (name, argument), a bare value
        as a _Bare; None if it is not an argument."""
        match = _ARG_PARTS.match(text)
        if match is None:
            return None
        name, arrow, value_text = match.groups()
        value = self._value(value_text)
        argument: tuple[str, Argument] | _Bare
        if name is None:
            argument = _Bare(value)
        else:
            name = _intern(name)
            argument = (name, _make_argument(name, value, arrow == "=>", False))
        _remember(self._arguments, text, argument)
        return argument

    def _resolve(self, ddi: tuple, args: str, loose: bool, body: str, start: int) -> tuple | None:
        """The arguments as RecordTransformer._resolve names them, and its warnings (columns
        relative to `body`, where `args` starts at `start`), or None for Lark's path (or, if
        `loose`, for the strict regex).

        `loose`: `args` is only known to hold no ')'; it is an argument list if its
        ", "-separated parts are each an argument (then each is lexed alone, as Lark lexes it:
        an argument ends where a delimiter follows). Else `args` matched the strict regex. The common case first: every part an
        argument seen before, all named (a _Bare is no (name, argument) pair: TypeError),
        names the DDI has (if the table knows it), none twice (or the dict is shorter)."""
        if not args:
            return _NO_ARGUMENTS
        parts = args.split(", ") if loose else _ARG_ITEMS.findall(args)
        try:
            named = dict(map(self._argument_of, parts))
        except (KeyError, TypeError):  # an argument not seen before, or a bare one
            return self._resolve_each(ddi, parts, body, start)
        params = ddi[2]
        if len(named) == len(parts) and (params is None or named.keys() <= params):
            return (tuple(named.values()), None)
        return self._resolve_each(ddi, parts, body, start)

    def _resolve_each(self, ddi: tuple, parts: list[str], body: str, start: int) -> tuple | None:
        """`_resolve` argument by argument: bare ones named, unknown names warned about."""
        _, signature, params = ddi
        cache = self._arguments
        result = []
        seen = set()
        unknown = None
        for index, part in enumerate(parts):
            argument = cache.get(part) or self._argument(part)
            if argument is None:
                return None
            if argument.__class__ is _Bare:
                name = None if signature is None else signature.param_at(index)
                if name is None and signature is not None:
                    return None  # more bare arguments than parameters: Lark says so
                key = (part, name)
                bare = self._bare.get(key)
                if bare is None:
                    bare = _make_argument(name, argument.value, False, True)  # type: ignore[union-attr]
                    _remember(self._bare, key, bare)
                argument = bare
            else:
                name, argument = argument  # type: ignore[misc]
                if params is not None and name not in params:
                    unknown = [] if unknown is None else unknown
                    unknown.append(index)
            if name is not None:
                if name in seen:
                    return None  # given twice: Lark says so
                seen.add(name)
            result.append(argument)
        warnings = None
        if unknown is not None:
            items = list(_ARG_ITEMS.finditer(body, start))
            warnings = tuple(
                (items[index].start() + 1, unknown_parameter(ddi[0], result[index].name, signature))  # type: ignore[arg-type]
                for index in unknown
            )
        return (tuple(result), warnings)
