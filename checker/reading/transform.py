"""The one Transformer: it turns the parse of one trace line into one record.

Lark runs it inline (`Lark(..., transformer=RecordTransformer(...))`), so no tree is built:
each grammar rule's method below receives its children already transformed. Method names
are the grammar's rule and terminal names. Values the grammar accepts but version 1 does
not allow (an IRQL of 40, an unknown `@target` key, a bad escape) raise `ValueProblem`,
which the parser reports like a syntax error at the offending column.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer, v_args

from model.events import (
    AdapterDirective,
    Argument,
    Call,
    Callback,
    Comment,
    Context,
    DmaAccess,
    Done,
    DriverDirective,
    Enter,
    Leave,
    Lost,
    MdlRecord,
    MemAccess,
    MemoryDirective,
    SgElement,
    SglRecord,
    TargetDirective,
    UnknownDirective,
    VersionDirective,
)
from model.irql import Irql
from model.location import SourceLocation
from model.values import NULL, Struct, Symbol, Value

from .signatures import Signature

__all__ = ["DIRECTIVE_SPECS", "RecordTransformer", "ValueProblem", "unknown_parameter"]

_intern = sys.intern


class ValueProblem(Exception):
    """A value the grammar accepts but the format forbids; `column` is where it starts."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class _Pending:
    """A record waiting for its location, which `start` knows once the line is complete."""

    factory: Callable[..., Any]
    fields: dict[str, Any]


# --- directive specs: the keys and words each version-1 directive takes ---------------

_BOOL = "TRUE or FALSE"
_INT = "a number"


def _choice(*names: str) -> tuple[str, ...]:
    return names


DIRECTIVE_SPECS: dict[str, dict[str, Any]] = {
    "target": {"keys": {"arch": _choice("x64", "x86", "arm64"), "page_size": _INT}},
    "memory": {
        "keys": {"size": _INT, "layout": _choice("fragmented", "contiguous", "high"), "seed": _INT}
    },
    "adapter": {
        "word": _choice("storport", "wdm"),
        "keys": {
            "address": _INT,
            "dma64": _BOOL,
            "address_width": _INT,
            "scatter_gather": _BOOL,
            "maximum_length": _INT,
            "map_registers": _INT,
            "alignment": _INT,
        },
    },
}

_ESCAPE = re.compile(r"\\(.)")


def _unescape(token: Token) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        if char not in '"\\':
            column = token.column + 1 + match.start()
            raise ValueProblem(
                f"unknown escape '\\{char}' in a string: only \\\" and \\\\ are allowed",
                column,
            )
        return char

    return _ESCAPE.sub(replace, body)


def _int(token: Token) -> int:
    return int(token, 16) if token[1:2] in ("x", "X") else int(token)


