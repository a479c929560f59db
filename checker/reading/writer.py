"""Writing records back as dmatrace text: the inverse of the parser.

`format_record(parse(line))` is a line that parses to an equal record. Integers are written
in hex from 10 up, names and symbols as they are, strings with `\\"` and `\\\\` escaped.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from model import events as ev
from model.values import NULL, Struct, Symbol, Value

__all__ = ["format_context", "format_record", "format_value"]


def format_value(value: Value) -> str:
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if value is NULL:
        return "NULL"
    if isinstance(value, int):
        return f"{value:#x}" if value >= 10 else str(value)
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Struct):
        return "{" + ", ".join(f"{name}={format_value(item)}" for name, item in value.fields) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise TypeError(f"not a trace value: {value!r}")


def _seconds(t: float) -> str:
    return format(Decimal(repr(t)), "f")


def format_context(context: ev.Context) -> str:
    """The context fields (and tracefmt prefix) that start an event line, with a trailing space."""
    parts: list[str] = []
    prefixed = context.timestamp is not None
    if prefixed:
        parts.append(
            f"[{context.cpu}]{context.pid or 0:04X}.{context.tid or 0:04X}::{context.timestamp} [{context.provider or ''}]"
        )
    if context.t is not None:
        parts.append(f"t={_seconds(context.t)}")
    if context.seq is not None:
        parts.append(f"seq={context.seq}")
    if context.cpu is not None and not prefixed:
        parts.append(f"cpu={context.cpu}")
    if context.tid is not None and not prefixed:
        parts.append(f"tid={context.tid}")
    if context.irql is not None:
        parts.append(f"irql={context.irql}")
    return " ".join(parts) + " " if parts else ""


def _arguments(arguments: tuple[ev.Argument, ...]) -> str:
    def one(argument: ev.Argument) -> str:
        if argument.name is None:
            return format_value(argument.value)
        return f"{argument.name}{'=>' if argument.out else '='}{format_value(argument.value)}"

    return "(" + ", ".join(one(argument) for argument in arguments) + ")"


def _pairs(fields: tuple[tuple[str, Value], ...]) -> list[str]:
    return [f"{key}={format_value(value)}" for key, value in fields]


def format_record(record: ev.Record) -> str:
    """One line of dmatrace text, without a line ending."""
    if isinstance(record, ev.Comment):
        return f"#{record.text}"
    if isinstance(record, ev.VersionDirective):
        return f"@dmatrace {record.version}"
    if isinstance(record, (ev.TargetDirective, ev.MemoryDirective, ev.AdapterDirective)):
        head = [f"@{record.name}"]
        if isinstance(record, ev.AdapterDirective):
            head.append(record.kind)
        keys = [f.name for f in fields(record) if f.name not in ("location", "kind")]
        values = [(key, getattr(record, key)) for key in keys if getattr(record, key) is not None]
        return " ".join(head + [f"{key}={_directive_value(value)}" for key, value in values])
    if isinstance(record, ev.DriverDirective):
        return " ".join(["@driver", *_pairs(record.fields)])
    if isinstance(record, ev.UnknownDirective):
        return " ".join([f"@{record.directive}", *map(format_value, record.words), *_pairs(record.fields)])
    prefix = format_context(record.context)
    if isinstance(record, ev.Call):
        result = "" if record.result is None else f" -> {format_value(record.result)}"
        return f"{prefix}call {record.name}{_arguments(record.arguments)}{result}"
    if isinstance(record, (ev.Enter, ev.Callback)):
        return f"{prefix}{record.verb} {record.name}{_arguments(record.arguments)}"
    if isinstance(record, ev.Leave):
        result = "" if record.result is None else f" -> {format_value(record.result)}"
        arguments = f" {_arguments(record.arguments)}" if record.arguments else ""
        return f"{prefix}leave {record.name}{result}{arguments}"
    if isinstance(record, ev.Done):
        result = "" if record.result is None else f" -> {format_value(record.result)}"
        return f"{prefix}done {record.name}{result}"
    if isinstance(record, ev.Lost):
        pairs = [(key, getattr(record, key)) for key in ("records", "buffers", "reason")]
        return " ".join([f"{prefix}lost", *_pairs(tuple((k, v) for k, v in pairs if v is not None))])
    if isinstance(record, ev.MemAccess):
        return f"{prefix}mem {record.access} {format_value(record.address)} {format_value(record.length)}"
    if isinstance(record, ev.DmaAccess):
        payload = ""
        if record.fill is not None:
            payload = f" fill={record.fill:#04x}"
        elif record.data is not None:
            payload = f" data={record.data.hex()}"
        return f"{prefix}dma {record.access} {format_value(record.address)} {format_value(record.length)}{payload}"
    if isinstance(record, ev.MdlRecord):
        pfns = ", ".join(format_value(pfn) for pfn in record.pfns)
        text = (
            f"{prefix}mdl {format_value(record.address)} va={format_value(record.va)} "
            f"offset={format_value(record.offset)} bytes={format_value(record.byte_count)} pfns=[{pfns}]"
        )
        return text if record.next is None else f"{text} next={format_value(record.next)}"
    if isinstance(record, ev.SglRecord):
        elements = ", ".join(f"{format_value(e.address)}:{format_value(e.length)}" for e in record.elements)
        return f"{prefix}sgl {format_value(record.address)} [{elements}]"
    raise TypeError(f"not a trace record: {record!r}")


def _directive_value(value: object) -> str:
    if isinstance(value, str):
        return value  # arch, layout: bare words
    return format_value(value)  # type: ignore[arg-type]
