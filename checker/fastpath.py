"""A fast path for the common trace lines: compiled regexes instead of Lark, same records.

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

Speed: a line's record depends only on its text, so the parse of the text from the verb on
(a "body") is kept, keyed by that text; and so is the parse of all but the part that changes
on every line of a capture, the `t=` value or the tracefmt time stamp (a "lane"), so a line
like one seen before costs a dictionary look-up, a check of that part and building the record.
Named arguments and values are kept per distinct text. All caches are bounded (a full one
starts again) and hold frozen values only, so sharing them between records is safe and memory
stays flat. Repeated strings (DDI, argument and field names, symbols) are interned.

Records are built without their dataclass `__init__` (which sets each field through
`object.__setattr__`): the generated constructors below set every slot directly, from the
dataclass's own field list, checked at import; if a record class changes shape the fast path
turns itself off (`AVAILABLE` is False, and a test says so) rather than build a wrong record.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import MISSING, fields
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
    Done: ("location", "context", "name"),
    MemAccess: ("location", "context", "access", "address", "length"),
    DmaAccess: ("location", "context", "access", "address", "length", "fill", "data"),
    MdlRecord: ("location", "context", "address", "va", "offset", "byte_count", "pfns", "next"),
    SglRecord: ("location", "context", "address", "elements"),
    SgElement: ("address", "length"),
    Comment: ("location", "text"),
}


def _constructor(cls: type) -> Any:
    """A function taking every field of `cls` positionally and building the instance by
    setting its slots, as the dataclass `__init__` would (the classes have no __post_init__).

    A frozen dataclass's slots can be set only through their member descriptors. For a class
    straight on `object` (Context, SourceLocation, Argument, SgElement) a cheaper way: fill an
    instance of a plain twin class with the same slots, then make it the real class by
    `__class__` assignment, which Python allows exactly when the two layouts are the same."""
    names = tuple(f.name for f in fields(cls))
    if names != _SHAPES[cls] or hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} has fields {names}, the fast path expects {_SHAPES[cls]}")
    for f in fields(cls):
        if f.default_factory is not MISSING:  # type: ignore[misc]
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    if cls.__bases__ == (object,) and tuple(cls.__slots__) == names:
        namespace["_twin"] = type(f"_{cls.__name__}Fill", (), {"__slots__": cls.__slots__})
        body = [f"    self.{name} = {name}" for name in names] + ["    self.__class__ = _cls"]
        make = _compile(names, ["    self = _new(_twin)", *body], namespace)
        try:
            sample = make(*range(len(names)))
            if type(sample) is cls and all(getattr(sample, name) == index for index, name in enumerate(names)):
                return make
        except TypeError:  # layouts differ after all: set the slots one by one
            pass
        namespace.pop("_twin")
    body = []
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__  # the slot's member descriptor
        body.append(f"    _set_{name}(self, {name})")
    return _compile(names, ["    self = _new(_cls)", *body], namespace)


def _compile(names: tuple[str, ...], body: list[str], namespace: dict[str, Any]) -> Any:
    name = f"make_{namespace['_cls'].__name__}"  # a name of its own, for profiles
    source = "\n".join([f"def {name}({', '.join(names)}):", *body, "    return self"])
    exec(compile(source, f"<fastpath {name}>", "exec"), namespace)  # noqa: S102 - code from the dataclass fields
    return namespace[name]


try:
    _make = {cls: _constructor(cls) for cls in _SHAPES}
    AVAILABLE = True
except (TypeError, AttributeError):  # a record class changed: keep to Lark until this file follows
    _make = {}
    AVAILABLE = False

if AVAILABLE:
    _location = _make[SourceLocation]
    _context = _make[Context]
    _comment = _make[Comment]
    _make_argument = _make[Argument]
    _make_call = _make[Call]
    _make_enter = _make[Enter]
    _make_callback = _make[Callback]
    _make_leave = _make[Leave]
    _make_done = _make[Done]
    _make_mem = _make[MemAccess]
    _make_dma = _make[DmaAccess]
    _make_mdl = _make[MdlRecord]
    _make_sgl = _make[SglRecord]
    _make_sg_element = _make[SgElement]

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
# The whole t= value; with pos and endpos, the whole time stamp.
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z").match
_STAMP = re.compile(_TIME + r"\Z").match
_CALL = re.compile(rf"({_NAME}){_ARGS}{_RETURNS}{_END}")
_ENTER = re.compile(rf"({_NAME}){_ARGS}{_END}")  # enter and callback
# The same with the argument list taken loosely (no quote, no parenthesis): it is one if
# each of its ", "-separated parts is an argument, which `_resolve` checks part by part.
_LOOSE_ARGS = r'\(([^()"\r\n]*)\)'
_CALL_LOOSE = re.compile(rf"({_NAME}){_LOOSE_ARGS}{_RETURNS}{_END}")
_ENTER_LOOSE = re.compile(rf"({_NAME}){_LOOSE_ARGS}{_END}")
_LEAVE = re.compile(rf"({_NAME}){_RETURNS}(?:[ \t]*{_ARGS})?{_END}")
_DONE = re.compile(rf"({_NAME}){_END}")
_MEM = re.compile(rf"(read|write)[ \t]+({_INT})[ \t]+({_INT}){_END}")
_DMA = re.compile(
    rf"(read|write)[ \t]+({_INT})[ \t]+({_INT})(?:[ \t]+fill=({_INT})|[ \t]+data=((?:0[xX])?[0-9A-Fa-f]+))?{_END}"
)
_MDL = re.compile(
    rf"({_INT})[ \t]+va=({_INT})[ \t]+offset=({_INT})[ \t]+bytes=({_INT})"
    rf"[ \t]+pfns=\[((?:{_INT}(?:,[ \t]*{_INT})*)?)\](?:[ \t]+next=({_INT}))?{_END}"
)
_SGL = re.compile(rf"({_INT})[ \t]+\[((?:{_INT}:{_INT}(?:,[ \t]*{_INT}:{_INT})*)?)\]{_END}")
_COMMENT = re.compile(r"[ \t]*(#[^\r\n]*)\Z")
_BLANK = re.compile(r"[ \t]*\Z")

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


# A parsed line body (the text from the verb on): the record's constructor, where its text
# ends (relative to the verb), its fields after location and context, and its warnings
# (columns relative to the verb), or None.
_Entry = tuple


class FastPath:
    """The fast path of one `LineParser`: `parse(text, line)` gives the record or FALLBACK."""

    def __init__(self, path: str, table: dict[str, Signature], transformer: Any) -> None:
        self.path = path
        self.table = table
        self.transformer = transformer  # warnings go to its list, as Lark's path puts them
        self._bodies: dict[str, _Entry] = {}  # the text from the verb on -> its entry
        self._lanes: dict[str, tuple] = {}  # what follows `t=SECONDS ` -> the context's other fields, the entry
        self._stamped: dict[str, tuple] = {}  # a tracefmt line without its time stamp -> the same
        self._ddis: dict[str, tuple[str, Signature | None, frozenset[str] | None]] = {}
        self._values: dict[str, Any] = {}
        self._arguments: dict[str, Argument | _Bare] = {}
        self._bare: dict[tuple[str, str | None], Argument] = {}
        self._ints: dict[str, int] = {}
        self._irqls: dict[str, Irql] = dict(_IRQLS)
        self._verbs = {
            "call": self._call,
            "enter": self._enter,
            "callback": self._callback,
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
            first = text[:2]
            if first == "t=":
                # The commonest shape, `t=SECONDS REST`: a REST seen before gives the rest of
                # the record as the regexes read it then; SECONDS is checked here.
                space = text.find(" ")
                rest = text[space + 1 :]
                lane = self._lanes.get(rest)
                if lane is None:
                    return self._parse(text, line, rest)
                seconds = text[2:space]
                if space > 2 and _SECONDS(seconds) is not None:
                    seq, cpu, tid, irql, start, (make, end, values, warnings) = lane
                    start += space + 1
                    context = _context(float(seconds), seq, cpu, tid, irql, None, None, None)
                    record = make(_location(self.path, line, 1, start + end + 1), context, *values)
                    if warnings is not None:
                        self.transformer.warnings.extend([(start + column, message) for column, message in warnings])
                    return record
            elif first[:1] == "[":
                # tracefmt's `[CPU]PID.TID::TIMESTAMP REST`: the same with the time stamp.
                colons = text.find("::")
                space = text.find(" ", colons)
                lane = self._stamped.get(text[:colons] + text[space:])
                if lane is not None and lane[0] == colons and space > colons and _STAMP(text, colons + 2, space) is not None:
                    _, t, seq, cpu, tid, irql, pid, provider, start, (make, end, values, warnings) = lane
                    start += space
                    context = _context(t, seq, cpu, tid, irql, pid, text[colons + 2 : space], provider)
                    record = make(_location(self.path, line, 1, start + end + 1), context, *values)
                    if warnings is not None:
                        self.transformer.warnings.extend([(start + column, message) for column, message in warnings])
                    return record
            return self._parse(text, line, None)
        except Exception:  # never the fast path's place to report anything: Lark decides
            return FALLBACK

    def _parse(self, text: str, line: int, rest: str | None) -> Any:
        """`parse` by the regexes; `rest` is what follows the first space if the line starts
        with `t=` (the key of the line's lane, hashed already)."""
        head = _HEAD_MATCH(text)
        if head is None:
            return self._other(text, line)
        cpu_text, pid_text, tid_text, stamp, provider, t, seq, cpu, tid, irql, verb = head.groups()
        if irql is not None:
            irql = self._irqls.get(irql) or self._irql(irql)
            if irql is None:
                return FALLBACK
        if seq is not None:
            seq = _int(seq)
        if cpu_text is not None:
            if cpu is not None or tid is not None:
                return FALLBACK  # fields that repeat the prefix: Lark compares them
            context = _context(
                None if t is None else float(t),
                seq,
                int(cpu_text),
                int(tid_text, 16),
                irql,
                int(pid_text, 16),
                stamp,
                provider or "",
            )
        elif t is None and seq is None and cpu is None and tid is None and irql is None:
            context = NO_CONTEXT
        else:
            ints = self._ints
            if cpu is not None:
                number = ints.get(cpu)
                cpu = self._int(cpu) if number is None else number
            if tid is not None:
                number = ints.get(tid)
                tid = self._int(tid) if number is None else number
            context = _context(None if t is None else float(t), seq, cpu, tid, irql, None, None, None)
        start = head.start(11)
        body = text[start:]
        entry = self._bodies.get(body)
        if entry is None:
            entry = self._verbs[verb](body, head.end() - start)
            if entry is None:
                return FALLBACK
            if len(self._bodies) >= _CACHE_LIMIT:
                self._bodies.clear()
            self._bodies[body] = entry
        make, end, values, warnings = entry
        column = 1 if text[0] not in " \t" else len(text) - len(text.lstrip(" \t")) + 1
        record = make(_location(self.path, line, column, start + end + 1), context, *values)
        if warnings is not None:
            self.transformer.warnings.extend([(start + column, message) for column, message in warnings])
        # Remember the rest of the line for the lanes of `parse`, where the line's shape
        # makes its varying part (the t= value, the time stamp) easy to cut out.
        if cpu_text is None:
            if rest is not None and t is not None and text[head.end(6)] == " ":  # `t=SECONDS REST`
                space = head.end(6)
                if len(self._lanes) >= _CACHE_LIMIT:
                    self._lanes.clear()
                self._lanes[rest] = (seq, cpu, tid, irql, start - space - 1, entry)
        elif text[0] == "[" and text[head.end(4)] == " " and text.find("::") == head.start(4) - 2:
            colons = head.start(4) - 2
            space = head.end(4)
            if len(self._stamped) >= _CACHE_LIMIT:
                self._stamped.clear()
            lane = (colons, context.t, seq, context.cpu, context.tid, irql, context.pid, context.provider, start - space, entry)
            self._stamped[text[:colons] + text[space:]] = lane
        return record

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
        level = _int(text)
        if not 0 <= level <= 31:
            return None  # Lark's path says why
        irql = self._irqls[text] = Irql.from_number(level)
        return irql

    def _int(self, text: str) -> int:
        if len(self._ints) >= _CACHE_LIMIT:
            self._ints.clear()
        value = self._ints[text] = _int(text)
        return value

    # --- verbs: the body of a line (from the verb on) to its entry, or None ------------------

    def _invocation(self, body: str, pos: int, loose: Any, strict: Any) -> tuple[Any, Any, Any] | None:
        """`Name(arguments)` at `pos`: the loose pattern first, the strict one if that fails;
        (match, DDI, resolved arguments), or None to fall back."""
        match = loose.match(body, pos)
        if match is not None:
            ddi = self._ddi(match.group(1))
            resolved = self._resolve(ddi, match.group(2), body, match.start(2), True)
            if resolved is not None:
                return match, ddi, resolved
        match = strict.match(body, pos)
        if match is None:
            return None
        ddi = self._ddi(match.group(1))
        resolved = self._resolve(ddi, match.group(2), body, match.start(2), False)
        return None if resolved is None else (match, ddi, resolved)

    def _call(self, body: str, pos: int) -> _Entry | None:
        found = self._invocation(body, pos, _CALL_LOOSE, _CALL)
        if found is None:
            return None
        match, ddi, resolved = found
        result = match.group(3)
        value = None if result is None else self._value(result)
        return (_make_call, match.end(), (ddi[0], resolved[0], value), resolved[1])

    def _enter(self, body: str, pos: int, make: Any = None) -> _Entry | None:
        found = self._invocation(body, pos, _ENTER_LOOSE, _ENTER)
        if found is None:
            return None
        match, ddi, resolved = found
        return (make or _make_enter, match.end(), (ddi[0], resolved[0]), resolved[1])

    def _callback(self, body: str, pos: int) -> _Entry | None:
        return self._enter(body, pos, _make_callback)

    def _leave(self, body: str, pos: int) -> _Entry | None:
        match = _LEAVE.match(body, pos)
        if match is None:
            return None
        name, result, args = match.groups()
        ddi = self._ddi(name)
        resolved: tuple | None = ((), None)
        if args is not None:
            resolved = self._resolve(ddi, args, body, match.start(3), False)
            if resolved is None:
                return None
        value = None if result is None else self._value(result)
        return (_make_leave, match.end(), (ddi[0], resolved[0], value), resolved[1])

    def _done(self, body: str, pos: int) -> _Entry | None:
        match = _DONE.match(body, pos)
        if match is None:
            return None
        return (_make_done, match.end(), (_intern(match.group(1)),), None)

    def _mem(self, body: str, pos: int) -> _Entry | None:
        match = _MEM.match(body, pos)
        if match is None:
            return None
        access, address, length = match.groups()
        return (_make_mem, match.end(), (_intern(access), int(address, 0), int(length, 0)), None)

    def _dma(self, body: str, pos: int) -> _Entry | None:
        match = _DMA.match(body, pos)
        if match is None:
            return None
        access, address, length, fill, data = match.groups()
        fill_value = data_value = None
        if fill is not None:
            fill_value = int(fill, 0)
            if fill_value > 0xFF:
                return None
        elif data is not None:
            digits = data[2:] if data[:2] in ("0x", "0X") else data
            if len(digits) % 2:
                return None
            data_value = bytes.fromhex(digits)
        return (_make_dma, match.end(), (_intern(access), int(address, 0), int(length, 0), fill_value, data_value), None)

    def _mdl(self, body: str, pos: int) -> _Entry | None:
        match = _MDL.match(body, pos)
        if match is None:
            return None
        address, va, offset, byte_count, pfns, next_ = match.groups()
        pfn_values = tuple(map(int, _INT_ITEMS.findall(pfns), _BASE_0)) if pfns else ()
        next_value = None if next_ is None else int(next_, 0)
        values = (int(address, 0), int(va, 0), int(offset, 0), int(byte_count, 0), pfn_values, next_value)
        return (_make_mdl, match.end(), values, None)

    def _sgl(self, body: str, pos: int) -> _Entry | None:
        match = _SGL.match(body, pos)
        if match is None:
            return None
        address, items = match.groups()
        elements = tuple(_make_sg_element(int(a, 0), int(n, 0)) for a, n in _SG_ITEMS.findall(items)) if items else ()
        return (_make_sgl, match.end(), (int(address, 0), elements), None)

    # --- arguments ------------------------------------------------------------------

    def _ddi(self, name: str) -> tuple[str, Signature | None, frozenset[str] | None]:
        ddi = self._ddis.get(name)
        if ddi is None:
            signature = self.table.get(name)
            params = None if signature is None else frozenset(signature.params)
            ddi = (_intern(name), signature, params)
            if len(self._ddis) >= _CACHE_LIMIT:
                self._ddis.clear()
            self._ddis[name] = ddi
        return ddi

    def _value(self, text: str) -> Any:
        values = self._values
        value = values.get(text, values)
        if value is values:
            value = _scalar(text)
            if len(values) >= _CACHE_LIMIT:
                values.clear()
            values[text] = value
        return value

    def _argument(self, text: str) -> Argument | _Bare | None:
        """One argument's text (`Name=value`, `Name=>value` or a bare value), or None if it
        is not one."""
        match = _ARG_PARTS.match(text)
        if match is None:
            return None
        name, arrow, value_text = match.groups()
        value = self._value(value_text)
        argument: Argument | _Bare
        if name is None:
            argument = _Bare(value)
        else:
            argument = _make_argument(_intern(name), value, arrow == "=>", False)
        if len(self._arguments) >= _CACHE_LIMIT:
            self._arguments.clear()
        self._arguments[text] = argument
        return argument

    def _resolve(self, ddi: tuple, args: str, body: str, start: int, loose: bool) -> tuple | None:
        """The arguments as RecordTransformer._resolve names them, and its warnings (columns
        relative to `body`), or None for Lark's path (or, if `loose`, for the strict regex).

        `loose`: `args` is only known to hold no quote or parenthesis; it is an argument list
        if its ", "-separated parts are each an argument."""
        if not args:
            return ((), None)
        _, signature, params = ddi
        cache = self._arguments
        result = []
        seen = set()
        unknown = None
        for index, part in enumerate(args.split(", ") if loose else _ARG_ITEMS.findall(args)):
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
                    if len(self._bare) >= _CACHE_LIMIT:
                        self._bare.clear()
                    bare = self._bare[key] = _make_argument(name, argument.value, False, True)  # type: ignore[union-attr]
                argument = bare
            else:
                name = argument.name  # type: ignore[union-attr]
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
