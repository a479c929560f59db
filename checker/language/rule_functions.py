"""The functions rule expressions may call: a fixed table, each a plain Python function.

Each entry is `name: (function, least arguments, most arguments)`; a function receives the
`Scope` first, then its evaluated arguments, and returns `none` (None) rather than raising
when an argument is missing. Model questions go through the machine's public queries only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from model.irql import Irql, irql_of
from model.location import SourceLocation
from model.status import status_name as _status_name
from model.values import Symbol

from .scope import Scope, normalize

__all__ = ["FUNCTIONS", "hex_bytes"]

_SHOWN_BYTES = 16


def hex_bytes(data: bytes | None) -> str | None:
    """`ab ab ab ab`, at most 16 bytes and `...` after."""
    if data is None:
        return None
    shown = " ".join(f"{byte:02x}" for byte in data[:_SHOWN_BYTES])
    return shown + (" ..." if len(data) > _SHOWN_BYTES else "")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _len(scope: Scope, value: Any) -> Any:
    try:
        return len(value)
    except TypeError:
        return None


def _min(scope: Scope, *values: Any) -> Any:
    known = [value for value in values if _int(value) is not None]
    return min(known) if known else None


def _max(scope: Scope, *values: Any) -> Any:
    known = [value for value in values if _int(value) is not None]
    return max(known) if known else None


def _hex(scope: Scope, value: Any) -> Any:
    number = _int(value)
    return f"{number:#x}" if number is not None else (None if value is None else str(value))


def _text(scope: Scope, value: Any) -> Any:
    """A value as message text: numbers in decimal, IRQLs and symbols by name."""
    if value is None:
        return None
    return str(value)


def _known(scope: Scope, value: Any) -> bool:
    return value is not None


def _irql_name(scope: Scope, value: Any) -> Any:
    level = value if isinstance(value, Irql) else irql_of(Symbol(value) if isinstance(value, str) else value)
    return str(level) if level is not None else None


def _status(scope: Scope, value: Any, storport: Any = False) -> Any:
    if isinstance(value, str):
        return value
    number = _int(value)
    return _status_name(number, bool(storport)) if number is not None else None


def _cpu_view(scope: Scope, va: Any, length: Any) -> Any:
    if _int(va) is None or _int(length) is None:
        return None
    return hex_bytes(scope.machine.cpu_view(va, min(length, _SHOWN_BYTES + 1)))


def _device_view(scope: Scope, va: Any, length: Any) -> Any:
    if _int(va) is None or _int(length) is None:
        return None
    return hex_bytes(scope.machine.device_view(va, min(length, _SHOWN_BYTES + 1)))


def _owner(scope: Scope, entry: Any) -> Any:
    return scope.machine.owner(entry) if entry is not None else None


def _direction(scope: Scope, entry: Any) -> Any:
    return scope.machine.mapping_direction(entry) if entry is not None else None


def _bounce_page(scope: Scope, sgl: Any, va: Any) -> Any:
    """The bus address of the map-register page holding `va` of a list's transfer, if bounced."""
    if _int(va) is None or not hasattr(sgl, "segments"):
        return None
    page = scope.machine.target.page_size
    for segment in sgl.segments:
        start = sgl.current_va + segment.offset
        if segment.bounced and start <= va < start + segment.length:
            return (segment.bus + (va - start)) & ~(page - 1)
    return None


def _block_at(scope: Scope, va: Any) -> Any:
    return scope.machine.block_at(va) if _int(va) is not None else None


def _piece_va(scope: Scope, piece: Any) -> Any:
    """The driver virtual address a `dma` piece's bytes belong to: through a live mapping, the
    buffer it carries data for; otherwise the page behind its bus address taken as physical."""
    start = _int(getattr(piece, "start", None))
    if start is None:
        return None
    if piece.state == "live" and piece.entry is not None:
        return scope.machine.driver_va(piece.entry, start)
    return scope.machine.va_of_physical(start)


def _freed_block(scope: Scope, va: Any, length: Any = 1) -> Any:
    """A freed pool block sharing a byte with [va, va + length), not since reallocated."""
    if _int(va) is None:
        return None
    return scope.machine.freed_block_in(va, _int(length) or 1)


def _adapter(scope: Scope, address: Any) -> Any:
    return scope.machine.adapter_at(address) if _int(address) is not None else None


def _storport_adapter(scope: Scope) -> Any:
    """The adapter StorPort's DMA calls use (`@adapter storport` or the model's assumed one)."""
    return scope.machine.storport_dma_adapter()


def _calculation(scope: Scope, adapter: Any, va: Any, length: Any) -> Any:
    """The last CalculateScatterGatherList on `adapter` for this CurrentVa and Length."""
    if _int(va) is None or _int(length) is None:
        return None
    return scope.machine.calculation(_int(adapter), va, length)


def _channel_at(scope: Scope, adapter: Any) -> Any:
    """Where the adapter channel still open on `adapter` was allocated."""
    return scope.machine.channel_opened_at(adapter) if _int(adapter) is not None else None


def _mapped_at(scope: Scope, key: Any) -> Any:
    """Where the MapTransfer of a still-mapped transfer (a key of the `unflushed` fact) ran."""
    return scope.machine.transfer_mapped_at(tuple(key)) if isinstance(key, (tuple, list)) else None


