"""Stateful tests of the reference model: random valid driver behaviour, checked at every step.

Each machine plays a driver that does only what the DDI contracts allow (research notes,
sections 3-7 and 10): it allocates nonpaged pool, describes it with an MDL (sometimes with
a captured `mdl` record whose PFNs the test chooses: low, above 4 GiB, ascending runs,
descending neighbours), builds scatter/gather lists at DISPATCH_LEVEL with a preallocated
buffer on a 64-bit and a 32-bit adapter (so some pages bounce through map registers), lets
the device write and read the elements, reads with the CPU, puts each list with its
build's direction and frees everything in order. The test keeps its own account of what
must hold (which lists are live, what the CPU and the device must see, which pool blocks
are live, what each list must look like given the pages behind it) and compares it with
`Machine` after every step.

    WdmMachine       IoGetDmaAdapter (64-bit: 33 map registers; 32-bit: 4-33), ExAllocatePool2,
                     IoAllocateMdl + MmBuildMdlForNonPagedPool, BuildScatterGatherList as
                     enter/callback AdapterListControl/leave or as one call, inside DpcForIsr,
                     PutScatterGatherList, IoFreeMdl, ExFreePoolWithTag.
    StorPortMachine  @adapter storport (dma64 and map registers drawn), StorPortAllocatePool
                     with BufferPointer=>, StorPortAllocateMdl + StorPortBuildMdlForNonPagedPool,
                     StorPortBuildScatterGatherList (call, or enter/callback/leave) inside
                     HwStorStartIo, StorPortPutScatterGatherList, StorPortFreeMdl, StorPortFreePool.

Both draw the layout the model gives pages no capture described (`@memory layout=high`:
every such page above 4 GiB, `contiguous`: ascending frames, or the default `fragmented`)
and sometimes echo
the built list in an `sgl` record, as is or with the bounced elements moved to other map
registers (the real HAL's choice). Builds that must fail are made too: more pages than
the adapter's map registers (INSUFFICIENT_RESOURCES) or a buffer too small for the
elements (BUFFER_TOO_SMALL).

The tests at the end pin two model bugs these machines found (a put wiping the next list's
map registers; map registers aliasing RAM frames), now fixed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from itertools import accumulate

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, precondition, rule

from model import events as ev
from model.irql import DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL, Irql
from model.location import SourceLocation
from model.machine import Machine
from model.values import NULL, Struct, Symbol

PAGE = 0x1000
SHIFT = 12
MASK = PAGE - 1
LIMIT_32 = (1 << 32) - 1
LIMIT_64 = (1 << 64) - 1
HERE = SourceLocation("stateful.trace", 1)

WINDOW = (0x7F000000, 0x80000000)  # the model's map-register window on the bus
MOVED_WINDOW = 0x7F800000  # where an echoed `sgl` record puts bounced elements (the HAL's choice)
# Frames the test chooses for `mdl` records, outside the map-register window (see
# test_map_register_window_does_not_alias_ram): under 2 GiB, 2-4 GiB and 4-16 GiB.
LOW_FRAMES = 0x20000
LOW_FRAMES_END = WINDOW[0] >> SHIFT
MID_FRAMES = WINDOW[1] >> SHIFT  # 2-4 GiB
HIGH_FRAMES = 0x100000
RAM_FRAMES = 0x400000  # 16 GiB, the default @memory size

PDO = 0xFFFFE00000100000
DEVICE = 0xFFFFE00000400000
DPC = 0xFFFFE00000500000
EXECUTION_ROUTINE = 0xFFFFF80000501000
LIST_CONTEXT = 0xFFFFE00000600000
HW_EXTENSION = 0xFFFFE30C4A2B1000
ADAPTER_64 = 0xFFFFE00000200000
ADAPTER_32 = 0xFFFFE00000210000
TAG = 0x62446246

# Facts that are plain observations; any other fact on a valid driver's event is a failure.
OBSERVATIONS = frozenset({"build", "done-irql", "put-direction", "free-family", "free-tag", "pool-block", "live-lists"})

CPUS = st.integers(0, 3)
PAGES = st.one_of(st.integers(0, 4), st.integers(5, 40))  # data block size in whole pages (plus up to a page)
TRUTH = st.booleans()


def a(name: str, value, out: bool = False) -> ev.Argument:
    return ev.Argument(name, value, out)


def span_pages(va: int, length: int) -> int:
    """ADDRESS_AND_SIZE_TO_SPAN_PAGES."""
    return ((va & MASK) + length + MASK) >> SHIFT


def sgl_bytes(elements: int) -> int:
    """An x64 SCATTER_GATHER_LIST of `elements` elements: 16 + 24n bytes."""
    return 16 + 24 * elements


def payload(length: int, fill: int | None, data: bytes | None) -> np.ndarray:
    """The bytes of a `dma write`, computed here rather than by the model."""
    if data is not None:
        return np.resize(np.frombuffer(data, dtype=np.uint8), length)
    return np.full(length, fill, dtype=np.uint8)


def view(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8)


def expected_segments(pieces: list[tuple[int, int, int]], limit: int) -> list[tuple[bool, int | None, int, tuple]]:
    """The list a HAL builds from the transfer's page pieces (offset, physical, length):
    a page the device cannot reach goes through map registers, consecutive such pages share
    one run of registers (one element); reachable pages are direct, and a direct page that
    physically follows the previous direct page extends its element. Returns (bounced,
    bus address if direct, length, chunks) per element."""
    out: list[list] = []
    for _, phys, n in pieces:
        bounced = phys + n - 1 > limit
        last = out[-1] if out else None
        if last is not None and last[0] == bounced and (bounced or last[1] + last[2] == phys):
            last[2] += n
            last[3].append((phys, n))
        else:
            out.append([bounced, None if bounced else phys, n, [(phys, n)]])
    return [(b, bus, n, tuple(chunks)) for b, bus, n, chunks in out]


@dataclass(frozen=True)
class AdapterH:
    """An adapter the driver uses: its address (None for StorPort's), reach and budget."""

    name: str
    address: int | None
    limit: int
    budget: int

    def __repr__(self) -> str:
        return f"<{self.name} adapter, {self.budget} map registers>"


@dataclass(eq=False)
class BlockH:
    """A pool block the test allocated. `memory` is what the CPU must read in it (pool pages
    start zeroed here); `frames` the page frames behind the pages an MDL described."""

    address: int
    size: int
    memory: np.ndarray | None = None
    frames: dict[int, int] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.address + self.size

    def __repr__(self) -> str:
        return f"<block {self.address:#x}+{self.size:#x}>"


@dataclass(eq=False)
class MdlH:
    address: int
    block: BlockH
    va: int
    length: int

    def __repr__(self) -> str:
        return f"<mdl {self.address:#x} va={self.va:#x} len={self.length:#x}>"


@dataclass(eq=False)
class ListH:
    """A live list. `device` is what the device must see over the transfer; for a list that
    reads from the device, only the bytes marked in `written` (the device wrote them) are
    known, and direct pages of it are memory itself."""

    buffer: int
    sg: BlockH
    mdl: MdlH
    adapter: AdapterH
    current_va: int
    length: int
    write: bool
    ordinal: int
    device: np.ndarray
    written: np.ndarray

    @property
    def block_offset(self) -> int:
        return self.current_va - self.mdl.block.address

    def __repr__(self) -> str:
        direction = "write" if self.write else "read"
        return f"<{direction} list {self.buffer:#x} va={self.current_va:#x} len={self.length:#x} on {self.adapter.name}>"


class DriverMachine(RuleBasedStateMachine):
    """Rules and invariants common to both driver kinds; subclasses say which DDIs they call."""

    buffers = Bundle("buffers")  # data blocks with no MDL
    mdls = Bundle("mdls")  # MDLs with no live list
    reads = Bundle("reads")  # live lists that read from the device (WriteToDevice=FALSE)
    writes = Bundle("writes")  # live lists that write to the device

    # --- what a subclass supplies --------------------------------------------------------
    STATUS = "STATUS_"
    ROUTINES = {"alloc": None, "build": "DpcForIsr", "put": "DpcForIsr"}

    def setup_adapters(self, data) -> list[AdapterH]:
        raise NotImplementedError

    def allocate_event(self, size: int, address: int) -> object:
        raise NotImplementedError

    def free_event(self, block: BlockH) -> object:
        raise NotImplementedError

    def mdl_events(self, address: int, va: int, length: int) -> list:
        raise NotImplementedError

    def mdl_free_event(self, mdl: MdlH) -> object:
        raise NotImplementedError

    def build_events(self, adapter: AdapterH, mdl: MdlH, va: int, length: int, write: bool, buffer: int, buffer_length: int,
                     form: str, result: str | None) -> tuple[object, str | None]:
        """The `call` or `enter` event of a build, and the routine the system runs in it."""
        raise NotImplementedError

    def put_event(self, adapter: AdapterH, buffer: int, write: bool) -> object:
        raise NotImplementedError

    # --- setup ----------------------------------------------------------------------------
    def __init__(self) -> None:
        super().__init__()
        self.machine = Machine()
        self.adapters: list[AdapterH] = []
        self.blocks: dict[int, BlockH] = {}  # live pool blocks, data and list buffers
        self.allocations = 0
        self.lists: dict[int, ListH] = {}  # live lists by buffer
        self.put_buffers: set[int] = set()
        self.mdl_table: dict[int, MdlH] = {}
        self.used_frames: set[int] = set()
        self.next_frame: dict[str, int] = {}
        self.moved_page = 0
        self.next_data = 0xFFFFB00000000000
        self.next_sg = 0xFFFFC00000000000
        self.next_mdl = 0xFFFFE00001000000
        self.level: dict[int, Irql] = {}

    @initialize(layout=st.sampled_from(["high", "high", "contiguous", "fragmented"]), seed=st.integers(0, 3), data=st.data())
    def start(self, layout, seed, data):
        self.machine.apply(ev.MemoryDirective(location=HERE, layout=layout, seed=seed))
        self.adapters = self.setup_adapters(data)

    # --- emitting events ------------------------------------------------------------------
    def context(self, cpu: int) -> ev.Context:
        return ev.Context(cpu=cpu, irql=self.level.get(cpu, PASSIVE_LEVEL))

    def emit(self, event, allowed: dict[str, object] | set[str] = frozenset()):
        """Apply one event; a valid driver draws only observations (and the facts allowed here,
        with the value given where `allowed` is a dict)."""
        effects = self.machine.apply(event)
        for key, value in effects.facts:
            if key in OBSERVATIONS:
                continue
            assert key in allowed, f"{type(event).__name__} {getattr(event, 'name', '')}: unexpected fact {key}={value!r}"
            if isinstance(allowed, dict):
                assert value == allowed[key], f"fact {key}={value!r}, expected {allowed[key]!r}"
        if done := effects.fact("done-irql"):
            assert done == (DISPATCH_LEVEL, DISPATCH_LEVEL), done
        return effects

    def enter_routine(self, cpu: int, kind: str) -> str | None:
        name = self.ROUTINES[kind]
        if name is not None:
            self.emit(ev.Callback(location=HERE, context=ev.Context(cpu=cpu, irql=DISPATCH_LEVEL), name=name, arguments=(
                a("Dpc", DPC), a("DeviceObject", DEVICE), a("Irp", NULL), a("Context", NULL))))
            self.level[cpu] = DISPATCH_LEVEL
        return name

    def leave_routine(self, cpu: int, name: str | None) -> None:
        if name is not None:
            self.emit(ev.Done(location=HERE, context=ev.Context(cpu=cpu, irql=DISPATCH_LEVEL), name=name))
            self.level[cpu] = PASSIVE_LEVEL

    # --- pool -----------------------------------------------------------------------------
    def pool_allocate(self, cpu: int, size: int, address: int) -> BlockH:
        effects = self.emit(replace(self.allocate_event(size, address), context=self.context(cpu)))
        blocks = [b for b in effects.created if getattr(b, "address", None) == address]
        assert len(blocks) == 1 and blocks[0].size == size and blocks[0].live, effects.created
        block = BlockH(address, size)
        self.blocks[address] = block
        self.allocations += 1
        return block

    def pool_free(self, cpu: int, block: BlockH) -> None:
        effects = self.emit(replace(self.free_event(block), context=self.context(cpu)))
        assert [b.address for b in effects.released] == [block.address], effects.released
        assert not effects.released[0].live
        del self.blocks[block.address]
        assert self.machine.block_at(block.address) is None

    def new_block(self, cpu: int, pages: int, extra: int, data) -> BlockH:
        size = max(pages * PAGE + extra, 0x10)
        offset = 0
        if size < PAGE:  # under a page: 16-byte aligned and never across a page
            offset = data.draw(st.integers(0, (PAGE - size) // 16), label="offset/16") * 16
        address = self.next_data + offset
        self.next_data += ((offset + size + MASK) & ~MASK) + PAGE  # data blocks never share a page
        routine = self.enter_routine(cpu, "alloc")
        block = self.pool_allocate(cpu, size, address)
        self.leave_routine(cpu, routine)
        block.memory = np.zeros(size, dtype=np.uint8)
        return block

    def data_blocks(self) -> int:
        return sum(b.memory is not None for b in self.blocks.values())

    @precondition(lambda self: self.data_blocks() < 10)
    @rule(target=buffers, pages=PAGES, extra=st.integers(0, MASK), cpu=CPUS, data=st.data())
    def allocate(self, pages, extra, cpu, data):
        return self.new_block(cpu, pages, extra, data)

    @precondition(lambda self: self.data_blocks() < 10)
    @rule(target=mdls, pages=PAGES, extra=st.integers(0, MASK), cpu=CPUS, data=st.data())
    def allocate_described(self, pages, extra, cpu, data):
        """Pool and an MDL for it in one step (the common case), so lists pile up sooner."""
        return self.describe(self.new_block(cpu, pages, extra, data), cpu, data)

    @rule(block=consumes(buffers), cpu=CPUS)
    def free_block(self, block, cpu):
        routine = self.enter_routine(cpu, "alloc")
        self.pool_free(cpu, block)
        self.leave_routine(cpu, routine)

    # --- MDLs -----------------------------------------------------------------------------
    def fresh_frame(self, kind: str, previous: int | None) -> int:
        """A frame no page has had yet: `next` / `prev` the neighbour of the previous page's
        frame (an ascending or a descending pair) where it is free and in the same range, else
        a new frame in the range asked (`low` under 2 GiB, `mid` 2-4 GiB, `high` above 4 GiB)."""
        ranges = {"low": (LOW_FRAMES, LOW_FRAMES_END), "mid": (MID_FRAMES, HIGH_FRAMES), "high": (HIGH_FRAMES, RAM_FRAMES)}
        if kind in ("next", "prev"):
            if previous is None:
                kind = "low"
            else:
                kind = next((name for name, (lo, hi) in ranges.items() if lo <= previous < hi), "low")
                neighbour = previous + 1 if kind == "next" else previous - 1
                lo, hi = ranges[kind]
                if lo <= neighbour < hi and neighbour not in self.used_frames:
                    return neighbour
        lo, hi = ranges[kind]
        frame = self.next_frame.get(kind, lo)
        while frame in self.used_frames:
            frame += 1
        assert frame < hi, f"out of {kind} frames"
        self.next_frame[kind] = frame + 2
        return frame

    @rule(target=mdls, block=consumes(buffers), cpu=CPUS, data=st.data())
    def describe(self, block, cpu, data):
        start, length = 0, block.size
        if data.draw(TRUTH, label="part of the block"):
            start = data.draw(st.integers(0, block.size - 1), label="start")
            length = data.draw(st.integers(1, block.size - start), label="length")
        va = block.address + start
        address = self.next_mdl
        self.next_mdl += 0x100
        routine = self.enter_routine(cpu, "alloc")
        allocate, build = self.mdl_events(address, va, length)
        effects = self.emit(replace(allocate, context=self.context(cpu)))
        assert [m.address for m in effects.created] == [address]
        self.emit(replace(build, context=self.context(cpu)))
        mdl = self.machine.mdl(address)
        vpns = range(va >> SHIFT, ((va + length - 1) >> SHIFT) + 1)
        assert mdl is not None and mdl.resident and mdl.va == va and mdl.byte_count == length
        assert mdl.pfns is not None and len(mdl.pfns) == len(vpns) == span_pages(va, length)
        for vpn, pfn in zip(vpns, mdl.pfns, strict=True):
            # a page an earlier MDL described keeps its frame
            assert block.frames.get(vpn, pfn) == pfn, (hex(vpn), hex(block.frames[vpn]), hex(pfn))
        self.used_frames.update(mdl.pfns)
        frames = list(mdl.pfns)
        if data.draw(TRUTH, label="mdl record"):
            kinds = data.draw(st.lists(st.sampled_from(["next", "next", "low", "mid", "high", "prev"]), min_size=len(vpns),
                                       max_size=len(vpns)), label="frames")
            previous = None
            for index, (vpn, kind) in enumerate(zip(vpns, kinds, strict=True)):
                if vpn not in block.frames:  # a page seen before keeps its frame
                    frames[index] = self.fresh_frame(kind, previous)
                    self.used_frames.add(frames[index])
                previous = frames[index]
            effects = self.emit(ev.MdlRecord(location=HERE, context=self.context(cpu), address=address, va=va, offset=va & MASK,
                                          byte_count=length, pfns=tuple(frames)))
            assert self.machine.mdl(address).pfns == tuple(frames)
        self.leave_routine(cpu, routine)
        for vpn, pfn in zip(vpns, frames, strict=True):
            block.frames[vpn] = pfn
            assert self.machine.space.bound(vpn) == pfn
        handle = MdlH(address, block, va, length)
        self.mdl_table[address] = handle
        return handle

    @rule(target=buffers, mdl=consumes(mdls), cpu=CPUS)
    def free_mdl(self, mdl, cpu):
        routine = self.enter_routine(cpu, "alloc")
        effects = self.emit(replace(self.mdl_free_event(mdl), context=self.context(cpu)))
        self.leave_routine(cpu, routine)
        assert [m.address for m in effects.released] == [mdl.address]
        assert self.machine.mdl(mdl.address) is None
        del self.mdl_table[mdl.address]
        return mdl.block

    # --- lists ----------------------------------------------------------------------------
    def pieces(self, block: BlockH, va: int, length: int) -> list[tuple[int, int, int]]:
        """(transfer offset, physical address, length) of each page piece of a transfer."""
        out = []
        offset = 0
        while offset < length:
            here = va + offset
            n = min(length - offset, PAGE - (here & MASK))
            out.append((offset, (block.frames[here >> SHIFT] << SHIFT) | (here & MASK), n))
            offset += n
        return out

    def draw_transfer(self, data, mdl: MdlH, max_pages: int | None) -> tuple[int, int]:
        """CurrentVa and Length inside the MDL, spanning at most `max_pages` pages."""
        start, length = 0, mdl.length
        if data.draw(TRUTH, label="part of the MDL"):
            start = data.draw(st.integers(0, mdl.length - 1), label="transfer start")
            length = data.draw(st.integers(1, mdl.length - start), label="transfer length")
        va = mdl.va + start
        if max_pages is not None and span_pages(va, length) > max_pages:
            length = max_pages * PAGE - (va & MASK)
        return va, length

    def build(self, mdl: MdlH, cpu: int, data, write: bool) -> ListH:
        adapter = data.draw(st.sampled_from(self.adapters), label="adapter")
        va, length = self.draw_transfer(data, mdl, adapter.budget)
        expected = expected_segments(self.pieces(mdl.block, va, length), adapter.limit)
        pages = span_pages(va, length)
        assert pages <= adapter.budget
        form = data.draw(st.sampled_from(["enter", "call"]), label="form")
        echo = data.draw(st.sampled_from([None, "same", "moved"]), label="sgl record")
        routine = self.enter_routine(cpu, "build")
        sg = self.pool_allocate(cpu, sgl_bytes(pages), self.sg_address(sgl_bytes(pages)))
        first, callback = self.build_events(adapter, mdl, va, length, write, sg.address, sg.size, form, self.STATUS + "SUCCESS")
        effects = self.emit(replace(first, context=self.context(cpu)))
        built = effects.fact("build")
        assert built.status == self.STATUS + "SUCCESS", built
        assert built.map_registers == pages
        created = [s for s in effects.created if getattr(s, "buffer", None) == sg.address]
        assert len(created) == 1 and created[0].live
        sgl = self.machine.sgl_at(sg.address)
        assert sgl is not None and sgl.ordinal == created[0].ordinal
        actual = [(s.bounced, None if s.bounced else s.bus, s.length, s.chunks) for s in sgl.segments]
        assert actual == expected, (actual, expected)
        self.check_bus(self.machine.live_sgls())  # the model's own map registers, before any `sgl` record moves them
        if form == "enter" and callback is not None:
            self.emit(ev.Callback(location=HERE, context=ev.Context(cpu=cpu, irql=DISPATCH_LEVEL), name=callback, arguments=(
                a("DeviceObject", DEVICE), a("Irp", NULL), a("ScatterGather", sg.address), a("Context", LIST_CONTEXT))))
        if echo is not None:
            self.echo_list(cpu, sg.address, moved=echo == "moved")
        if form == "enter":
            if callback is not None:
                self.emit(ev.Done(location=HERE, context=ev.Context(cpu=cpu, irql=DISPATCH_LEVEL), name=callback))
            self.emit(ev.Leave(location=HERE, context=self.context(cpu), name=first.name, result=Symbol(self.STATUS + "SUCCESS")))
        self.leave_routine(cpu, routine)
        block = mdl.block
        offset = va - block.address
        device = block.memory[offset : offset + length].copy()
        handle = ListH(sg.address, sg, mdl, adapter, va, length, write, sgl.ordinal, device, np.zeros(length, dtype=bool))
        self.lists[sg.address] = handle
        return handle

    def echo_list(self, cpu: int, buffer: int, moved: bool) -> None:
        """An `sgl` record of the list just built: the model's elements, or with the bounced
        ones at other map registers (which the model must adopt)."""
        sgl = self.machine.sgl_at(buffer)
        elements = []
        for segment in sgl.segments:
            bus = segment.bus
            if moved and segment.bounced:
                in_page = segment.bus & MASK
                bus = MOVED_WINDOW + self.moved_page * PAGE + in_page
                self.moved_page += (in_page + segment.length + MASK) >> SHIFT
            elements.append(ev.SgElement(bus, segment.length))
        self.emit(ev.SglRecord(location=HERE, context=ev.Context(cpu=cpu, irql=DISPATCH_LEVEL), address=buffer, elements=tuple(elements)))
        after = self.machine.sgl_at(buffer)
        assert after is not None and after.ordinal == sgl.ordinal
        assert [(s.bus, s.length, s.bounced, s.chunks) for s in after.segments] == [
            (e.address, e.length, s.bounced, s.chunks) for e, s in zip(elements, sgl.segments, strict=True)]

    def sg_address(self, size: int) -> int:
        address = self.next_sg
        self.next_sg += (size + 15) & ~15
        return address

    @precondition(lambda self: len(self.lists) < 8)
    @rule(target=reads, mdl=consumes(mdls), cpu=CPUS, data=st.data())
    def build_read(self, mdl, cpu, data):
        return self.build(mdl, cpu, data, write=False)

    @precondition(lambda self: len(self.lists) < 8)
    @rule(target=writes, mdl=consumes(mdls), cpu=CPUS, data=st.data())
    def build_write(self, mdl, cpu, data):
        return self.build(mdl, cpu, data, write=True)

    @rule(mdl=mdls, cpu=CPUS, data=st.data())
    def build_refused(self, mdl, cpu, data):
        """A build the real routine refuses: more pages than the adapter's map registers
        (INSUFFICIENT_RESOURCES), else a buffer too small for the elements (BUFFER_TOO_SMALL).
        The model must compute that status and the same list it would have built, and leave
        no list live and nothing of it on the bus."""
        adapter = data.draw(st.sampled_from(self.adapters), label="adapter")
        va, length = self.draw_transfer(data, mdl, None)
        if span_pages(mdl.va, mdl.length) > adapter.budget and data.draw(TRUTH, label="too many pages"):
            if span_pages(va, mdl.va + mdl.length - va) <= adapter.budget:
                va = mdl.va
            shortest = adapter.budget * PAGE - (va & MASK) + 1  # one byte onto one page more than the budget
            length = data.draw(st.integers(shortest, mdl.va + mdl.length - va), label="oversized length")
        pages = span_pages(va, length)
        expected = expected_segments(self.pieces(mdl.block, va, length), adapter.limit)
        if pages > adapter.budget:
            status, buffer_length = "INSUFFICIENT_RESOURCES", sgl_bytes(pages)
        else:
            status = "BUFFER_TOO_SMALL"
            buffer_length = sgl_bytes(data.draw(st.integers(0, len(expected) - 1), label="elements room"))
        status = self.STATUS + status
        write = data.draw(TRUTH, label="write")
        form = data.draw(st.sampled_from(["enter", "call"]), label="form")
        live_before = {s.ordinal for s in self.machine.live_sgls()}
        routine = self.enter_routine(cpu, "build")
        sg = self.pool_allocate(cpu, buffer_length, self.sg_address(buffer_length))
        first, _ = self.build_events(adapter, mdl, va, length, write, sg.address, buffer_length, form, status)
        first = replace(first, context=self.context(cpu))
        if form == "enter":
            # At `enter` the capture has not said yet how the call ends: no verdict on the status yet;
            # the `leave` with the failure status removes the list the `enter` made.
            effects = self.emit(first)
            assert effects.fact("status-differs") is None
            leave = self.emit(ev.Leave(location=HERE, context=self.context(cpu), name=first.name, result=Symbol(status)),
                              allowed={"failed": Symbol(status)})
            released = [s for s in leave.released if getattr(s, "buffer", None) == sg.address]
            assert len(released) == 1
        else:
            effects = self.emit(first, allowed={"failed": Symbol(status)})
            assert not [s for s in effects.created if getattr(s, "buffer", None) == sg.address]
        built = effects.fact("build")
        assert built.status == status, (built.status, status)
        assert built.map_registers == pages
        assert [(s.bounced, None if s.bounced else s.bus, s.length, s.chunks) for s in built.segments] == expected
        assert built.bytes_needed == sgl_bytes(len(expected))
        assert self.machine.sgl_at(sg.address) is None
        assert {s.ordinal for s in self.machine.live_sgls()} == live_before
        for segment in built.segments:  # nothing of the refused list is left on the bus
            assert not [p for p in self.machine.resolve_bus_range(segment.bus, segment.length)
                        if p.state == "live" and p.entry.kind == "sgl" and p.entry.key not in live_before], segment
        self.pool_free(cpu, sg)
        self.leave_routine(cpu, routine)

    def put(self, handle: ListH, cpu: int) -> MdlH:
        sgl = self.machine.sgl_at(handle.buffer)
        routine = self.enter_routine(cpu, "put")
        effects = self.emit(replace(self.put_event(handle.adapter, handle.buffer, handle.write), context=self.context(cpu)))
        assert effects.fact("put-direction") == handle.write
        assert [(s.ordinal, s.live) for s in effects.released] == [(handle.ordinal, False)]
        del self.lists[handle.buffer]
        self.put_buffers.add(handle.buffer)
        assert self.machine.sgl_at(handle.buffer) is None
        assert all(s.buffer != handle.buffer for s in self.machine.live_sgls())
        block = handle.mdl.block
        offset = handle.block_offset
        now = view(self.machine.cpu_view(handle.current_va, handle.length))
        if not handle.write:
            # The device's bytes are in the driver's buffer now, bounced or not.
            assert np.array_equal(now[handle.written], handle.device[handle.written]), "device writes lost at put"
            for segment in sgl.segments:
                if segment.bounced:
                    lo, hi = segment.offset, segment.offset + segment.length
                    # bytes the device did not write come back from the map registers: unspecified
                    block.memory[offset + lo : offset + hi] = np.where(handle.written[lo:hi], handle.device[lo:hi], now[lo:hi])
        self.pool_free(cpu, handle.sg)  # the caller's list buffer, only after the put
        self.leave_routine(cpu, routine)
        return handle.mdl

    @rule(target=mdls, handle=consumes(reads), cpu=CPUS)
    def put_read(self, handle, cpu):
        return self.put(handle, cpu)

    @rule(target=mdls, handle=consumes(writes), cpu=CPUS)
    def put_write(self, handle, cpu):
        return self.put(handle, cpu)

    # --- the device and the CPU -------------------------------------------------------------
    def draw_element_range(self, data, handle: ListH):
        sgl = self.machine.sgl_at(handle.buffer)
        index = data.draw(st.integers(0, len(sgl.segments) - 1), label="element")
        segment = sgl.segments[index]
        start = data.draw(st.integers(0, segment.length - 1), label="from")
        length = data.draw(st.integers(1, segment.length - start), label="bytes")
        return sgl, index, segment, start, length

    def check_access(self, effects, sgl, index: int, bus: int, length: int) -> None:
        assert [(p.start, p.length, p.state) for p in effects.accesses] == [(bus, length, "live")], effects.accesses
        entry = effects.accesses[0].entry
        assert (entry.kind, entry.key, entry.index) == ("sgl", sgl.ordinal, index)
        assert self.machine.owner(entry).ordinal == sgl.ordinal

    @rule(handle=reads, cpu=CPUS, data=st.data())
    def device_writes(self, handle, cpu, data):
        """The device writes into an element of a list that reads from it."""
        sgl, index, segment, start, length = self.draw_element_range(data, handle)
        if data.draw(TRUTH, label="fill"):
            fill, pattern = data.draw(st.integers(0, 255), label="fill byte"), None
        else:
            fill, pattern = None, data.draw(st.binary(min_size=1, max_size=8), label="data")
        self.device_write(handle, cpu, sgl, index, start, length, fill, pattern)

    def device_write(self, handle: ListH, cpu: int, sgl, index: int, start: int, length: int, fill, pattern) -> None:
        segment = sgl.segments[index]
        effects = self.emit(ev.DmaAccess(location=HERE, context=ev.Context(cpu=cpu, irql=DIRQL), access="write",
                                      address=segment.bus + start, length=length, fill=fill, data=pattern))
        self.check_access(effects, sgl, index, segment.bus + start, length)
        written = payload(length, fill, pattern)
        offset = segment.offset + start
        va = handle.current_va + offset
        block = handle.mdl.block
        at = handle.block_offset + offset
        before = block.memory[at : at + length].copy()
        handle.device[offset : offset + length] = written
        handle.written[offset : offset + length] = True
        cpu_sees = view(self.machine.cpu_view(va, length))
        assert np.array_equal(view(self.machine.device_view(va, length)), written), "device_view misses the device's write"
        if segment.bounced:
            # in the map registers until the put: the CPU still reads its old bytes
            assert np.array_equal(cpu_sees, before), "bounced write reached memory before the put"
            assert np.array_equal(cpu_sees, written) == np.array_equal(before, written)
        else:
            assert np.array_equal(cpu_sees, written), "direct write not in memory at once"
            block.memory[at : at + length] = written

    @rule(target=mdls, mdl=consumes(mdls), cpu=CPUS, data=st.data())
    def read_whole_buffer(self, mdl, cpu, data):
        """A whole read in one step: build a list that reads from the device, the device fills
        every element with a pattern, put. The buffer then holds data other than zeros, which
        a later list that writes to the device must send."""
        handle = self.build(mdl, cpu, data, write=False)
        sgl = self.machine.sgl_at(handle.buffer)
        pattern = data.draw(st.binary(min_size=1, max_size=16), label="pattern")
        for index, segment in enumerate(sgl.segments):
            self.device_write(handle, cpu, sgl, index, 0, segment.length, None, pattern)
        return self.put(handle, cpu)

    @precondition(lambda self: bool(self.lists))  # a one_of of bundles does not disable the rule by itself
    @rule(handle=st.one_of(reads, writes), cpu=CPUS, data=st.data())
    def device_reads(self, handle, cpu, data):
        """The device reads an element: it must get the driver's bytes for a write list
        (from the map registers where the page bounced)."""
        sgl, index, segment, start, length = self.draw_element_range(data, handle)
        effects = self.emit(ev.DmaAccess(location=HERE, context=ev.Context(cpu=cpu, irql=DIRQL), access="read",
                                      address=segment.bus + start, length=length))
        self.check_access(effects, sgl, index, segment.bus + start, length)
        if handle.write:
            memory = self.machine.bounce_memory if segment.bounced else self.machine.ram
            got = view(memory.read(segment.bus + start, length))
            at = handle.block_offset + segment.offset + start
            assert np.array_equal(got, handle.mdl.block.memory[at : at + length]), "device reads other than the driver's bytes"

    @rule(handle=writes, cpu=CPUS, data=st.data())
    def cpu_reads_sent_data(self, handle, cpu, data):
        """The driver reads a buffer the device is reading from (harmless): the model says
        which block and which live list the range belongs to."""
        start = data.draw(st.integers(0, handle.length - 1), label="from")
        length = data.draw(st.integers(1, handle.length - start), label="bytes")
        effects = self.emit(ev.MemAccess(location=HERE, context=self.context(cpu), access="read",
                                      address=handle.current_va + start, length=length))
        assert effects.fact("pool-block").address == handle.mdl.block.address
        assert [s.ordinal for s in effects.fact("live-lists")] == [handle.ordinal]

    @rule(mdl=mdls, cpu=CPUS, data=st.data())
    def cpu_reads(self, mdl, cpu, data):
        """The driver reads a buffer no list maps."""
        start = data.draw(st.integers(0, mdl.length - 1), label="from")
        length = data.draw(st.integers(1, mdl.length - start), label="bytes")
        effects = self.emit(ev.MemAccess(location=HERE, context=self.context(cpu), access="read", address=mdl.va + start, length=length))
        assert effects.fact("pool-block").address == mdl.block.address
        assert effects.fact("live-lists") is None

    # --- invariants -------------------------------------------------------------------------
    @invariant()
    def live_lists_are_those_built_and_not_put(self):
        live = {s.buffer: s for s in self.machine.live_sgls()}
        assert set(live) == set(self.lists), (sorted(map(hex, live)), sorted(map(hex, self.lists)))
        for buffer, handle in self.lists.items():
            sgl = self.machine.sgl_at(buffer)
            assert sgl is live[buffer] and sgl.live
            assert (sgl.ordinal, sgl.mdl, sgl.current_va, sgl.length, sgl.write_to_device) == (
                handle.ordinal, handle.mdl.address, handle.current_va, handle.length, handle.write)
            assert sgl.status.endswith("SUCCESS")
        for buffer in self.put_buffers:
            assert self.machine.sgl_at(buffer) is None

    @invariant()
    def lists_are_their_pages(self):
        """Elements cover the transfer in order and sum to Length; each is what the pages
        behind it give (see expected_segments): ascending contiguous direct pages are one
        element, unreachable pages bounce, map registers keep the byte offset in the page,
        and every element is within the device's reach."""
        for handle in self.lists.values():
            sgl = self.machine.sgl_at(handle.buffer)
            assert sum(s.length for s in sgl.segments) == handle.length
            assert [s.offset for s in sgl.segments] == list(accumulate((s.length for s in sgl.segments[:-1]), initial=0))
            expected = expected_segments(self.pieces(handle.mdl.block, handle.current_va, handle.length), handle.adapter.limit)
            assert [(s.bounced, None if s.bounced else s.bus, s.length, s.chunks) for s in sgl.segments] == expected
            for segment in sgl.segments:
                assert segment.end - 1 <= handle.adapter.limit
                assert segment.bus & MASK == segment.chunks[0][0] & MASK
                if segment.bounced:
                    assert WINDOW[0] <= segment.bus and segment.end <= WINDOW[1]

    @invariant()
    def map_registers_within_budget(self):
        for handle in self.lists.values():
            sgl = self.machine.sgl_at(handle.buffer)
            assert sgl.map_registers == span_pages(handle.current_va, handle.length) <= handle.adapter.budget

    @invariant()
    def live_elements_do_not_share_the_bus(self):
        self.check_bus(self.machine.sgl_at(h.buffer) for h in self.lists.values())

    def check_bus(self, sgls) -> None:
        """No two live elements overlap on the bus, no two share a map register, and the bus
        index resolves each element to its own list."""
        segments = sorted((s.bus, s.end, s.bounced, sgl.ordinal, i) for sgl in sgls for i, s in enumerate(sgl.segments))
        for (_, end, _, *_), (bus, *_) in zip(segments, segments[1:], strict=False):
            assert end <= bus, segments
        registers = [page for bus, end, bounced, *_ in segments if bounced for page in range(bus >> SHIFT, ((end - 1) >> SHIFT) + 1)]
        assert len(registers) == len(set(registers)), "two live lists share a map register"
        for bus, end, _, ordinal, index in segments:
            pieces = self.machine.resolve_bus_range(bus, end - bus)
            assert [(p.state, p.entry.key, p.entry.index) for p in pieces] == [("live", ordinal, index)], pieces

    @invariant()
    def memory_is_what_cpu_and_device_must_see(self):
        """The CPU reads exactly the bytes the test expects in every described page; the
        device view of a live list shows what the device wrote (bounced or not) and, for a
        list that writes to the device, the driver's bytes, which the map registers hold."""
        for block in self.blocks.values():
            if block.memory is None:
                continue
            for vpn in sorted(block.frames):
                lo, hi = max(block.address, vpn << SHIFT), min(block.end, (vpn + 1) << SHIFT)
                got = view(self.machine.cpu_view(lo, hi - lo))
                assert np.array_equal(got, block.memory[lo - block.address : hi - block.address]), f"cpu_view at {lo:#x}"
        for handle in self.lists.values():
            sgl = self.machine.sgl_at(handle.buffer)
            device = view(self.machine.device_view(handle.current_va, handle.length))
            known = np.ones(handle.length, dtype=bool) if handle.write else handle.written.copy()
            for segment in sgl.segments:
                if not segment.bounced and not handle.write:
                    known[segment.offset : segment.offset + segment.length] = True  # memory itself
            expected = handle.device.copy()
            if not handle.write:
                at = handle.block_offset
                expected = np.where(handle.written, handle.device, handle.mdl.block.memory[at : at + handle.length])
            assert np.array_equal(device[known], expected[known]), f"device_view of {handle!r}"
            for segment in sgl.segments:
                if segment.bounced:
                    lo, hi = segment.offset, segment.offset + segment.length
                    held = view(self.machine.bounce_memory.read(segment.bus, segment.length))
                    mask = known[lo:hi]
                    assert np.array_equal(held[mask], expected[lo:hi][mask]), f"map registers of {handle!r} at {segment.bus:#x}"

    @invariant()
    def pool_balances(self):
        live = {b.address: b.size for b in self.machine.live_blocks()}
        assert live == {address: b.size for address, b in self.blocks.items()}
        assert self.machine.pool.live_bytes == sum(b.size for b in self.blocks.values())
        assert len(self.machine.live_blocks()) == len(self.blocks)
        assert self.machine.pool.allocated == self.allocations

    @invariant()
    def mdls_are_those_allocated_and_not_freed(self):
        live = {m.address: m for m in self.machine.live_mdls()}
        assert set(live) == set(self.mdl_table)
        for address, handle in self.mdl_table.items():
            assert (live[address].va, live[address].byte_count, live[address].resident) == (handle.va, handle.length, True)

    @invariant()
    def cpus_are_back_at_rest(self):
        assert self.machine.open_frames() == []
        for cpu in range(4):
            assert self.machine.held_locks(cpu) == ()
            assert self.machine.irql(cpu) in (None, PASSIVE_LEVEL)

    def teardown(self):
        """Put, free and release everything; the machine must then hold nothing."""
        if sys.exc_info()[0] is not None or not self.adapters:
            return  # a step failed: let its error stand
        for handle in list(self.lists.values()):
            self.put(handle, 0)
        for mdl in list(self.mdl_table.values()):
            self.free_mdl(mdl, 0)
        for block in list(self.blocks.values()):
            self.pool_free(0, block)
        self.pool_balances()
        assert self.machine.live_sgls() == () and self.machine.live_mdls() == () and self.machine.live_blocks() == ()
        assert self.machine.pool.live_bytes == 0
        assert self.machine.bus.live_entries() == 0


class WdmMachine(DriverMachine):
    """A WDM bus-master driver with a 64-bit and a 32-bit adapter."""

    STATUS = "STATUS_"
    ROUTINES = {"alloc": None, "build": "DpcForIsr", "put": "DpcForIsr"}

    def setup_adapters(self, data) -> list[AdapterH]:
        budget_32 = data.draw(st.sampled_from([4, 8, 16, 33]), label="32-bit map registers")
        adapters = [AdapterH("64-bit", ADAPTER_64, LIMIT_64, 33), AdapterH("32-bit", ADAPTER_32, LIMIT_32, budget_32)]
        for adapter in adapters:
            dma64 = adapter.limit == LIMIT_64
            description = Struct((
                ("Version", Symbol("DEVICE_DESCRIPTION_VERSION2")), ("Master", True), ("ScatterGather", True),
                ("Dma32BitAddresses", not dma64), ("Dma64BitAddresses", dma64), ("MaximumLength", 0x20000)))
            effects = self.emit(ev.Call(location=HERE, context=self.context(0), name="IoGetDmaAdapter", arguments=(
                a("PhysicalDeviceObject", PDO), a("DeviceDescription", description),
                a("NumberOfMapRegisters", adapter.budget, out=True)), result=adapter.address))
            made = effects.created[0]
            assert (made.address, made.limit, made.map_registers) == (adapter.address, adapter.limit, adapter.budget)
        return adapters

    def allocate_event(self, size, address):
        return ev.Call(location=HERE, name="ExAllocatePool2", arguments=(
            a("Flags", Symbol("POOL_FLAG_NON_PAGED")), a("NumberOfBytes", size), a("Tag", TAG)), result=address)

    def free_event(self, block):
        return ev.Call(location=HERE, name="ExFreePoolWithTag", arguments=(a("P", block.address), a("Tag", TAG)))

    def mdl_events(self, address, va, length):
        return [
            ev.Call(location=HERE, name="IoAllocateMdl", arguments=(
                a("VirtualAddress", va), a("Length", length), a("SecondaryBuffer", False), a("ChargeQuota", False),
                a("Irp", NULL)), result=address),
            ev.Call(location=HERE, name="MmBuildMdlForNonPagedPool", arguments=(a("MemoryDescriptorList", address),)),
        ]

    def mdl_free_event(self, mdl):
        return ev.Call(location=HERE, name="IoFreeMdl", arguments=(a("Mdl", mdl.address),))

    def build_events(self, adapter, mdl, va, length, write, buffer, buffer_length, form, result):
        arguments = (
            a("DmaAdapter", adapter.address), a("DeviceObject", DEVICE), a("Mdl", mdl.address), a("CurrentVa", va),
            a("Length", length), a("ExecutionRoutine", EXECUTION_ROUTINE), a("Context", LIST_CONTEXT),
            a("WriteToDevice", write), a("ScatterGatherBuffer", buffer), a("ScatterGatherLength", buffer_length))
        if form == "enter":
            return ev.Enter(location=HERE, name="BuildScatterGatherList", arguments=arguments), "AdapterListControl"
        return ev.Call(location=HERE, name="BuildScatterGatherList", arguments=arguments, result=Symbol(result)), None

    def put_event(self, adapter, buffer, write):
        return ev.Call(location=HERE, name="PutScatterGatherList", arguments=(
            a("DmaAdapter", adapter.address), a("ScatterGather", buffer), a("WriteToDevice", write)))


class StorPortMachine(DriverMachine):
    """A StorPort miniport: one adapter declared by `@adapter storport`."""

    STATUS = "STOR_STATUS_"
    ROUTINES = {"alloc": "HwStorBuildIo", "build": "HwStorStartIo", "put": "HwStorDpcRoutine"}

    def setup_adapters(self, data) -> list[AdapterH]:
        dma64 = data.draw(TRUTH, label="dma64")
        budget = data.draw(st.sampled_from([4, 8, 17, 33]), label="map registers")
        self.machine.apply(ev.AdapterDirective(location=HERE, kind="storport", dma64=dma64, scatter_gather=True,
                                            maximum_length=0x20000, map_registers=budget))
        return [AdapterH("storport 64-bit" if dma64 else "storport 32-bit", None, LIMIT_64 if dma64 else LIMIT_32, budget)]

    def allocate_event(self, size, address):
        return ev.Call(location=HERE, name="StorPortAllocatePool", arguments=(
            a("HwDeviceExtension", HW_EXTENSION), a("NumberOfBytes", size), a("Tag", TAG), a("BufferPointer", address, out=True)),
            result=Symbol("STOR_STATUS_SUCCESS"))

    def free_event(self, block):
        return ev.Call(location=HERE, name="StorPortFreePool", arguments=(
            a("HwDeviceExtension", HW_EXTENSION), a("BufferPointer", block.address)), result=Symbol("STOR_STATUS_SUCCESS"))

    def mdl_events(self, address, va, length):
        return [
            ev.Call(location=HERE, name="StorPortAllocateMdl", arguments=(
                a("HwDeviceExtension", HW_EXTENSION), a("BufferPointer", va), a("NumberOfBytes", length),
                a("Mdl", address, out=True)), result=Symbol("STOR_STATUS_SUCCESS")),
            ev.Call(location=HERE, name="StorPortBuildMdlForNonPagedPool", arguments=(
                a("HwDeviceExtension", HW_EXTENSION), a("Mdl", address)), result=Symbol("STOR_STATUS_SUCCESS")),
        ]

    def mdl_free_event(self, mdl):
        return ev.Call(location=HERE, name="StorPortFreeMdl", arguments=(
            a("HwDeviceExtension", HW_EXTENSION), a("Mdl", mdl.address)), result=Symbol("STOR_STATUS_SUCCESS"))

    def build_events(self, adapter, mdl, va, length, write, buffer, buffer_length, form, result):
        arguments = (
            a("HwDeviceExtension", HW_EXTENSION), a("Mdl", mdl.address), a("CurrentVa", va), a("Length", length),
            a("ExecutionRoutine", EXECUTION_ROUTINE), a("Context", LIST_CONTEXT), a("WriteToDevice", write),
            a("ScatterGatherBuffer", buffer), a("ScatterGatherBufferLength", buffer_length))
        if form == "enter":
            return ev.Enter(location=HERE, name="StorPortBuildScatterGatherList", arguments=arguments), "HwDmaStarted"
        return ev.Call(location=HERE, name="StorPortBuildScatterGatherList", arguments=arguments, result=Symbol(result)), None

    def put_event(self, adapter, buffer, write):
        return ev.Call(location=HERE, name="StorPortPutScatterGatherList", arguments=(
            a("HwDeviceExtension", HW_EXTENSION), a("ScatterGatherList", buffer), a("WriteToDevice", write)),
            result=Symbol("STOR_STATUS_SUCCESS"))


STATEFUL = settings(max_examples=50, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

TestWdmDriver = WdmMachine.TestCase
TestWdmDriver.settings = STATEFUL
TestStorPortMiniport = StorPortMachine.TestCase
TestStorPortMiniport.settings = STATEFUL


# --- regressions: model bugs these machines found -------------------------------------------

ADAPTER_32_CALL = ev.Call(location=HERE, context=ev.Context(cpu=0, irql=PASSIVE_LEVEL), name="IoGetDmaAdapter", arguments=(
    a("PhysicalDeviceObject", PDO),
    a("DeviceDescription", Struct((("Version", Symbol("DEVICE_DESCRIPTION_VERSION2")), ("Master", True), ("ScatterGather", True),
                                   ("Dma32BitAddresses", True), ("Dma64BitAddresses", False), ("MaximumLength", 0x20000)))),
    a("NumberOfMapRegisters", 33, out=True)), result=ADAPTER_32)


def _one_page_list(machine: Machine, index: int, frame: int, write: bool = False):
    """A page of pool at frame `frame`, its MDL, and a one-page list built on the 32-bit adapter."""
    va, mdl, buffer = 0xFFFFB00000010000 + index * 0x10000, 0xFFFFE00000300000 + index * 0x100, 0xFFFFB00020000000 + index * 0x100
    passive, dispatch = ev.Context(cpu=0, irql=PASSIVE_LEVEL), ev.Context(cpu=0, irql=DISPATCH_LEVEL)
    for event in (
        ev.Call(location=HERE, context=passive, name="ExAllocatePool2", arguments=(
            a("Flags", Symbol("POOL_FLAG_NON_PAGED")), a("NumberOfBytes", PAGE), a("Tag", TAG)), result=va),
        ev.Call(location=HERE, context=passive, name="IoAllocateMdl", arguments=(
            a("VirtualAddress", va), a("Length", PAGE), a("SecondaryBuffer", False), a("ChargeQuota", False), a("Irp", NULL)),
            result=mdl),
        ev.Call(location=HERE, context=passive, name="MmBuildMdlForNonPagedPool", arguments=(a("MemoryDescriptorList", mdl),)),
        ev.MdlRecord(location=HERE, context=passive, address=mdl, va=va, offset=0, byte_count=PAGE, pfns=(frame,)),
        ev.Call(location=HERE, context=dispatch, name="BuildScatterGatherList", arguments=(
            a("DmaAdapter", ADAPTER_32), a("DeviceObject", DEVICE), a("Mdl", mdl), a("CurrentVa", va), a("Length", PAGE),
            a("ExecutionRoutine", EXECUTION_ROUTINE), a("Context", LIST_CONTEXT), a("WriteToDevice", write),
            a("ScatterGatherBuffer", buffer), a("ScatterGatherLength", sgl_bytes(1))), result=Symbol("STATUS_SUCCESS")),
    ):
        machine.apply(event)
    return machine.sgl_at(buffer)


def _put(buffer: int, write: bool = False) -> ev.Call:
    return ev.Call(location=HERE, context=ev.Context(cpu=0, irql=DISPATCH_LEVEL), name="PutScatterGatherList", arguments=(
        a("DmaAdapter", ADAPTER_32), a("ScatterGather", buffer), a("WriteToDevice", write)))


def _two_bounced_lists():
    """Two one-page read lists on the 32-bit adapter, both pages above 4 GiB: the model gives
    them neighbouring map registers."""
    machine = Machine()
    machine.apply(ADAPTER_32_CALL)
    return machine, _one_page_list(machine, 0, 0x200000), _one_page_list(machine, 1, 0x200001)


def test_put_keeps_the_next_lists_map_register_data():
    """Putting one list must not touch another live list's map registers. (Found by the machines
    above: the put used to discard one page too many when the element started and ended on a
    page boundary, which was the next list's first register.)"""
    machine, first, second = _two_bounced_lists()
    assert first.segments[0].bounced and second.segments[0].bounced
    assert second.segments[0].bus == first.segments[0].end  # neighbours in the map-register window
    machine.apply(ev.DmaAccess(location=HERE, access="write", address=second.segments[0].bus, length=PAGE, fill=0xCD))
    assert machine.device_view(second.current_va, PAGE) == b"\xcd" * PAGE
    machine.apply(_put(first.buffer))
    assert machine.device_view(second.current_va, PAGE) == b"\xcd" * PAGE
    machine.apply(_put(second.buffer))
    assert machine.cpu_view(second.current_va, PAGE) == b"\xcd" * PAGE


def test_map_register_window_does_not_alias_ram():
    """A driver page a capture puts at frame 0x7F000 (below 4 GiB: direct for a 32-bit device)
    must not share its bus address with another list's map register: the window skips frames
    that are RAM in use, so the device's write for the first list lands in the first list."""
    machine = Machine()
    machine.apply(ADAPTER_32_CALL)
    direct = _one_page_list(machine, 0, WINDOW[0] >> SHIFT)
    bounced = _one_page_list(machine, 1, 0x200001)
    assert not direct.segments[0].bounced and bounced.segments[0].bounced
    effects = machine.apply(ev.DmaAccess(location=HERE, access="write", address=direct.segments[0].bus, length=0x10, fill=0xAB))
    assert [p.entry.key for p in effects.accesses] == [direct.ordinal]
    machine.apply(_put(direct.buffer))
    assert machine.cpu_view(direct.current_va, 0x10) == b"\xab" * 0x10


def test_layout_never_hands_out_map_register_frames():
    """The default layout used to give 18 of its first 20,000 frames inside the window."""
    machine = Machine()
    frames = {machine.space.pfn(vpn) for vpn in range(0x10000, 0x10000 + 20_000)}
    assert not frames & set(machine.memory.window.frames)
