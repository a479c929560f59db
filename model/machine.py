"""The simulated machine: `Machine().apply(record) -> Effects`, and questions about its state.

The machine replays a trace in order. Each DDI the model knows changes state the way its
documentation says, with the effect its captured return value implies (a failed call does
nothing; a free by the wrong family still frees). `Effects` says what one record did:
objects created and released (as frozen snapshots carrying the events' locations), the
device-access pieces, and `facts`: plain observations a rule may judge ("this block was
already freed at line 40"), never verdicts.

State is kept for live objects (and a bounded memory of recently released ones), never for
the events seen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .adapter import Adapter, adapter_from_description
from .bus import BusEntry, BusIndex, Resolution
from .common_buffer import CommonBuffer
from .cpu import CpuState, Frame, HeldLock
from .events import (
    AdapterDirective,
    Call,
    Callback,
    DmaAccess,
    Done,
    DriverDirective,
    Enter,
    Event,
    Leave,
    MdlRecord,
    MemAccess,
    MemoryDirective,
    Record,
    SglRecord,
    TargetDirective,
)
from .intervals import IntervalMap
from .irql import DIRQL, DISPATCH_LEVEL, Irql
from .location import SourceLocation
from .mdl import Mdl
from .memory import AddressSpace, PhysicalMemory, pattern
from .platform import Target
from .pool import Block, PoolTable
from .sgl import ListBuild, MapRegisterWindow, Segment, SgList, build_list, segments_from_capture
from .status import is_success
from .values import Symbol, Value, as_int

__all__ = ["DEFAULT_CPU", "Effects", "Machine", "MemoryConfig", "RETIRED_MEMORY"]

DEFAULT_CPU = 0
RETIRED_MEMORY = 1 << 16  # put lists and freed MDLs / common buffers remembered
GIB = 1 << 30

# Routines the system runs, and the level it runs them at (wdm.h, storport.h callback pages).
ROUTINE_IRQL: dict[str, Irql] = {
    **{name: DISPATCH_LEVEL for name in ("AdapterControl", "AdapterListControl", "StartIo", "DpcForIsr", "CustomDpc",
                                        "HwStorStartIo", "HwStorBuildIo", "HwStorDpcRoutine", "HwStorTimer")},
    **{name: DIRQL for name in ("InterruptService", "HwStorInterrupt", "HwMSIInterruptRoutine", "SynchCritSection")},
}
# DDIs that run a driver routine (a `callback` inside their `enter`) at DISPATCH_LEVEL.
RUNS_ROUTINE_AT_DISPATCH = {
    "AllocateAdapterChannel", "AllocateAdapterChannelEx", "BuildScatterGatherList", "BuildScatterGatherListEx",
    "GetScatterGatherList", "GetScatterGatherListEx", "StorPortBuildScatterGatherList",
}

_POOL_FLAG_PAGED = 0x100


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """`@memory`, with the format's defaults: 16 GiB, fragmented layout, seed 0."""

    size: int = 16 * GIB
    layout: str = "fragmented"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Effects:
    """What one record did to the machine.

    `irql` is the level the event ran at (the captured `irql=` where given, else the model's
    bookkeeping), `modelled_irql` what the bookkeeping alone says. `created` and `released`
    hold snapshots of the objects after the event; `previous` snapshots of objects as they
    were before it changed them (the block a double free finds already freed, the list a
    build finds in its buffer). `facts` are (key, value) observations; see `Machine` for the keys.
    """

    record: Record
    cpu: int | None = None
    irql: Irql | None = None
    modelled_irql: Irql | None = None
    created: tuple[Any, ...] = ()
    released: tuple[Any, ...] = ()
    previous: tuple[Any, ...] = ()
    accesses: tuple[Resolution, ...] = ()
    facts: tuple[tuple[str, Any], ...] = ()

    def fact(self, key: str, default: Any = None) -> Any:
        for name, value in self.facts:
            if name == key:
                return value
        return default


class _Builder:
    """Collects one record's effects while a handler runs."""

    __slots__ = ("created", "released", "previous", "accesses", "facts")

    def __init__(self) -> None:
        self.created: list[Any] = []
        self.released: list[Any] = []
        self.previous: list[Any] = []
        self.accesses: tuple[Resolution, ...] = ()
        self.facts: list[tuple[str, Any]] = []

    def fact(self, key: str, value: Any = True) -> None:
        self.facts.append((key, value))


def _bool(value: Value | None) -> bool | None:
    if isinstance(value, bool):
        return value
    number = as_int(value)
    return None if number is None else bool(number)


def _irql(value: Value | None) -> Irql | None:
    if isinstance(value, Symbol):
        try:
            return Irql.from_name(value.name.removesuffix("_LEVEL") if value.name.endswith("_LEVEL") else value.name)
        except KeyError:
            return None
    number = as_int(value)
    if number is None or not 0 <= number <= 31:
        return None
    return Irql.from_number(number)


def _symbol(value: Value | None) -> str | None:
    return value.name if isinstance(value, Symbol) else None


