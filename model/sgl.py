"""Scatter/gather lists: building one from MDL pages and adapter limits, as the HAL does.

`build_list` is the real work: walk the MDL chain from CurrentVa for Length bytes page by
page, send pages the device cannot reach (or every page, for a device without
scatter/gather) through map registers, coalesce what is contiguous on the bus, count map
registers (ADDRESS_AND_SIZE_TO_SPAN_PAGES), size the list for the target's structures and
say what status the real routine would return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .adapter import Adapter
from .events import SgElement
from .frozen import fast_init
from .location import SourceLocation
from .mdl import Mdl
from .platform import Target

__all__ = ["Calculation", "ListBuild", "MapRegisterWindow", "Segment", "SgList", "build_list", "segments_from_capture"]


@fast_init
@dataclass(frozen=True, slots=True)
class Segment:
    """One device-visible run: `length` bytes at bus address `bus`, holding transfer bytes from
    `offset` on. `chunks` are the driver's physical pieces (address, length) behind it; when
    `bounced`, the bus range is map-register memory and the data is copied to or from them."""

    bus: int
    length: int
    offset: int
    bounced: bool
    chunks: tuple[tuple[int, int], ...]

    @property
    def end(self) -> int:
        return self.bus + self.length

    @property
    def element(self) -> SgElement:
        return SgElement(self.bus, self.length)


@fast_init
@dataclass(frozen=True, slots=True)
class ListBuild:
    """What building a list gives: the segments, the map registers and bytes it needs, and the
    status the routine would return. `outside` is set when CurrentVa/Length leave the MDL chain."""

    segments: tuple[Segment, ...]
    map_registers: int
    bytes_needed: int
    status: str
    outside: str | None = None

    @property
    def elements(self) -> tuple[SgElement, ...]:
        return tuple(segment.element for segment in self.segments)

    @property
    def bounced_bytes(self) -> int:
        return sum(segment.length for segment in self.segments if segment.bounced)


@fast_init
@dataclass(frozen=True, slots=True)
class SgList:
    """A list a Build/Get call produced, with everything a finding needs to point back to it.

    `buffer` is the pointer the driver passes to Put (ScatterGatherBuffer for Build, the
    ScatterGather pointer AdapterListControl received for Get). `segments` is the mapping the
    device sees: the model's, with bounced addresses replaced by the capture's where an `sgl`
    record gave them. `captured` is that record's list, if any.
    """

    ordinal: int
    buffer: int
    ddi: str
    adapter: int | None
    storport: bool
    mdl: int | None
    current_va: int
    length: int
    write_to_device: bool
    build: ListBuild
    segments: tuple[Segment, ...]
    buffer_length: int | None
    status: str
    built_at: SourceLocation
    captured: tuple[SgElement, ...] | None = None
    captured_at: SourceLocation | None = None
    put_at: SourceLocation | None = None
    put_by: str | None = None

    @property
    def live(self) -> bool:
        return self.put_at is None

    @property
    def elements(self) -> tuple[SgElement, ...]:
        return self.build.elements

    def as_put(self, location: SourceLocation, ddi: str) -> SgList:
        """This list, put by `ddi` at `location` (`dataclasses.replace`, without its cost per put)."""
        return SgList(self.ordinal, self.buffer, self.ddi, self.adapter, self.storport, self.mdl, self.current_va,
                      self.length, self.write_to_device, self.build, self.segments, self.buffer_length, self.status,
                      self.built_at, self.captured, self.captured_at, location, ddi)

    def with_capture(self, segments: tuple[Segment, ...], captured: tuple[SgElement, ...], location: SourceLocation) -> SgList:
        """This list as an `sgl` record at `location` gave it to the device."""
        return SgList(self.ordinal, self.buffer, self.ddi, self.adapter, self.storport, self.mdl, self.current_va,
                      self.length, self.write_to_device, self.build, segments, self.buffer_length, self.status,
                      self.built_at, captured, location, self.put_at, self.put_by)

    @property
    def map_registers(self) -> int:
        return self.build.map_registers


@fast_init
@dataclass(frozen=True, slots=True)
class Calculation:
    """What a successful CalculateScatterGatherList reported, as captured: the list size
    (ScatterGatherListSize, which includes the OS's own data) and map registers for a transfer
    of `length` bytes at `current_va` through the adapter at `adapter`."""

    adapter: int | None
    current_va: int
    length: int
    size: int | None
    map_registers: int | None
    calculated_at: SourceLocation


class MapRegisterWindow:
    """Bus pages the model hands out as map registers, in a low window every device reaches."""

    def __init__(
        self, base: int = 0x7F000000, pages: int = 0x1000, page_size: int = 4096, is_ram: Callable[[int], bool] | None = None
    ) -> None:
        self.base = base
        self.pages = pages
        self.page_size = page_size
        self.is_ram = is_ram  # bus page -> is it a RAM frame a driver buffer uses? (never hand it out)
        self._used: set[int] = set()
        self._cursor = 0

    def allocate(self, count: int) -> int:
        """The bus address of `count` contiguous free pages (reusing the oldest when full)."""
        count = max(count, 1)
        for attempt in range(self.pages):
            start = (self._cursor + attempt) % self.pages
            if start + count > self.pages:
                continue
            if all(start + i not in self._used and not self._ram(start + i) for i in range(count)):
                self._used.update(range(start, start + count))
                self._cursor = (start + count) % self.pages
                return self.base + start * self.page_size
        start = self._cursor if self._cursor + count <= self.pages else 0
        self._cursor = (start + count) % self.pages
        return self.base + start * self.page_size

    def _ram(self, index: int) -> bool:
        return self.is_ram is not None and self.is_ram((self.base >> self.page_size.bit_length() - 1) + index)

    @property
    def frames(self) -> range:
        """The physical frames the window covers."""
        shift = self.page_size.bit_length() - 1
        return range(self.base >> shift, (self.base >> shift) + self.pages)

    def reserve(self, bus: int, length: int) -> None:
        """Mark pages the capture's HAL chose as in use, where they fall in the window."""
        for page in self._pages_of(bus, length):
            self._used.add(page)

    def _pages_of(self, bus: int, length: int) -> range:
        if not self.base <= bus < self.base + self.pages * self.page_size:
            return range(0)
        first = (bus - self.base) // self.page_size
        last = min((bus + max(length, 1) - 1 - self.base) // self.page_size, self.pages - 1)
        return range(first, last + 1)

    def release(self, bus: int, length: int) -> None:
        self._used.difference_update(self._pages_of(bus, length))


def _chain_chunks(
    chain: Sequence[Mdl], current_va: int, length: int, page_size: int, pfn_of: Callable[[Mdl, int], int]
) -> tuple[list[tuple[int, int, int]], str | None]:
    """(transfer offset, physical address, length) per page piece, walking the MDL chain."""
    mask = page_size - 1
    index = next((i for i, mdl in enumerate(chain) if mdl.va <= current_va < mdl.end), None)
    if index is None:
        first = chain[0] if chain else None
        where = f"[{first.va:#x}, {first.end:#x})" if first else "an empty chain"
        return [], f"CurrentVa {current_va:#x} is outside the MDL's buffer {where}"
    chunks: list[tuple[int, int, int]] = []
    offset = 0
    va = current_va
    while offset < length:
        mdl = chain[index]
        if va >= mdl.end:
            index += 1
            if index >= len(chain):
                return chunks, f"Length {length:#x} runs {length - offset:#x} bytes past the end of the MDL chain"
            va = chain[index].va
            continue
        n = min(length - offset, page_size - (va & mask), mdl.end - va)
        chunks.append((offset, (pfn_of(mdl, va) * page_size) | (va & mask), n))
        offset += n
        va += n
    return chunks, None


def build_list(
    target: Target,
    adapter: Adapter,
    chain: Sequence[Mdl],
    current_va: int,
    length: int,
    pfn_of: Callable[[Mdl, int], int],
    bounce: Callable[[int], int],
    buffer_length: int | None = None,
    storport: bool = False,
) -> ListBuild:
    """Build the list a Build/Get call makes. `pfn_of(mdl, va)` gives the page frame behind a
    virtual address of the MDL; `bounce(pages)` hands out contiguous map-register pages."""
    page = target.page_size
    prefix = "STOR_STATUS_" if storport else "STATUS_"
    map_registers = target.span_pages(current_va, length)
    chunks, outside = _chain_chunks(chain, current_va, length, page, pfn_of)
    segments: list[Segment] = []
    run: list[tuple[int, int, int]] = []  # the bounced chunks waiting for map registers
    direct: list[tuple[int, int]] = []  # the physically contiguous chunks of the direct segment being extended
    direct_offset = 0

    def flush_bounced() -> None:
        if not run:
            return
        first_offset, first_phys, _ = run[0]
        total = sum(n for _, _, n in run)
        in_page = first_phys & (page - 1)
        bus = bounce((in_page + total + page - 1) // page) + in_page
        segments.append(Segment(bus, total, first_offset, True, tuple((p, n) for _, p, n in run)))
        run.clear()

    def flush_direct() -> None:  # one Segment per run, not one per page merged into it
        if direct:
            segments.append(Segment(direct[0][0], sum(n for _, n in direct), direct_offset, False, tuple(direct)))
            direct.clear()

    for offset, phys, n in chunks:
        if not adapter.scatter_gather or phys + n - 1 > adapter.limit:
            flush_direct()
            run.append((offset, phys, n))
            continue
        flush_bounced()
        if direct and direct[-1][0] + direct[-1][1] != phys:
            flush_direct()
        if not direct:
            direct_offset = offset
        direct.append((phys, n))
    flush_bounced()
    flush_direct()

    bytes_needed = target.sgl_bytes(len(segments))
    if adapter.map_registers is not None and map_registers > adapter.map_registers:
        status = prefix + "INSUFFICIENT_RESOURCES"
    elif buffer_length is not None and buffer_length < bytes_needed:
        status = prefix + "BUFFER_TOO_SMALL"
    else:
        status = prefix + "SUCCESS"
    return ListBuild(tuple(segments), map_registers, bytes_needed, status, outside)


def segments_from_capture(
    captured: Sequence[SgElement], model: Sequence[Segment]
) -> tuple[tuple[Segment, ...], tuple[str, ...]]:
    """The device mapping a captured list gives, and how it differs from the model's.

    Captured elements are laid over the transfer in order. An element whose address is the
    model's physical address at that transfer offset is direct; any other address is taken as
    map registers the real HAL chose, holding the same driver pieces.
    """
    pieces = [(segment.offset + done, phys, n) for segment in model for done, (phys, n) in _offsets(segment.chunks)]
    differences: list[str] = []
    if len(captured) != len(model):
        differences.append(f"{len(captured)} elements captured, {len(model)} built by the model")
    for index, (got, want) in enumerate(zip(captured, model, strict=False)):
        if got.length != want.length:
            differences.append(f"element {index}: length {got.length:#x} captured, {want.length:#x} built")
        elif not want.bounced and got.address != want.bus:
            differences.append(f"element {index}: address {got.address:#x} captured, {want.bus:#x} built")
    adopted: list[Segment] = []
    offset = 0
    first = 0  # the first piece that may hold bytes at `offset` or after
    for element in captured:
        while first < len(pieces) and pieces[first][0] + pieces[first][2] <= offset:
            first += 1
        own = _pieces_in(pieces, first, offset, element.length)
        direct = bool(own) and own[0][0] == element.address and _contiguous(own)
        adopted.append(Segment(element.address, element.length, offset, not direct, own))
        offset += element.length
    return tuple(adopted), tuple(differences)


def _offsets(chunks: tuple[tuple[int, int], ...]):
    done = 0
    for phys, n in chunks:
        yield done, (phys, n)
        done += n


def _pieces_in(pieces: list[tuple[int, int, int]], first: int, start: int, length: int) -> tuple[tuple[int, int], ...]:
    """The physical pieces (address, length) of transfer bytes [start, start + length), from
    (offset, address, length) pieces in transfer order, searching from index `first`."""
    end = start + length
    found = []
    for index in range(first, len(pieces)):
        offset, phys, n = pieces[index]
        if offset >= end:
            break
        lo, hi = max(offset, start), min(offset + n, end)
        if lo < hi:
            found.append((phys + (lo - offset), hi - lo))
    return tuple(found)


def _contiguous(pieces: tuple[tuple[int, int], ...]) -> bool:
    """Does each piece start where the one before it ends?"""
    for index in range(1, len(pieces)):
        before = pieces[index - 1]
        if before[0] + before[1] != pieces[index][0]:
            return False
    return True
