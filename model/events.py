"""The records of a trace: directives, events and comments, as frozen values.

Each record carries the `SourceLocation` it was read from. Location is not part of a
record's equality: two records are equal when they say the same thing, wherever they
stand, so a trace written out and read back gives equal records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Union

from .irql import Irql
from .location import SourceLocation
from .values import Value

__all__ = [
    "AdapterDirective",
    "Argument",
    "Call",
    "Callback",
    "Comment",
    "Context",
    "DmaAccess",
    "Done",
    "DriverDirective",
    "Enter",
    "Event",
    "Leave",
    "Lost",
    "MdlRecord",
    "MemAccess",
    "MemoryDirective",
    "Record",
    "SgElement",
    "SglRecord",
    "TargetDirective",
    "UnknownDirective",
    "VersionDirective",
    "Directive",
    "NO_CONTEXT",
]


@dataclass(frozen=True, slots=True)
class Context:
    """What the capture knew about where an event ran: time, CPU, thread, IRQL.

    `pid`, `timestamp` and `provider` come from a tracefmt prefix
    `[CPU]PID.TID::TIMESTAMP [PROVIDER]`, which also supplies `cpu` and `tid`.
    """

    t: float | None = None
    seq: int | None = None
    cpu: int | None = None
    tid: int | None = None
    irql: Irql | None = None
    pid: int | None = None
    timestamp: str | None = None
    provider: str | None = None


NO_CONTEXT = Context()


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of a call: `Name=value` (in), `Name=>value` (out), or a bare value.

    A bare value gets its name from the DDI's documented parameter order; `name` is None
    only for a DDI the parameter table does not know.
    """

    name: str | None
    value: Value
    out: bool = False
    positional: bool = field(default=False, compare=False)


# --- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened: a call, a routine run, a memory or device access, a capture."""

    verb: ClassVar[str] = ""
    location: SourceLocation = field(compare=False)
    context: Context = NO_CONTEXT


@dataclass(frozen=True, slots=True, kw_only=True)
class _Invocation(Event):
    name: str
    arguments: tuple[Argument, ...] = ()

    def argument(self, name: str) -> Argument | None:
        """The argument called `name`, or None."""
        for argument in self.arguments:
            if argument.name == name:
                return argument
        return None

    def arg(self, name: str, default: Value | None = None) -> Value | None:
        """The value of the argument called `name`, or `default`."""
        for argument in self.arguments:  # argument()'s loop, inline: every handler asks several
            if argument.name == name:
                return argument.value
        return default


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(_Invocation):
    """`call Name(args) [-> value]`: a DDI call that returned."""

    verb: ClassVar[str] = "call"
    result: Value | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Enter(_Invocation):
    """`enter Name(args)`: a DDI call begins; callbacks may run before its `leave`."""

    verb: ClassVar[str] = "enter"


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave(_Invocation):
    """`leave Name [-> value] [(out args)]`: the innermost open `enter Name` returns."""

    verb: ClassVar[str] = "leave"
    result: Value | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Callback(_Invocation):
    """`callback Name(args)`: the system runs a driver routine."""

    verb: ClassVar[str] = "callback"


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Event):
    """`done Name [-> value]`: the routine the system ran returns, with what it returned
    where the capture saw it (AdapterControl's IO_ALLOCATION_ACTION, an ISR's BOOLEAN)."""

    verb: ClassVar[str] = "done"
    name: str
    result: Value | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemAccess(Event):
    """`mem read|write ADDR LEN`: driver code touches LEN bytes at a virtual address."""

    verb: ClassVar[str] = "mem"
    access: str
    address: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DmaAccess(Event):
    """`dma read|write ADDR LEN [fill=BYTE|data=HEX]`: the device touches bus addresses.

    `fill` is one byte repeated over the range; `data` is a byte pattern repeated to fill
    LEN (truncated where LEN is not a multiple of its length).
    """

    verb: ClassVar[str] = "dma"
    access: str
    address: int
    length: int
    fill: int | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MdlRecord(Event):
    """`mdl ADDR va=VA offset=N bytes=N pfns=[...] [next=ADDR]`: an MDL as captured."""

    verb: ClassVar[str] = "mdl"
    address: int
    va: int
    offset: int
    byte_count: int
    pfns: tuple[int, ...]
    next: int | None = None


@dataclass(frozen=True, slots=True)
class SgElement:
    """One SCATTER_GATHER_ELEMENT: a bus address and a length."""

    address: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SglRecord(Event):
    """`sgl ADDR [PHYS:LEN, ...]`: a scatter/gather list as the capture saw it."""

    verb: ClassVar[str] = "sgl"
    address: int
    elements: tuple[SgElement, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lost(Event):
    """`lost [records=N] [buffers=N] [reason="..."]`: records the capture should hold but
    does not (the capture kit could not log them, the ETW session dropped events or buffers,
    seq numbers are missing). None where the count is not known."""

    verb: ClassVar[str] = "lost"
    records: int | None = None
    buffers: int | None = None
    reason: str | None = None


# --- directives -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """A header line `@name ...`: metadata about the capture, not an event."""

    name: ClassVar[str] = ""
    location: SourceLocation = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDirective(Directive):
    """`@dmatrace N`: the format version."""

    name: ClassVar[str] = "dmatrace"
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetDirective(Directive):
    """`@target arch=x64 page_size=4096`: the platform; None where the line is silent."""

    name: ClassVar[str] = "target"
    arch: str | None = None
    page_size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverDirective(Directive):
    """`@driver name="x.sys" ...`: free metadata about the driver, shown in reports."""

    name: ClassVar[str] = "driver"
    fields: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryDirective(Directive):
    """`@memory size=N layout=fragmented|contiguous|high seed=N`: the simulated RAM."""

    name: ClassVar[str] = "memory"
    size: int | None = None
    layout: str | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterDirective(Directive):
    """`@adapter storport|wdm ...`: a DMA adapter created before the capture began."""

    name: ClassVar[str] = "adapter"
    kind: str
    address: int | None = None
    dma64: bool | None = None
    address_width: int | None = None
    scatter_gather: bool | None = None
    maximum_length: int | None = None
    map_registers: int | None = None
    alignment: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownDirective(Directive):
    """A directive version 1 does not define, kept as metadata."""

    directive: str
    words: tuple[Value, ...] = ()
    fields: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    """A line that holds only a comment (`# ...`); `text` is what follows the `#`."""

    location: SourceLocation = field(compare=False)
    text: str


Record = Union[Event, Directive, Comment]