def _open_enter(scope: Scope) -> Any:
    """The innermost `enter` still open on the event's CPU (a Frame: name, location), or none."""
    cpu = scope.effects.cpu if scope.effects is not None else None
    return scope.machine.open_enter(cpu) if cpu is not None else None


def _known_ddi(scope: Scope, name: Any) -> bool:
    return isinstance(name, str) and scope.context is not None and scope.context.knows_ddi(name)


def _open_routine(scope: Scope) -> Any:
    """The innermost driver routine (`callback`) still running on the event's CPU (a Frame: name, location), or none."""
    cpu = scope.effects.cpu if scope.effects is not None else None
    return scope.machine.open_routine(cpu) if cpu is not None else None


def _held_locks(scope: Scope) -> Any:
    """The spin locks the event's CPU holds once the event is done (HeldLock: lock, ddi, acquired_at), oldest first."""
    cpu = scope.effects.cpu if scope.effects is not None else None
    return scope.machine.held_locks(cpu) if cpu is not None else None


def _mdl_at(scope: Scope, address: Any) -> Any:
    """The live MDL at `address` (Mdl: va, byte_count, source...), or none."""
    return scope.machine.mdl(address) if _int(address) is not None else None


_CREATED = ("built_at", "allocated_at", "created_at", "acquired_at", "location")
_RELEASED = ("put_at", "freed_at")


def _first_location(value: Any, fields: tuple[str, ...]) -> SourceLocation | None:
    for field in fields:
        location = getattr(value, field, None)
        if isinstance(location, SourceLocation):
            return location
    return None


def _created_at(scope: Scope, value: Any) -> Any:
    """Where a model object was made: a list's build, a block's allocation, a lock's acquire."""
    return _first_location(value, _CREATED)


def _released_at(scope: Scope, value: Any) -> Any:
    """Where a model object was put or freed."""
    return _first_location(value, _RELEASED)


def _made_before(scope: Scope, value: Any, at: Any) -> Any:
    """The line an object was made at, if that is before `at` (a location or a line): an
    object at a reused address made since is another one."""
    made = _first_location(value, _CREATED)
    limit = at.line if isinstance(at, SourceLocation) else _int(at)
    return made.line if made is not None and limit is not None and made.line < limit else None


def _line(scope: Scope, value: Any) -> Any:
    return value.line if isinstance(value, SourceLocation) else None


def _lines(scope: Scope, values: Any) -> Any:
    """`12, 40`: the lines where each object of a tuple was made."""
    if not isinstance(values, (tuple, list)):
        return None
    lines = [location.line for value in values if (location := _first_location(value, _CREATED)) is not None]
    return ", ".join(str(line) for line in sorted(set(lines)))


def _any(scope: Scope, values: Any) -> bool:
    return isinstance(values, (tuple, list)) and any(values)


def _pool_tag(scope: Scope, value: Any) -> Any:
    """`'DCBA'`: a pool tag as its four characters in memory order (as poolmon and !pool show
    them), quoted; a tag with bytes that are not printable ASCII stays a hex number."""
    number = _int(value)
    if number is None:
        return None
    data = (number & 0xFFFFFFFF).to_bytes(4, "little")
    if number >> 32 or not all(0x20 <= byte < 0x7F for byte in data):
        return f"{number:#x}"
    return "'" + data.decode("ascii") + "'"


def _name(scope: Scope, value: Any) -> Any:
    return normalize(value) if isinstance(value, (str, Symbol)) else None


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "len": (_len, 1, 1),
    "min": (_min, 1, 8),
    "max": (_max, 1, 8),
    "hex": (_hex, 1, 1),
    "text": (_text, 1, 1),
    "known": (_known, 1, 1),
    "any": (_any, 1, 1),
    "irql_name": (_irql_name, 1, 1),
    "status_name": (_status, 1, 2),
    "name": (_name, 1, 1),
    "pool_tag": (_pool_tag, 1, 1),
    "cpu_view": (_cpu_view, 2, 2),
    "device_view": (_device_view, 2, 2),
    "owner": (_owner, 1, 1),
    "direction": (_direction, 1, 1),
    "block_at": (_block_at, 1, 1),
    "freed_block": (_freed_block, 1, 2),
    "piece_va": (_piece_va, 1, 1),
    "bounce_page": (_bounce_page, 2, 2),
    "adapter": (_adapter, 1, 1),
    "storport_adapter": (_storport_adapter, 0, 0),
    "calculation": (_calculation, 3, 3),
    "known_ddi": (_known_ddi, 1, 1),
    "channel_at": (_channel_at, 1, 1),
    "mapped_at": (_mapped_at, 1, 1),
    "open_enter": (_open_enter, 0, 0),
    "open_routine": (_open_routine, 0, 0),
    "held_locks": (_held_locks, 0, 0),
    "mdl_at": (_mdl_at, 1, 1),
    "created_at": (_created_at, 1, 1),
    "released_at": (_released_at, 1, 1),
    "line": (_line, 1, 1),
    "made_before": (_made_before, 2, 2),
    "lines": (_lines, 1, 1),
}