@v_args(inline=True)
class RecordTransformer(Transformer):
    """Turns one line into a `Record` (event, directive or comment) or None for no record.

    Set `path`, `line` and `text` before each parse (the parser does this). Warnings about
    arguments the DDI table does not list go to `warnings` as (column, message).
    """

    def __init__(self, table: dict[str, Signature]) -> None:
        super().__init__(visit_tokens=True)
        self.table = table
        self.path = "<trace>"
        self.line = 0
        self.text = ""
        self.warnings: list[tuple[int, str]] = []

    # --- the line ---------------------------------------------------------------

    def start(self, *children: Any) -> Any:
        record = children[0] if children and isinstance(children[0], _Pending) else None
        comment = children[-1] if children and isinstance(children[-1], Token) else None
        text = self.text
        column = len(text) - len(text.lstrip()) + 1
        end = comment.column - 1 if comment is not None else len(text)
        end_column = len(text[:end].rstrip()) + 1
        if record is None:
            if comment is None:
                return None
            location = SourceLocation(self.path, self.line, comment.column, comment.end_column)
            return Comment(location=location, text=comment[1:])
        location = SourceLocation(self.path, self.line, column, end_column)
        return record.factory(location=location, **record.fields)

    # --- directives -------------------------------------------------------------------

    def directive(self, name: Token, *items: tuple) -> _Pending:
        directive = name[1:]
        words = [value for kind, *rest in items if kind == "word" for value in rest]
        pairs = [(key, value) for kind, *rest in items if kind == "pair" for key, value in [rest]]
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueProblem(f"@{directive} gives '{key}' twice", key.column)
            seen.add(key)
        if directive == "dmatrace":
            if len(words) != 1 or pairs or not isinstance(words[0], int) or isinstance(words[0], bool):
                raise ValueProblem("@dmatrace takes one version number, as in '@dmatrace 1'", name.column)
            return _Pending(VersionDirective, {"version": words[0]})
        if directive == "driver":
            if words:
                raise ValueProblem("@driver takes key=value pairs only, as in '@driver name=\"x.sys\"'", name.column)
            return _Pending(DriverDirective, {"fields": tuple((str(k), v) for k, v in pairs)})
        spec = DIRECTIVE_SPECS.get(directive)
        if spec is None:
            fields = {"directive": _intern(directive), "words": tuple(words), "fields": tuple((str(k), v) for k, v in pairs)}
            return _Pending(UnknownDirective, fields)
        fields = self._directive_fields(directive, spec, name, words, pairs)
        factory = {"target": TargetDirective, "memory": MemoryDirective, "adapter": AdapterDirective}[directive]
        return _Pending(factory, fields)

    def _directive_fields(self, directive: str, spec: dict, name: Token, words: list, pairs: list) -> dict:
        fields: dict[str, Any] = {}
        allowed_words = spec.get("word")
        if allowed_words is None and words:
            raise ValueProblem(f"@{directive} takes key=value pairs only", name.column)
        if allowed_words is not None:
            if len(words) != 1 or not isinstance(words[0], Symbol) or words[0].name not in allowed_words:
                raise ValueProblem(f"@{directive} needs one of: {', '.join(allowed_words)}", name.column)
            fields["kind"] = words[0].name
        keys = spec["keys"]
        for key, value in pairs:
            kind = keys.get(str(key))
            if kind is None:
                known = ", ".join(keys)
                raise ValueProblem(f"@{directive} has no key '{key}' (known: {known})", key.column)
            if kind == _BOOL:
                if not isinstance(value, bool):
                    raise ValueProblem(f"@{directive} {key}= takes TRUE or FALSE", key.column)
            elif kind == _INT:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueProblem(f"@{directive} {key}= takes a number", key.column)
            else:
                if not isinstance(value, Symbol) or value.name not in kind:
                    raise ValueProblem(f"@{directive} {key}= takes one of: {', '.join(kind)}", key.column)
                value = _intern(value.name)
            fields[str(key)] = value
        page_size = fields.get("page_size")
        if page_size is not None and (page_size < 512 or page_size & (page_size - 1)):
            raise ValueProblem("page_size must be a power of two of at least 512", name.column)
        width = fields.get("address_width")
        if width is not None and not 1 <= width <= 64:
            raise ValueProblem("address_width must be 1-64 bits", name.column)
        if fields.get("kind") == "wdm" and "address" not in fields:
            raise ValueProblem("@adapter wdm needs address=, the adapter object's address", name.column)
        return fields

    def dir_pair(self, key: Token, value: Value) -> tuple:
        return ("pair", key, value)

    def dir_word(self, value: Value) -> tuple:
        return ("word", value)

    # --- events -------------------------------------------------------------------

    def event(self, *children: Any) -> _Pending:
        action: _Pending = children[-1]
        if len(children) > 1:
            action.fields["context"] = self._context(children[:-1])
        return action

    def _context(self, fields: tuple) -> Context:
        values: dict[str, Any] = {}
        from_prefix: set[str] = set()
        for key, value, column in fields:
            if key == "prefix":
                values.update(value)
                from_prefix.update(value)
                continue
            if key in from_prefix:
                if values[key] != value:
                    raise ValueProblem(f"{key}={value} contradicts the tracefmt prefix, which says {values[key]}", column)
                from_prefix.discard(key)
                continue
            if key in values:
                raise ValueProblem(f"'{key}' is given twice", column)
            values[key] = value
        return Context(**values)

    def wpp_prefix(self, cpu: Token, ids: Token, time: Token, provider: Token | None = None) -> tuple:
        pid, tid = ids.split(".")
        fields = {
            "cpu": int(cpu),
            "pid": int(pid, 16),
            "tid": int(tid, 16),
            "timestamp": str(time),
            "provider": str(provider) if provider is not None else "",
        }
        return ("prefix", fields, cpu.column)

    def field_t(self, token: Token) -> tuple:
        return ("t", float(token), token.column)

    def field_seq(self, value: int) -> tuple:
        return ("seq", value, None)

    def field_cpu(self, value: int) -> tuple:
        return ("cpu", value, None)

    def field_tid(self, value: int) -> tuple:
        return ("tid", value, None)

    def field_irql(self, level: Any) -> tuple:
        if isinstance(level, Token):
            return ("irql", Irql.from_name(str(level)), level.column)
        try:
            return ("irql", Irql.from_number(level), None)
        except ValueError as error:
            raise ValueProblem(f"{error}: an IRQL is 0-31 or PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, DIRQL, HIGH_LEVEL") from None

    # --- verbs --------------------------------------------------------------------

    def call(self, name: Token, arguments: list, returns: _Returns | None = None) -> _Pending:
        fields = {"name": _intern(str(name)), "arguments": self._resolve(name, arguments)}
        if returns is not None:
            fields["result"] = returns.value
        return _Pending(Call, fields)

    def enter(self, name: Token, arguments: list) -> _Pending:
        return _Pending(Enter, {"name": _intern(str(name)), "arguments": self._resolve(name, arguments)})

    def callback(self, name: Token, arguments: list) -> _Pending:
        return _Pending(Callback, {"name": _intern(str(name)), "arguments": self._resolve(name, arguments)})

    def leave(self, name: Token, *rest: Any) -> _Pending:
        fields: dict[str, Any] = {"name": _intern(str(name))}
        for item in rest:
            if isinstance(item, _Returns):
                fields["result"] = item.value
            else:
                fields["arguments"] = self._resolve(name, item)
        return _Pending(Leave, fields)

    def done(self, name: Token, returns: _Returns | None = None) -> _Pending:
        fields: dict[str, Any] = {"name": _intern(str(name))}
        if returns is not None:
            fields["result"] = returns.value
        return _Pending(Done, fields)

    def lost(self, *items: tuple) -> _Pending:
        fields: dict[str, Any] = {}
        for key, value, column in items:
            if key in fields:
                raise ValueProblem(f"'{key}' is given twice", column)
            expected = _LOST_FIELDS.get(key)
            if expected is None:
                raise ValueProblem(f"lost has no field '{key}' (it takes records=N, buffers=N, reason=\"...\")", column)
            if not isinstance(value, expected) or isinstance(value, bool):
                kind = "a number" if expected is int else "a string"
                raise ValueProblem(f"lost's {key}= takes {kind}", column)
            fields[key] = value
        return _Pending(Lost, fields)

    def lost_field(self, name: Token, value: Value) -> tuple:
        return (str(name), value, name.column)

    def mem(self, access: Token, address: int, length: int) -> _Pending:
        return _Pending(MemAccess, {"access": _intern(str(access)), "address": address, "length": length})

    def dma(self, access: Token, address: int, length: int, payload: tuple | None = None) -> _Pending:
        fields: dict[str, Any] = {"access": _intern(str(access)), "address": address, "length": length}
        if payload is not None:
            fields[payload[0]] = payload[1]
        return _Pending(DmaAccess, fields)

    def dma_fill(self, value: int) -> tuple:
        if not 0 <= value <= 0xFF:
            raise ValueProblem(f"fill={value:#x} is not a byte (0x00-0xff)")
        return ("fill", value)

    def dma_data(self, token: Token) -> tuple:
        digits = token[2:] if token[:2] in ("0x", "0X") else str(token)
        if len(digits) % 2:
            raise ValueProblem("data= needs whole bytes: an even number of hex digits", token.column)
        return ("data", bytes.fromhex(digits))

    def mdl(self, address: int, va: int, offset: int, byte_count: int, pfns: tuple, next_: int | None = None) -> _Pending:
        fields = {"address": address, "va": va, "offset": offset, "byte_count": byte_count, "pfns": pfns}
        if next_ is not None:
            fields["next"] = next_
        return _Pending(MdlRecord, fields)

    def sgl(self, address: int, *elements: SgElement | None) -> _Pending:
        return _Pending(SglRecord, {"address": address, "elements": tuple(e for e in elements if e is not None)})

    def sg_element(self, address: int, length: int) -> SgElement:
        return SgElement(address, length)

    def int_list(self, *items: int | None) -> tuple:
        return tuple(item for item in items if item is not None)

    # --- arguments ------------------------------------------------------------------

    def returns(self, arrow: Token, value: Value) -> _Returns:
        return _Returns(value)

    def arguments(self, *items: tuple | None) -> list:
        return [item for item in items if item is not None]

    def in_arg(self, name: Token, value: Value) -> tuple:
        return (name, value, False)

    def out_arg(self, name: Token, arrow: Token, value: Value) -> tuple:
        return (name, value, True)

    def positional_arg(self, value: Value) -> tuple:
        return (None, value, False)

    def _resolve(self, ddi: Token, raw: list) -> tuple[Argument, ...]:
        signature = self.table.get(str(ddi))
        result: list[Argument] = []
        seen: set[str] = set()
        for index, (name, value, out) in enumerate(raw):
            positional = name is None
            if positional:
                param = signature.param_at(index) if signature is not None else None
                if signature is not None and param is None:
                    raise ValueProblem(
                        f"{ddi} takes {len(signature.params)} parameters, but argument {index + 1} has no name to match",
                        ddi.column,
                    )
                name_str = param
            else:
                name_str = _intern(str(name))
                if signature is not None and name_str not in signature.params:
                    self.warnings.append((name.column, unknown_parameter(str(ddi), name_str, signature)))
            if name_str is not None:
                if name_str in seen:
                    column = ddi.column if positional else name.column
                    raise ValueProblem(f"argument '{name_str}' of {ddi} is given twice", column)
                seen.add(name_str)
            result.append(Argument(name_str, value, out, positional))
        return tuple(result)

    # --- values -------------------------------------------------------------------

    def integer(self, token: Token) -> int:
        return _int(token)

    def true(self, token: Token) -> bool:
        return True

    def false(self, token: Token) -> bool:
        return False

    def null(self, token: Token) -> Any:
        return NULL

    def symbol(self, token: Token) -> Symbol:
        return Symbol(_intern(str(token)))

    def string(self, token: Token) -> str:
        return _unescape(token)

    def struct(self, *fields: tuple | None) -> Struct:
        pairs = tuple(field for field in fields if field is not None)
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            repeated = next(name for name in names if names.count(name) > 1)
            raise ValueProblem(f"field '{repeated}' is given twice in a structure")
        return Struct(pairs)

    def struct_field(self, name: Token, value: Value) -> tuple:
        return (_intern(str(name)), value)

    def array(self, *items: Value | None) -> tuple:
        return tuple(item for item in items if item is not None)


_LOST_FIELDS: dict[str, type] = {"records": int, "buffers": int, "reason": str}


def unknown_parameter(ddi: str, name: str, signature: Signature) -> str:
    """The warning for a named argument the DDI table does not list (the fast path says it too)."""
    known = ", ".join(signature.params) or "none"
    return f"{ddi} has no parameter '{name}' (documented: {known})"


@dataclass(frozen=True, slots=True)
class _Returns:
    value: Value