class Machine:
    """The machine a trace drives. Feed it every record in order with `apply`.

    Facts it reports (key: value):
      irql-differs: the modelled Irql when a captured `irql=` disagrees with it
      routine-irql: (expected, captured) for a routine the system runs at a fixed level
      failed: the captured status of a call that did not take effect
      unhandled: True for a call the model does not simulate
      no-open-enter / no-open-callback: a `leave` / `done` that matches nothing open
      block-freed-before: the Block (already freed) a free found; not-allocated: the address
      inside-block: the live Block an address points into; free-family / free-tag: what the free used
      common-buffer-freed-as-pool: the CommonBuffer a pool free hit
      live-lists-in-buffer: lists whose caller buffer a free releases while live
      mdl-freed-before / mdl-unknown / mdl-live-lists / mdl-lock: MDL lifecycle observations
      pfn-count: (expected, captured) when an `mdl` record's PFN array does not span its buffer
      unknown-adapter / adapter-put: the adapter address a call used / the Adapter put earlier
      outstanding: (lists, common buffers, channels) still held when PutDmaAdapter runs
      build: the ListBuild the model made; status-differs: (model status, captured status)
      outside-mdl: why CurrentVa/Length leave the MDL chain; buffer-live: the SgList still in the buffer
      list-unknown / list-put-before: a put of a pointer never built / already put (the SgList)
      put-direction: WriteToDevice the put passed; sgl-differs: the differences of a captured list
      list-for-sgl-unknown: an `sgl` record for a buffer no build produced
      calculated: (ScatterGatherListSize, NumberOfMapRegisters) the model computes
      common-buffer-mismatch: ((parameter, freed, allocated), ...); common-buffer-freed-before
      channel-open / unflushed: an adapter channel already open / transfers not flushed
      lock-held / lock-not-held / lock-family: spin lock observations; locks-held-at-done
      done-irql: (entry, at return) of a routine
      pool-block / freed-block / live-lists: for a `mem` access, what it touched
    """

    def __init__(self, target: Target | None = None, memory: MemoryConfig | None = None) -> None:
        self.target = target or Target()
        self.memory_config = memory or MemoryConfig()
        self.driver: dict[str, Value] = {}
        self.cpus: dict[int, CpuState] = {}
        self.pool = PoolTable()
        self.adapters: dict[int, Adapter] = {}
        self.storport_adapter: Adapter | None = None
        self.mdls: dict[int, Mdl] = {}
        self.freed_mdls: OrderedDict[int, Mdl] = OrderedDict()
        self.lists: dict[int, SgList] = {}  # live, by ordinal
        self.list_in_buffer: dict[int, int] = {}  # buffer pointer -> ordinal of the newest live list
        self.put_lists: OrderedDict[int, SgList] = OrderedDict()  # buffer -> the last list put from it
        self.common_buffers: IntervalMap[CommonBuffer] = IntervalMap()
        self.freed_common_buffers: OrderedDict[int, CommonBuffer] = OrderedDict()
        self.transfers: dict[tuple, tuple[int, Segment, bool, SourceLocation]] = {}
        self.channels: dict[int, SourceLocation] = {}
        self.events = 0
        self._ordinal = 0
        self._pending: dict[int, dict[str, int]] = {}
        self._reset_memory()
        self._handlers = self._handler_table()

    # --- state that depends on the target and @memory ---------------------------------

    def _reset_memory(self) -> None:
        page = self.target.page_size
        config = self.memory_config
        self.ram = PhysicalMemory(config.size, page)
        self.bounce_memory = PhysicalMemory(1 << 32, page)
        self.space = AddressSpace(self.ram, config.layout, config.seed)
        self.window = MapRegisterWindow(page_size=page)
        self.bus = BusIndex(page)
        self._list_pages: dict[int, set[int]] = {}
        self._next_logical = 0x10000000  # common buffers without a captured logical address

    def _next(self) -> int:
        self._ordinal += 1
        return self._ordinal

    # --- the entry point --------------------------------------------------------------

    def apply(self, record: Record) -> Effects:
        """Replay one record; returns what it did."""
        if not isinstance(record, Event):
            self._directive(record)
            return Effects(record)
        self.events += 1
        out = _Builder()
        cpu = self.cpu_of(record)
        modelled = cpu.irql
        captured = record.context.irql
        if isinstance(record, Callback):
            irql = self._callback(record, cpu, out)
        elif isinstance(record, Done):
            irql = self._done(record, cpu, out)
        elif isinstance(record, DmaAccess):
            # the device is not a CPU: a dma line's cpu=/irql= do not change any CPU's state
            irql = captured
            self._dma(record, out)
        else:
            if captured is not None and modelled is not None and captured != modelled:
                out.fact("irql-differs", modelled)
            irql = captured if captured is not None else modelled
            cpu.irql = irql
            if isinstance(record, Call):
                self._invoke(record, cpu, out, record.result, phase="call")
            elif isinstance(record, Enter):
                cpu.frames.append(Frame("enter", record.name, record.location, irql, irql))
                self._invoke(record, cpu, out, None, phase="enter")
            elif isinstance(record, Leave):
                self._leave(record, cpu, out)
            elif isinstance(record, MemAccess):
                self._mem(record, out)
            elif isinstance(record, MdlRecord):
                self._mdl_record(record, out)
            elif isinstance(record, SglRecord):
                self._sgl_record(record, out)
        return Effects(
            record,
            cpu.number,
            irql,
            modelled,
            tuple(out.created),
            tuple(out.released),
            tuple(out.previous),
            out.accesses,
            tuple(out.facts),
        )

    def _directive(self, record: Record) -> None:
        if isinstance(record, TargetDirective):
            self.target = Target(arch=record.arch or self.target.arch, page_size=record.page_size or self.target.page_size)
            self._reset_memory()
        elif isinstance(record, MemoryDirective):
            default = MemoryConfig()
            self.memory_config = MemoryConfig(
                size=default.size if record.size is None else record.size,
                layout=record.layout or default.layout,
                seed=default.seed if record.seed is None else record.seed,
            )
            self._reset_memory()
        elif isinstance(record, DriverDirective):
            self.driver.update(record.fields)
        elif isinstance(record, AdapterDirective):
            adapter = Adapter(
                address=record.address,
                kind=record.kind,
                version=None,
                master=True,
                scatter_gather=True if record.scatter_gather is None else record.scatter_gather,
                address_width=record.address_width or (64 if record.dma64 else 32),
                maximum_length=0x10000 if record.maximum_length is None else record.maximum_length,
                map_registers=17 if record.map_registers is None else record.map_registers,
                alignment=record.alignment or 1,
                created_at=record.location,
            )
            if record.kind == "storport":
                self.storport_adapter = adapter
            elif record.address is not None:
                self.adapters[record.address] = adapter

    # --- CPUs, frames, IRQL ---------------------------------------------------------------

    def cpu(self, number: int) -> CpuState:
        state = self.cpus.get(number)
        if state is None:
            state = self.cpus[number] = CpuState(number)
        return state

    def cpu_of(self, event: Event) -> CpuState:
        """The CPU an event ran on; CPU 0 where the capture does not say."""
        number = event.context.cpu
        return self.cpu(DEFAULT_CPU if number is None else number)

    def _callback(self, event: Callback, cpu: CpuState, out: _Builder) -> Irql | None:
        enter = cpu.frames[-1] if cpu.frames and cpu.frames[-1].kind == "enter" else None
        runs_for = enter.name if enter is not None else None
        expected = DISPATCH_LEVEL if runs_for in RUNS_ROUTINE_AT_DISPATCH else ROUTINE_IRQL.get(event.name)
        captured = event.context.irql
        if expected is not None and captured is not None and captured != expected:
            out.fact("routine-irql", (expected, captured))
        entry = captured if captured is not None else expected if expected is not None else cpu.irql
        cpu.frames.append(Frame("callback", event.name, event.location, entry, cpu.irql, runs_for))
        cpu.irql = entry
        if runs_for in ("GetScatterGatherList", "GetScatterGatherListEx"):
            self._bind_got_list(event, cpu, out)
        return entry

    def _done(self, event: Done, cpu: CpuState, out: _Builder) -> Irql | None:
        index = cpu.innermost("callback", event.name)
        at_return = event.context.irql if event.context.irql is not None else cpu.irql
        if index is None:
            out.fact("no-open-callback", event.name)
            cpu.irql = at_return
            return at_return
        frame = cpu.frames[index]
        out.fact("done-irql", (frame.entry_irql, at_return))
        held = [lock for lock in cpu.locks if lock.frame_depth > index]
        if held:
            out.fact("locks-held-at-done", tuple(held))
        out.previous.append(frame)
        del cpu.frames[index:]
        cpu.irql = frame.saved_irql  # None when the level before the routine was never known
        return at_return

    def _leave(self, event: Leave, cpu: CpuState, out: _Builder) -> None:
        index = cpu.innermost("enter", event.name)
        if index is None:
            out.fact("no-open-enter", event.name)
            return
        frame = cpu.frames[index]
        del cpu.frames[index:]
        out.previous.append(frame)
        self._invoke(event, cpu, out, event.result, phase="leave")

    def open_frames(self) -> list[Frame]:
        """Frames still open on any CPU, in CPU order then call order."""
        return [frame for number in sorted(self.cpus) for frame in self.cpus[number].frames]

    def irql(self, cpu: int) -> Irql | None:
        return self.cpu(cpu).irql

    def held_locks(self, cpu: int) -> tuple[HeldLock, ...]:
        return tuple(self.cpu(cpu).locks)

    # --- DDI dispatch -----------------------------------------------------------------

    def _invoke(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        if phase != "leave":
            self._check_adapter(event, out)
        handler = self._handlers.get(name)
        if handler is None:
            if phase != "leave":
                out.fact("unhandled", True)
            return
        handler(event, cpu, out, result, phase)

    def _handler_table(self) -> dict[str, Callable]:
        table: dict[str, Callable] = {}
        for name in ("ExAllocatePool", "ExAllocatePoolWithTag", "ExAllocatePoolWithQuota", "ExAllocatePoolWithQuotaTag",
                     "ExAllocatePoolWithTagPriority", "ExAllocatePool2", "ExAllocatePool3", "MmAllocateContiguousMemory",
                     "MmAllocateContiguousMemorySpecifyCache"):
            table[name] = self._pool_allocate
        for name in ("StorPortAllocatePool", "StorPortAllocateContiguousMemorySpecifyCacheNode", "StorPortAllocateDmaMemory"):
            table[name] = self._storport_allocate
        for name in ("ExFreePool", "ExFreePoolWithTag", "ExFreePool2", "StorPortFreePool", "MmFreeContiguousMemory",
                     "StorPortFreeContiguousMemorySpecifyCache", "StorPortFreeDmaMemory"):
            table[name] = self._pool_free
        for name in ("IoAllocateMdl", "StorPortAllocateMdl", "MmAllocatePagesForMdl", "MmAllocatePagesForMdlEx"):
            table[name] = self._mdl_allocate
        for name in ("MmBuildMdlForNonPagedPool", "StorPortBuildMdlForNonPagedPool", "MmProbeAndLockPages", "MmUnlockPages"):
            table[name] = self._mdl_state
        for name in ("IoFreeMdl", "StorPortFreeMdl", "MmFreePagesFromMdl"):
            table[name] = self._mdl_free
        table["IoBuildPartialMdl"] = self._mdl_partial
        table["IoGetDmaAdapter"] = self._get_adapter
        table["PutDmaAdapter"] = self._put_adapter
        for name in ("AllocateCommonBuffer", "AllocateCommonBufferEx", "AllocateCommonBufferWithBounds", "StorPortGetUncachedExtension"):
            table[name] = self._common_allocate
        table["FreeCommonBuffer"] = self._common_free
        table["CalculateScatterGatherList"] = self._calculate
        for name in ("BuildScatterGatherList", "GetScatterGatherList", "StorPortBuildScatterGatherList",
                     "BuildScatterGatherListEx", "GetScatterGatherListEx"):
            table[name] = self._build
        for name in ("PutScatterGatherList", "StorPortPutScatterGatherList"):
            table[name] = self._put
        table["AllocateAdapterChannel"] = self._allocate_channel
        table["AllocateAdapterChannelEx"] = self._allocate_channel
        table["FreeAdapterChannel"] = self._free_channel
        table["MapTransfer"] = self._map_transfer
        table["FlushAdapterBuffers"] = self._flush
        table["FreeMapRegisters"] = self._free_map_registers
        for name in ("KeRaiseIrql", "KeLowerIrql", "KeRaiseIrqlToDpcLevel"):
            table[name] = self._raise_lower
        for name in ("KeAcquireSpinLock", "KfAcquireSpinLock", "KeAcquireSpinLockRaiseToDpc", "KeAcquireSpinLockAtDpcLevel",
                     "KeAcquireInStackQueuedSpinLock", "KeAcquireInStackQueuedSpinLockAtDpcLevel", "StorPortAcquireSpinLock"):
            table[name] = self._acquire
        for name in ("KeReleaseSpinLock", "KfReleaseSpinLock", "KeReleaseSpinLockFromDpcLevel", "KeReleaseInStackQueuedSpinLock",
                     "KeReleaseInStackQueuedSpinLockFromDpcLevel", "StorPortReleaseSpinLock"):
            table[name] = self._release
        return table

    def _check_adapter(self, event: Event, out: _Builder) -> None:
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        if address is None or event.name == "IoGetDmaAdapter":  # type: ignore[attr-defined]
            return
        adapter = self.adapters.get(address)
        if adapter is None:
            out.fact("unknown-adapter", address)
        elif not adapter.live:
            out.fact("adapter-put", adapter)

    def _adapter_for(self, event: Event, storport: bool) -> Adapter:
        if storport:
            if self.storport_adapter is None:
                self.storport_adapter = Adapter(None, "storport", None, True, True, 32, 0x10000, 17, 1, event.location)
            return self.storport_adapter
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        adapter = self.adapters.get(address) if address is not None else None
        if adapter is None:  # never created in the trace: assume nothing it would restrict
            adapter = Adapter(address, "wdm", None, True, True, 64, None, None, 1, event.location)
        return adapter

    # --- pool -------------------------------------------------------------------------------

    def _pool_allocate(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        address = as_int(result)
        if not address:
            out.fact("failed", result)
            return
        name = event.name  # type: ignore[attr-defined]
        size = as_int(event.arg("NumberOfBytes")) or 0  # type: ignore[attr-defined]
        if name.startswith("MmAllocateContiguous"):
            family, pool = "contiguous", "nonpaged"
        else:
            family, pool = "ex", self._pool_kind(event)
        self._new_block(event, out, address, size, as_int(event.arg("Tag")), pool, family)  # type: ignore[attr-defined]

    def _pool_kind(self, event: Event) -> str:
        pool_type = event.arg("PoolType")  # type: ignore[attr-defined]
        flags = event.arg("Flags")  # type: ignore[attr-defined]
        if isinstance(pool_type, Symbol):
            return "paged" if "Paged" in pool_type.name and "NonPaged" not in pool_type.name else "nonpaged"
        if isinstance(pool_type, int) and not isinstance(pool_type, bool):
            return "paged" if pool_type & 1 else "nonpaged"
        if isinstance(flags, Symbol):
            return "paged" if "POOL_FLAG_PAGED" in flags.name else "nonpaged"
        if isinstance(flags, int) and not isinstance(flags, bool):
            return "paged" if flags & _POOL_FLAG_PAGED else "nonpaged"
        return "nonpaged"

    def _storport_allocate(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        address = as_int(event.arg("BufferPointer"))  # type: ignore[attr-defined]
        if not is_success(result) or not address:
            out.fact("failed", result)
            return
        family = "storport" if event.name == "StorPortAllocatePool" else "storport-contiguous"  # type: ignore[attr-defined]
        size = as_int(event.arg("NumberOfBytes")) or 0  # type: ignore[attr-defined]
        self._new_block(event, out, address, size, as_int(event.arg("Tag")), "nonpaged", family)  # type: ignore[attr-defined]
        physical = as_int(event.arg("PhysicalAddress"))  # type: ignore[attr-defined]
        if physical:
            self._bind_range(address, physical, size)

    def _new_block(self, event: Event, out: _Builder, address: int, size: int, tag: int | None, pool: str, family: str) -> None:
        block = Block(address, size, tag, pool, family, event.name, self.pool.next_ordinal(), event.location)  # type: ignore[attr-defined]
        overlapped = self.pool.allocate(block)
        if overlapped:
            out.fact("overlaps-live-block", tuple(overlapped))
        out.created.append(block)

    def _pool_free(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if not is_success(result) and name.startswith("StorPort"):
            out.fact("failed", result)
            return
        address = as_int(event.arg("P") if name.startswith("ExFree") else  # type: ignore[attr-defined]
                         event.arg("BufferPointer") if name == "StorPortFreePool" else event.arg("BaseAddress"))  # type: ignore[attr-defined]
        family = {"StorPortFreePool": "storport", "MmFreeContiguousMemory": "contiguous"}.get(
            name, "storport-contiguous" if name.startswith("StorPortFree") else "ex"
        )
        out.fact("free-family", family)
        tag = as_int(event.arg("Tag"))  # type: ignore[attr-defined]
        if tag is not None:
            out.fact("free-tag", tag)
        if address is None:
            return
        common = self.common_buffers.at(address)
        if common is not None:
            out.fact("common-buffer-freed-as-pool", common)
        block = self.pool.live_at(address)
        if block is None:
            freed = self.pool.freed_at(address)
            if freed is not None:
                out.fact("block-freed-before", freed)
                out.previous.append(freed)
            else:
                inside = self.pool.containing(address)
                if inside is not None:
                    out.fact("inside-block", inside)
                out.fact("not-allocated", address)
            return
        lists = tuple(self.lists[o] for o in self._lists_with_buffer_in(block))
        if lists:
            out.fact("live-lists-in-buffer", lists)
        out.previous.append(block)
        freed = self.pool.free(address, event.location, name)
        out.released.append(freed)

    def _lists_with_buffer_in(self, block: Block) -> list[int]:
        return [o for buffer, o in self.list_in_buffer.items() if block.address <= buffer < block.end and o in self.lists]

    # --- MDLs ---------------------------------------------------------------------------

    def _mdl_allocate(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if name == "StorPortAllocateMdl":
            address = as_int(event.arg("Mdl"))  # type: ignore[attr-defined]
            if not is_success(result) or not address:
                out.fact("failed", result)
                return
            va, size, family, source = as_int(event.arg("BufferPointer")) or 0, as_int(event.arg("NumberOfBytes")) or 0, "storport", None  # type: ignore[attr-defined]
        elif name == "IoAllocateMdl":
            address = as_int(result)
            if not address:
                out.fact("failed", result)
                return
            va, size, family, source = as_int(event.arg("VirtualAddress")) or 0, as_int(event.arg("Length")) or 0, "io", None  # type: ignore[attr-defined]
        else:  # MmAllocatePagesForMdl(Ex): pages, no virtual mapping yet
            address = as_int(result)
            if not address:
                out.fact("failed", result)
                return
            va, size, family, source = 0, as_int(event.arg("TotalBytes")) or 0, "pages", "pages"  # type: ignore[attr-defined]
        old = self.mdls.get(address)
        if old is not None:
            out.fact("mdl-replaced", old)
        mdl = Mdl(address, va, size, family, self._next(), event.location, source=source)
        self.mdls[address] = mdl
        self.freed_mdls.pop(address, None)
        out.created.append(mdl)

    def _mdl_arg(self, event: Event) -> int | None:
        for name in ("MemoryDescriptorList", "Mdl"):
            value = as_int(event.arg(name))  # type: ignore[attr-defined]
            if value is not None:
                return value
        return None

    def _mdl_state(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if name.startswith("StorPort") and not is_success(result):
            out.fact("failed", result)
            return
        address = self._mdl_arg(event)
        mdl = self.mdls.get(address) if address is not None else None
        if mdl is None:
            out.fact("mdl-freed-before" if address in self.freed_mdls else "mdl-unknown", address)
            return
        out.previous.append(mdl)
        if name in ("MmBuildMdlForNonPagedPool", "StorPortBuildMdlForNonPagedPool"):
            pfns = mdl.pfns if mdl.pfns is not None else self._pfns_for(mdl.va, mdl.byte_count)
            mdl = replace(mdl, source="nonpaged", pfns=pfns)
        elif name == "MmProbeAndLockPages":
            if mdl.source is not None:
                out.fact("mdl-lock", f"already {mdl.source}")
            pfns = mdl.pfns if mdl.pfns is not None else self._pfns_for(mdl.va, mdl.byte_count)
            mdl = replace(mdl, source="locked", pfns=pfns)
        else:  # MmUnlockPages
            if mdl.source != "locked":
                out.fact("mdl-lock", f"unlock of an MDL that is {mdl.source or 'not locked'}")
            mdl = replace(mdl, source=None)
        self.mdls[mdl.address] = mdl

    def _pfns_for(self, va: int, length: int) -> tuple[int, ...]:
        shift = self.space.shift
        first = va >> shift
        last = (va + max(length, 1) - 1) >> shift
        return tuple(self.space.pfn(vpn) for vpn in range(first, last + 1))

    def _mdl_free(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if name.startswith("StorPort") and not is_success(result):
            out.fact("failed", result)
            return
        address = self._mdl_arg(event) if name != "MmFreePagesFromMdl" else as_int(event.arg("MemoryDescriptorList"))  # type: ignore[attr-defined]
        out.fact("free-family", "storport" if name == "StorPortFreeMdl" else "pages" if name == "MmFreePagesFromMdl" else "io")
        mdl = self.mdls.get(address) if address is not None else None
        if mdl is None:
            freed = self.freed_mdls.get(address) if address is not None else None
            out.fact("mdl-freed-before" if freed is not None else "mdl-unknown", freed if freed is not None else address)
            return
        lists = tuple(sgl for sgl in self.lists.values() if sgl.mdl == address)
        if lists:
            out.fact("mdl-live-lists", lists)
        out.previous.append(mdl)
        if name == "MmFreePagesFromMdl":
            freed = replace(mdl, pfns=None, source=None)
            self.mdls[address] = freed
            out.released.append(freed)
            return
        freed = replace(mdl, freed_at=event.location)
        del self.mdls[address]
        self.freed_mdls[address] = freed
        while len(self.freed_mdls) > RETIRED_MEMORY:
            self.freed_mdls.popitem(last=False)
        out.released.append(freed)

    def _mdl_partial(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        source = self.mdls.get(as_int(event.arg("SourceMdl")) or -1)  # type: ignore[attr-defined]
        target = self.mdls.get(as_int(event.arg("TargetMdl")) or -1)  # type: ignore[attr-defined]
        if source is None or target is None:
            out.fact("mdl-unknown", as_int(event.arg("SourceMdl" if source is None else "TargetMdl")))  # type: ignore[attr-defined]
            return
        va = as_int(event.arg("VirtualAddress")) or source.va  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or (source.end - va)  # type: ignore[attr-defined]
        pfns = None
        if source.pfns is not None:
            shift = self.space.shift
            first = (va >> shift) - (source.va >> shift)
            pfns = source.pfns[first : first + self.target.span_pages(va, length)]
        partial = replace(target, va=va, byte_count=length, pfns=pfns, source=source.source and "partial")
        self.mdls[target.address] = partial
        out.previous.append(target)
        out.created.append(partial)

    def _mdl_record(self, record: MdlRecord, out: _Builder) -> None:
        page = self.target.page_size
        mdl = self.mdls.get(record.address)
        if mdl is None:
            mdl = Mdl(record.address, record.va, record.byte_count, "captured", self._next(), record.location, source="nonpaged")
            out.fact("mdl-unknown", record.address)
        span = self.target.span_pages(record.va, record.byte_count)
        if len(record.pfns) != span:
            out.fact("pfn-count", (span, len(record.pfns)))
        if record.offset != record.va & (page - 1):
            out.fact("offset-differs", (record.va & (page - 1), record.offset))
        shift = self.space.shift
        for index, pfn in enumerate(record.pfns):
            self.space.bind((record.va >> shift) + index, pfn)
        updated = replace(mdl, va=record.va, byte_count=record.byte_count, pfns=record.pfns, next=record.next)
        self.mdls[record.address] = updated
        out.previous.append(mdl)
        out.created.append(updated)

    def _chain(self, address: int, out: _Builder, current_va: int, length: int) -> list[Mdl]:
        chain: list[Mdl] = []
        seen: set[int] = set()
        next_address: int | None = address
        while next_address and next_address not in seen:
            seen.add(next_address)
            mdl = self.mdls.get(next_address)
            if mdl is None:
                break
            chain.append(mdl)
            next_address = mdl.next
        if not chain:
            out.fact("mdl-freed-before" if address in self.freed_mdls else "mdl-unknown", address)
            chain = [Mdl(address, current_va, length, "assumed", 0, SourceLocation("<model>", 0))]
        return chain

    def _pfn_of(self, mdl: Mdl, va: int) -> int:
        shift = self.space.shift
        if mdl.pfns is not None:
            index = (va >> shift) - (mdl.va >> shift)
            if 0 <= index < len(mdl.pfns):
                return mdl.pfns[index]
        return self.space.pfn(va >> shift)

    # --- adapters and common buffers -------------------------------------------------------

    def _get_adapter(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        address = as_int(result)
        if not address:
            out.fact("failed", result)
            return
        adapter = adapter_from_description(
            address, event.arg("DeviceDescription"), as_int(event.arg("NumberOfMapRegisters")), event.location  # type: ignore[attr-defined]
        )
        self.adapters[address] = adapter
        out.created.append(adapter)

    def _put_adapter(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        adapter = self.adapters.get(address) if address is not None else None
        if adapter is None or not adapter.live:
            return
        lists = tuple(sgl for sgl in self.lists.values() if sgl.adapter == address)
        buffers = tuple(cb for cb in self.common_buffers if cb.adapter == address)
        channel = (address,) if address in self.channels else ()
        if lists or buffers or channel:
            out.fact("outstanding", (lists, buffers, channel))
        out.previous.append(adapter)
        put = replace(adapter, put_at=event.location)
        self.adapters[address] = put
        out.released.append(put)

    def _common_allocate(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        va = as_int(result)
        if not va:
            out.fact("failed", result)
            return
        name = event.name  # type: ignore[attr-defined]
        length = as_int(event.arg("NumberOfBytes" if name == "StorPortGetUncachedExtension" else "Length")) or 0  # type: ignore[attr-defined]
        logical = as_int(event.arg("LogicalAddress"))  # type: ignore[attr-defined]
        if logical is None:
            logical = self._next_logical
        page = self.target.page_size
        self._next_logical = max(self._next_logical, logical + ((length + page - 1) // page + 1) * page)
        buffer = CommonBuffer(
            va, logical, length, bool(_bool(event.arg("CacheEnabled"))), as_int(event.arg("DmaAdapter")), name,  # type: ignore[attr-defined]
            self._next(), event.location,
        )
        self._bind_range(va, logical, length)
        self.common_buffers.insert(va, max(length, 1), buffer)
        self.freed_common_buffers.pop(va, None)
        self.bus.add(BusEntry(logical, max(length, 1), "common-buffer", va))
        out.created.append(buffer)

    def _bind_range(self, va: int, physical: int, length: int) -> None:
        shift = self.space.shift
        pages = self.target.span_pages(va, length)
        for index in range(pages):
            self.space.bind((va >> shift) + index, (physical >> shift) + index)

    def _common_free(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        va = as_int(event.arg("VirtualAddress"))  # type: ignore[attr-defined]
        buffer = self.common_buffers.at(va) if va is not None else None
        if buffer is None:
            freed = self.freed_common_buffers.get(va) if va is not None else None
            out.fact("common-buffer-freed-before" if freed is not None else "common-buffer-unknown", freed or va)
            return
        mismatch = []
        for parameter, allocated in (("Length", buffer.length), ("LogicalAddress", buffer.logical)):
            given = as_int(event.arg(parameter))  # type: ignore[attr-defined]
            if given is not None and given != allocated:
                mismatch.append((parameter, given, allocated))
        cache = _bool(event.arg("CacheEnabled"))  # type: ignore[attr-defined]
        if cache is not None and cache != buffer.cache_enabled:
            mismatch.append(("CacheEnabled", cache, buffer.cache_enabled))
        if mismatch:
            out.fact("common-buffer-mismatch", tuple(mismatch))
        self.common_buffers.pop(buffer.va)
        self.bus.retire(BusEntry(buffer.logical, max(buffer.length, 1), "common-buffer", buffer.va))
        freed = replace(buffer, freed_at=event.location)
        self.freed_common_buffers[buffer.va] = freed
        while len(self.freed_common_buffers) > RETIRED_MEMORY:
            self.freed_common_buffers.popitem(last=False)
        out.previous.append(buffer)
        out.released.append(freed)

    # --- scatter/gather lists -----------------------------------------------------------------

    def _calculate(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        current_va = as_int(event.arg("CurrentVa")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        pages = self.target.span_pages(current_va, length)
        out.fact("calculated", (self.target.sgl_bytes(pages), pages))

    def _build(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        storport = name.startswith("StorPort")
        if phase == "leave":
            self._settle_build(event, cpu, out, result)
            return
        mdl_address = as_int(event.arg("Mdl")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        chain = None
        current_va = as_int(event.arg("CurrentVa"))  # type: ignore[attr-defined]
        if current_va is None:  # the Ex routines give an offset into the MDL instead
            first = self.mdls.get(mdl_address)
            current_va = (first.va if first is not None else 0) + (as_int(event.arg("Offset")) or 0)  # type: ignore[attr-defined]
        chain = self._chain(mdl_address, out, current_va, length)
        if not any(m.resident for m in chain if m.family != "assumed"):
            if chain[0].family != "assumed":
                out.fact("mdl-not-resident", chain[0])
        adapter = self._adapter_for(event, storport)
        buffer_length = as_int(event.arg("ScatterGatherBufferLength" if storport else "ScatterGatherLength"))  # type: ignore[attr-defined]
        write = bool(_bool(event.arg("WriteToDevice")))  # type: ignore[attr-defined]
        build = build_list(self.target, adapter, chain, current_va, length, self._pfn_of, self._bounce_pages, buffer_length, storport)
        out.fact("build", build)
        if build.outside:
            out.fact("outside-mdl", build.outside)
        if phase == "call":
            if result is not None and is_success(result) != (build.status.endswith("SUCCESS")):
                out.fact("status-differs", (build.status, result))
            if not is_success(result):
                self._release_bounce(build.segments)
                out.fact("failed", result)
                return
        elif not build.status.endswith("SUCCESS"):
            out.fact("status-differs", (build.status, None))
        buffer = as_int(event.arg("ScatterGatherBuffer"))  # type: ignore[attr-defined]
        if buffer is None:  # Get: the list's address arrives with AdapterListControl
            buffer = -self._ordinal - 1
        sgl = SgList(
            ordinal=self._next(),
            buffer=buffer,
            ddi=name,
            adapter=None if storport else adapter.address,
            storport=storport,
            mdl=mdl_address,
            current_va=current_va,
            length=length,
            write_to_device=write,
            build=build,
            segments=build.segments,
            buffer_length=buffer_length,
            status=build.status,
            built_at=event.location,
        )
        self._add_list(sgl, out)
        if phase == "enter":
            self._pending_build(cpu)[name] = sgl.ordinal

    def _pending_build(self, cpu: CpuState) -> dict[str, int]:
        """Lists built by an `enter` not yet left on this CPU, by DDI name."""
        return self._pending.setdefault(cpu.number, {})

    def _settle_build(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None) -> None:
        ordinal = self._pending_build(cpu).pop(event.name, None)  # type: ignore[attr-defined]
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            return
        if result is not None and is_success(result) != sgl.status.endswith("SUCCESS"):
            out.fact("status-differs", (sgl.status, result))
        if not is_success(result):
            out.fact("failed", result)
            self._drop_list(sgl)
            out.released.append(sgl)

    def _bind_got_list(self, event: Callback, cpu: CpuState, out: _Builder) -> None:
        pointer = as_int(event.arg("ScatterGather"))
        frame = cpu.frames[-2] if len(cpu.frames) >= 2 else None
        ordinal = self._pending_build(cpu).get(frame.name) if frame is not None else None
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None or pointer is None:
            return
        if self.list_in_buffer.get(sgl.buffer) == sgl.ordinal:
            del self.list_in_buffer[sgl.buffer]
        sgl = replace(sgl, buffer=pointer)
        self.lists[sgl.ordinal] = sgl
        self.list_in_buffer[pointer] = sgl.ordinal

    def _add_list(self, sgl: SgList, out: _Builder) -> None:
        old = self.list_in_buffer.get(sgl.buffer)
        if old is not None and old in self.lists:
            out.fact("buffer-live", self.lists[old])
        self.lists[sgl.ordinal] = sgl
        self.list_in_buffer[sgl.buffer] = sgl.ordinal
        self._map_list(sgl)
        shift = self.space.shift
        for vpn in range(sgl.current_va >> shift, ((sgl.current_va + max(sgl.length, 1) - 1) >> shift) + 1):
            self._list_pages.setdefault(vpn, set()).add(sgl.ordinal)
        out.created.append(sgl)

    def _map_list(self, sgl: SgList) -> None:
        for index, segment in enumerate(sgl.segments):
            self.bus.add(BusEntry(segment.bus, max(segment.length, 1), "sgl", sgl.ordinal, index))
            if segment.bounced and sgl.write_to_device:
                done = 0
                for phys, n in segment.chunks:
                    self.bounce_memory.write(segment.bus + done, self.ram.read(phys, n))
                    done += n

    def _unmap_list(self, sgl: SgList, copy_back: bool) -> None:
        for index, segment in enumerate(sgl.segments):
            if segment.bounced and copy_back:
                done = 0
                for phys, n in segment.chunks:
                    self.ram.write(phys, self.bounce_memory.read(segment.bus + done, n))
                    done += n
            self.bus.retire(BusEntry(segment.bus, max(segment.length, 1), "sgl", sgl.ordinal, index))
        self._release_bounce(sgl.segments)

    def _release_bounce(self, segments: tuple[Segment, ...]) -> None:
        for segment in segments:
            if segment.bounced:
                self.window.release(segment.bus, segment.length)
                self.bounce_memory.discard(segment.bus & ~(self.target.page_size - 1), segment.length + self.target.page_size)

    def _bounce_pages(self, count: int) -> int:
        return self.window.allocate(count)

    def _drop_list(self, sgl: SgList, put: SgList | None = None) -> None:
        self.lists.pop(sgl.ordinal, None)
        if self.list_in_buffer.get(sgl.buffer) == sgl.ordinal:
            del self.list_in_buffer[sgl.buffer]
        shift = self.space.shift
        for vpn in range(sgl.current_va >> shift, ((sgl.current_va + max(sgl.length, 1) - 1) >> shift) + 1):
            owners = self._list_pages.get(vpn)
            if owners is not None:
                owners.discard(sgl.ordinal)
                if not owners:
                    del self._list_pages[vpn]
        self._unmap_list(sgl, copy_back=put is not None and not sgl.write_to_device)

    def _put(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if name.startswith("StorPort") and result is not None and not is_success(result):
            out.fact("failed", result)
            return
        pointer = as_int(event.arg("ScatterGatherList" if name.startswith("StorPort") else "ScatterGather"))  # type: ignore[attr-defined]
        write = _bool(event.arg("WriteToDevice"))  # type: ignore[attr-defined]
        if write is not None:
            out.fact("put-direction", write)
        ordinal = self.list_in_buffer.get(pointer) if pointer is not None else None
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            earlier = self.put_lists.get(pointer) if pointer is not None else None
            if earlier is not None:
                out.fact("list-put-before", earlier)
                out.previous.append(earlier)
            else:
                out.fact("list-unknown", pointer)
            return
        out.previous.append(sgl)
        put = replace(sgl, put_at=event.location, put_by=name)
        self._drop_list(sgl, put=put)
        self.put_lists.pop(sgl.buffer, None)
        self.put_lists[sgl.buffer] = put
        while len(self.put_lists) > RETIRED_MEMORY:
            self.put_lists.popitem(last=False)
        out.released.append(put)

    def _sgl_record(self, record: SglRecord, out: _Builder) -> None:
        ordinal = self.list_in_buffer.get(record.address)
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            out.fact("list-for-sgl-unknown", record.address)
            segments = []
            offset = 0
            for element in record.elements:
                segments.append(Segment(element.address, element.length, offset, False, ((element.address, element.length),)))
                offset += element.length
            build = ListBuild(tuple(segments), len(segments), self.target.sgl_bytes(len(segments)), "STATUS_SUCCESS")
            sgl = SgList(self._next(), record.address, "sgl", None, False, None, 0, offset, False, build, build.segments,
                         None, build.status, record.location, captured=record.elements, captured_at=record.location)
            self.lists[sgl.ordinal] = sgl
            self.list_in_buffer[sgl.buffer] = sgl.ordinal
            self._map_list(sgl)
            out.created.append(sgl)
            return
        adopted, differences = segments_from_capture(record.elements, sgl.build.segments)
        if differences:
            out.fact("sgl-differs", differences)
        out.previous.append(sgl)
        self._unmap_list(sgl, copy_back=False)
        updated = replace(sgl, segments=adopted, captured=record.elements, captured_at=record.location)
        for segment in adopted:
            if segment.bounced:
                self.window.reserve(segment.bus, segment.length)
        self.lists[sgl.ordinal] = updated
        self._map_list(updated)
        out.created.append(updated)

    # --- the v1 path: channels, map registers, MapTransfer ---------------------------------------

    def _allocate_channel(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "leave" or (phase == "call" and not is_success(result)):
            if not is_success(result):
                out.fact("failed", result)
                self.channels.pop(as_int(event.arg("DmaAdapter")) or 0, None)  # type: ignore[attr-defined]
            return
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        if adapter in self.channels:
            out.fact("channel-open", self.channels[adapter])
        self.channels[adapter] = event.location

    def _free_channel(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        unflushed = tuple(key for key in self.transfers if key[0] == adapter)
        if unflushed:
            out.fact("unflushed", unflushed)
        self.channels.pop(adapter, None)

    def _map_transfer(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        base = as_int(event.arg("MapRegisterBase"))  # type: ignore[attr-defined]
        current_va = as_int(event.arg("CurrentVa")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        write = bool(_bool(event.arg("WriteToDevice")))  # type: ignore[attr-defined]
        mdl_address = as_int(event.arg("Mdl")) or 0  # type: ignore[attr-defined]
        chain = self._chain(mdl_address, out, current_va, length)
        chunks = []
        offset = 0
        for mdl in chain:
            while offset < length and mdl.va <= current_va + offset < mdl.end:
                va = current_va + offset
                n = min(length - offset, self.target.page_size - (va & (self.target.page_size - 1)), mdl.end - va)
                chunks.append(((self._pfn_of(mdl, va) << self.space.shift) | (va & (self.target.page_size - 1)), n))
                offset += n
        logical = as_int(result)
        if logical is None:
            logical = chunks[0][0] if chunks else 0
        bounced = bool(chunks) and (logical != chunks[0][0] or any(a[0] + a[1] != b[0] for a, b in zip(chunks, chunks[1:], strict=False)))
        segment = Segment(logical, sum(n for _, n in chunks), 0, bounced, tuple(chunks))
        key = (adapter, base, current_va)
        self.transfers[key] = (adapter, segment, write, event.location)
        self.bus.add(BusEntry(segment.bus, max(segment.length, 1), "transfer", key))
        if bounced and write:
            done = 0
            for phys, n in segment.chunks:
                self.bounce_memory.write(segment.bus + done, self.ram.read(phys, n))
                done += n
        out.created.append(segment)

    def _flush(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        key = (as_int(event.arg("DmaAdapter")) or 0, as_int(event.arg("MapRegisterBase")), as_int(event.arg("CurrentVa")) or 0)  # type: ignore[attr-defined]
        transfer = self.transfers.pop(key, None)
        if transfer is None:
            out.fact("transfer-unknown", key)
            return
        _, segment, write, _ = transfer
        if segment.bounced and not write:
            done = 0
            for phys, n in segment.chunks:
                self.ram.write(phys, self.bounce_memory.read(segment.bus + done, n))
                done += n
        self.bus.retire(BusEntry(segment.bus, max(segment.length, 1), "transfer", key))
        out.released.append(segment)

    def _free_map_registers(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        base = as_int(event.arg("MapRegisterBase"))  # type: ignore[attr-defined]
        unflushed = tuple(key for key in self.transfers if key[0] == adapter and key[1] == base)
        if unflushed:
            out.fact("unflushed", unflushed)

    # --- IRQL and spin locks --------------------------------------------------------------------

    def _raise_lower(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        if name == "KeRaiseIrqlToDpcLevel":
            level: Irql | None = DISPATCH_LEVEL
        else:
            level = _irql(event.arg("NewIrql"))  # type: ignore[attr-defined]
        if level is None:
            return
        if name != "KeLowerIrql" and cpu.irql is not None and level < cpu.irql:
            out.fact("raise-below-current", (cpu.irql, level))
        if name == "KeLowerIrql" and cpu.irql is not None and level > cpu.irql:
            out.fact("lower-above-current", (cpu.irql, level))
        cpu.irql = level

    def _lock_key(self, event: Event) -> tuple[object, str, Irql]:
        name = event.name  # type: ignore[attr-defined]
        if name == "StorPortAcquireSpinLock":
            kind = _symbol(event.arg("SpinLock")) or str(event.arg("SpinLock"))  # type: ignore[attr-defined]
            return ("storport", kind), "storport", DIRQL if kind == "InterruptLock" else DISPATCH_LEVEL
        lock = as_int(event.arg("SpinLock"))  # type: ignore[attr-defined]
        if "InStackQueued" in name:
            return lock, "queued", DISPATCH_LEVEL
        if name == "KeAcquireSpinLockAtDpcLevel":
            return lock, "dpc", DISPATCH_LEVEL
        return lock, "ke", DISPATCH_LEVEL

    def _acquire(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        key, family, level = self._lock_key(event)
        held = cpu.lock(key)
        if held is not None:
            out.fact("lock-held", held)
        handle = as_int(event.arg("LockHandle"))  # type: ignore[attr-defined]
        lock = HeldLock((key, handle) if handle is not None and family in ("queued", "storport") else key, family,
                        event.name, cpu.irql, event.location, len(cpu.frames))  # type: ignore[attr-defined]
        cpu.locks.append(lock)
        if cpu.irql is None or cpu.irql < level:
            cpu.irql = level
        out.created.append(lock)

    def _release(self, event: Event, cpu: CpuState, out: _Builder, result: Value | None, phase: str) -> None:
        if phase == "enter":
            return
        name = event.name  # type: ignore[attr-defined]
        handle = as_int(event.arg("LockHandle"))  # type: ignore[attr-defined]
        if handle is not None:
            held = next((lock for lock in cpu.locks if isinstance(lock.key, tuple) and lock.key[1:] == (handle,)), None)
        else:
            key = as_int(event.arg("SpinLock"))  # type: ignore[attr-defined]
            held = cpu.lock(key)
        if held is None:
            out.fact("lock-not-held", handle if handle is not None else as_int(event.arg("SpinLock")))  # type: ignore[attr-defined]
            return
        family = "dpc" if name == "KeReleaseSpinLockFromDpcLevel" else "queued" if "InStackQueued" in name else (
            "storport" if name.startswith("StorPort") else "ke")
        if family != held.family:
            out.fact("lock-family", (held.family, family))
        cpu.locks.remove(held)
        out.released.append(held)
        new = _irql(event.arg("NewIrql"))  # type: ignore[attr-defined]
        if new is not None:
            if held.old_irql is not None and new != held.old_irql:
                out.fact("restores-other-irql", (held.old_irql, new))
            cpu.irql = new
        elif family in ("queued", "storport") and held.old_irql is not None:
            cpu.irql = held.old_irql

    # --- memory accesses ------------------------------------------------------------------------

    def _mem(self, event: MemAccess, out: _Builder) -> None:
        block = self.pool.containing(event.address)
        if block is not None:
            out.fact("pool-block", block)
        else:
            freed = self.pool.freed_containing(event.address)
            if freed is not None:
                out.fact("freed-block", freed)
        lists = self.lists_covering(event.address, event.length)
        if lists:
            out.fact("live-lists", lists)

    def _dma(self, event: DmaAccess, out: _Builder) -> None:
        pieces = self.bus.resolve(event.address, event.length)
        out.accesses = pieces
        if event.access != "write":
            return
        data = pattern(event.length, event.fill, event.data)
        for piece in pieces:
            chunk = data[piece.start - event.address : piece.start - event.address + piece.length]
            entry = piece.entry
            if piece.state == "live" and entry is not None and self._bounced(entry):
                self.bounce_memory.write(piece.start, chunk)
            else:
                self.ram.write(piece.start, chunk)

    def _bounced(self, entry: BusEntry) -> bool:
        if entry.kind == "sgl":
            sgl = self.lists.get(entry.key)  # type: ignore[arg-type]
            return sgl is not None and entry.index < len(sgl.segments) and sgl.segments[entry.index].bounced
        if entry.kind == "transfer":
            transfer = self.transfers.get(entry.key)  # type: ignore[arg-type]
            return transfer is not None and transfer[1].bounced
        return False

    # --- questions ------------------------------------------------------------------------------

    def live_sgls(self) -> tuple[SgList, ...]:
        return tuple(self.lists.values())

    def sgl_at(self, buffer: int) -> SgList | None:
        """The live list whose pointer (caller buffer) is `buffer`."""
        ordinal = self.list_in_buffer.get(buffer)
        return self.lists.get(ordinal) if ordinal is not None else None

    def lists_covering(self, va: int, length: int) -> tuple[SgList, ...]:
        """Live lists whose transfer includes any byte of [va, va + length)."""
        shift = self.space.shift
        ordinals: set[int] = set()
        for vpn in range(va >> shift, ((va + max(length, 1) - 1) >> shift) + 1):
            ordinals |= self._list_pages.get(vpn, set())
        found = [self.lists[o] for o in sorted(ordinals) if o in self.lists]
        return tuple(s for s in found if s.current_va < va + max(length, 1) and va < s.current_va + s.length)

    def resolve_bus_range(self, address: int, length: int) -> tuple[Resolution, ...]:
        return self.bus.resolve(address, length)

    def owner(self, entry: BusEntry) -> Any:
        """The object behind a bus entry: a live or put SgList, a CommonBuffer, a transfer segment."""
        if entry.kind == "sgl":
            sgl = self.lists.get(entry.key)  # type: ignore[arg-type]
            if sgl is not None:
                return sgl
            return next((s for s in reversed(self.put_lists.values()) if s.ordinal == entry.key), None)
        if entry.kind == "common-buffer":
            return self.common_buffers.at(entry.key) or self.freed_common_buffers.get(entry.key)  # type: ignore[arg-type]
        transfer = self.transfers.get(entry.key)  # type: ignore[arg-type]
        return transfer[1] if transfer is not None else None

    def block_at(self, va: int) -> Block | None:
        """The live pool block holding `va`."""
        return self.pool.containing(va)

    def mdl(self, address: int) -> Mdl | None:
        return self.mdls.get(address)

    def adapter(self, address: int) -> Adapter | None:
        return self.adapters.get(address)

    def live_mdls(self) -> tuple[Mdl, ...]:
        return tuple(m for m in self.mdls.values() if m.family in ("io", "storport"))

    def live_blocks(self) -> tuple[Block, ...]:
        return tuple(self.pool)

    def live_common_buffers(self) -> tuple[CommonBuffer, ...]:
        return tuple(self.common_buffers)

    def cpu_view(self, va: int, length: int) -> bytes:
        """The bytes the CPU reads at [va, va + length) now."""
        return self.space.read(va, length)

    def device_view(self, va: int, length: int) -> bytes:
        """The bytes the device has put at [va, va + length): where a live list bounced those
        pages, what sits in its map registers (not yet copied back); elsewhere, memory."""
        data = bytearray(self.cpu_view(va, length))
        for sgl in self.lists_covering(va, length):
            for segment in sgl.segments:
                if not segment.bounced:
                    continue
                start = sgl.current_va + segment.offset
                lo, hi = max(start, va), min(start + segment.length, va + length)
                if lo < hi:
                    data[lo - va : hi - va] = self.bounce_memory.read(segment.bus + (lo - start), hi - lo)
        return bytes(data)
