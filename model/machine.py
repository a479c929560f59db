"""The simulated machine: `Machine().apply(record) -> Effects`, and questions about its state.

The machine replays a trace in order. Each DDI the model knows changes state the way its
documentation says, with the effect its captured return value implies (a failed call does
nothing; a free by the wrong family still frees). `Effects` says what one record did:
objects created and released (as frozen snapshots carrying the events' locations), the
device-access pieces, and `facts`: plain observations a rule may judge ("this block was
already freed at line 40"), never verdicts.

State is kept for live objects and a bounded memory of released ones (what each keeps, and
why the bounds leave the answers alone: `retained`), never for the events seen. `apply` looks
the record's class up in a table built once, and each DDI's handler and calling convention in
another: the cost of an event is what it does, not a walk down a chain of tests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from .adapter import Adapter
from .adapter_ddis import AdapterDdis
from .bus import BusEntry, Resolution
from .common_buffer import CommonBuffer
from .cpu import CpuState, DeferredRoutine, Frame, HeldLock
from .effects import Effects, EffectsBuilder
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
from .irql import DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL, Irql
from .location import SourceLocation
from .lock_ddis import LockDdis
from .mdl import Mdl
from .mdl_ddis import MdlDdis
from .memory import MemoryConfig, pattern
from .platform import Target
from .pool import Block
from .pool_ddis import PoolDdis
from .retained import remember
from .sgl import Calculation, SgList
from .sgl_ddis import SglDdis
from .shared import Ordinals, SharedMemory
from .status import is_success
from .values import Value, as_int

__all__ = ["DEFAULT_CPU", "Effects", "Machine", "MemoryConfig"]

DEFAULT_CPU = 0
GIB = 1 << 30

# Routines the system runs, and the level it runs them at (wdm.h, storport.h callback pages).
ROUTINE_IRQL: dict[str, Irql] = {
    **{name: DISPATCH_LEVEL for name in ("AdapterControl", "AdapterListControl", "StartIo", "DpcForIsr", "CustomDpc",
                                        "HwStorStartIo", "HwStorBuildIo", "HwStorDpcRoutine", "HwStorTimer")},
    **{name: DIRQL for name in ("InterruptService", "HwStorInterrupt", "HwMSIInterruptRoutine", "SynchCritSection")},
    # "The port driver calls HwStorPassiveInitializeRoutine at PASSIVE_LEVEL" (nc-storport-hw_passive_initialize_routine);
    # "In most cases, StorPort calls the HwStorFindAdapter routine at IRQL == PASSIVE_LEVEL" (nc-storport-hw_find_adapter)
    **{name: PASSIVE_LEVEL for name in ("HwStorPassiveInitializeRoutine", "HwStorFindAdapter")},
}
# DDIs whose effect starts at `enter`: the routine they run already holds the list or channel.
RUNS_AT_ENTER = frozenset(
    {"BuildScatterGatherList", "BuildScatterGatherListEx", "GetScatterGatherList", "GetScatterGatherListEx",
     "StorPortBuildScatterGatherList", "AllocateAdapterChannel", "AllocateAdapterChannelEx"}
)
# DDIs that return a status, whose effect a failure status cancels (the builds judge their own).
RETURNS_STATUS = frozenset(
    {"StorPortAllocatePool", "StorPortAllocateContiguousMemorySpecifyCacheNode", "StorPortAllocateDmaMemory",
     "StorPortFreePool", "StorPortFreeContiguousMemorySpecifyCache", "StorPortFreeDmaMemory", "StorPortAllocateMdl",
     "StorPortFreeMdl", "StorPortBuildMdlForNonPagedPool", "StorPortPutScatterGatherList"}
)
# DDIs that return the new object's address; NULL (or no logged address) means nothing was made.
RETURNS_POINTER = frozenset(
    {"ExAllocatePool", "ExAllocatePoolWithTag", "ExAllocatePoolWithQuota", "ExAllocatePoolWithQuotaTag",
     "ExAllocatePoolWithTagPriority", "ExAllocatePool2", "ExAllocatePool3", "MmAllocateContiguousMemory",
     "MmAllocateContiguousMemorySpecifyCache", "IoAllocateMdl", "MmAllocatePagesForMdl", "MmAllocatePagesForMdlEx",
     "IoGetDmaAdapter", "AllocateCommonBuffer", "AllocateCommonBufferEx", "AllocateCommonBufferWithBounds",
     "StorPortGetUncachedExtension"}
)
# DDIs that run a driver routine (a `callback` inside their `enter`, or later) at DISPATCH_LEVEL.
RUNS_ROUTINE_AT_DISPATCH = {
    "AllocateAdapterChannel", "AllocateAdapterChannelEx", "BuildScatterGatherList", "BuildScatterGatherListEx",
    "GetScatterGatherList", "GetScatterGatherListEx", "StorPortBuildScatterGatherList",
}



def _context_of(arguments: tuple) -> int | None:
    """The Context argument of a DDI or routine that carries one (AllocateAdapterChannelEx
    calls it ExecutionContext)."""
    return next((as_int(a.value) for a in arguments if a.name in ("Context", "ExecutionContext")), None)


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
      common-buffer-inside: the live CommonBuffer a FreeCommonBuffer's VirtualAddress points into, not at its start
      list-failed: the SgList (status: the captured failure) a put or `sgl` record names after its build failed
      beyond-limit: (Segment, Adapter) a captured list hands the device directly above its reach
      mdl-not-resident: the first Mdl of a build's chain whose pages are neither locked nor nonpaged
      overlaps-live-block: blocks an allocation overlaps; transfer-unknown: a flush of nothing mapped
      channel-open / unflushed: an adapter channel already open / transfers not flushed
      no-channel: FreeAdapterChannel on an adapter with no channel open
      allocation-action: the AllocationAction (what AdapterControl returned, or the convention where
        `done` has no value) at the `done`, and at FreeAdapterChannel / FreeMapRegisters of that adapter
      channel-released-at-return: AdapterControl returned DeallocateObject(KeepRegisters) (a bus master's is
        assumed to where `done` has no value)
      channel-kept: FreeMapRegisters while the adapter's channel is still held (KeepObject)
      registers-released: FreeMapRegisters after AdapterControl returned DeallocateObject (the AllocationAction)
      lock-held / lock-not-held / lock-family: spin lock observations; locks-held-at-done
      storport-locks-held: the StorPort lock types this CPU holds when it acquires another
      raise-below-current / lower-above-current: (current, new) for KeRaiseIrql / KeLowerIrql
      restores-other-irql: (saved, restored) when KeLowerIrql / a release restores another level
      raised-at: for KeLowerIrql, where the KeRaiseIrql(ToDpcLevel) it undoes saved the level it should restore
      lock-released-before: for a release of a lock not held, the HeldLock (with released_at) this CPU last
        released under that lock or handle
      done-irql: (entry, at return) of a routine
      pool-block / freed-block / live-lists: for a `mem` access, what it touched
    Queries a rule may ask besides: owner / mapping_direction / driver_va of a bus entry,
    block_at / freed_block_in of a virtual range, adapter_at, cpu_view / device_view.
    """

    def __init__(self, target: Target | None = None, memory: MemoryConfig | None = None) -> None:
        self.driver: dict[str, Value] = {}
        self.cpus: dict[int, CpuState] = {}
        self.events = 0
        self.deferred_routines: OrderedDict[int, DeferredRoutine] = OrderedDict()  # Context -> a queued request
        self.ordinals = Ordinals()
        self.memory = SharedMemory(target or Target(), memory or MemoryConfig(), forget=self._forget_retired)
        # The DDI families, each with its state and handlers, given what it shares and the
        # families it asks. Adding a family is a module and one line here (docs/model.md).
        self.adapter_ddis = AdapterDdis(self.memory, self.ordinals)
        self.mdl_ddis = MdlDdis(self.memory, self.ordinals)
        self.sgl_ddis = SglDdis(self.memory, self.ordinals, self.mdl_ddis, self.adapter_ddis, self.deferred_routines)
        self.pool_ddis = PoolDdis(self.memory, self.sgl_ddis, self.adapter_ddis)
        self.lock_ddis = LockDdis()
        self.adapter_ddis.sgl_ddis = self.mdl_ddis.sgl_ddis = self.sgl_ddis
        self.families = (self.pool_ddis, self.mdl_ddis, self.adapter_ddis, self.sgl_ddis, self.lock_ddis)
        self._handlers = self._handler_table()
        self._steps = self._step_table()
        self._out = EffectsBuilder()  # emptied by `finish` after each record: `apply` is never re-entered

    # --- the shared memory: remade by @target and @memory ------------------------------

    def _reset_memory(self, target: Target, config: MemoryConfig) -> None:
        self.memory.reset(target, config)
        for family in self.families:
            reset = getattr(family, "reset_memory", None)
            if reset is not None:
                reset()

    def _forget_retired(self, kind: str, key: Hashable) -> None:
        self.sgl_ddis.forget_retired(kind, key)

    @property
    def target(self) -> Target:
        return self.memory.target

    @property
    def memory_config(self) -> MemoryConfig:
        return self.memory.config

    # State a rule or a test reads, kept by the family that owns it.
    pool = property(lambda self: self.pool_ddis.table)
    mdls = property(lambda self: self.mdl_ddis.mdls)
    freed_mdls = property(lambda self: self.mdl_ddis.freed_mdls)
    adapters = property(lambda self: self.adapter_ddis.adapters)
    lists = property(lambda self: self.sgl_ddis.lists)
    put_lists = property(lambda self: self.sgl_ddis.put_lists)
    put_by_ordinal = property(lambda self: self.sgl_ddis.put_by_ordinal)
    calculations = property(lambda self: self.sgl_ddis.calculations)
    transfers = property(lambda self: self.sgl_ddis.transfers)
    channels = property(lambda self: self.sgl_ddis.channels)
    bus = property(lambda self: self.memory.bus)
    space = property(lambda self: self.memory.space)
    ram = property(lambda self: self.memory.ram)
    bounce_memory = property(lambda self: self.memory.bounce_memory)

    # --- the entry point --------------------------------------------------------------

    def apply(self, record: Record) -> Effects:
        """Replay one record; returns what it did."""
        step = self._steps.get(type(record))
        if step is None:
            return self._apply_other(record)
        self.events += 1
        number = record.context.cpu  # type: ignore[union-attr]
        cpu = self.cpus.get(DEFAULT_CPU if number is None else number)
        if cpu is None:
            cpu = self.cpu_of(record)  # type: ignore[arg-type]
        modelled = cpu.irql
        out = self._out
        try:
            irql = step(record, cpu, out)
        except BaseException:
            out.clear()  # nothing of a record that failed halfway reaches the next one's effects
            raise
        return out.finish(record, cpu.number, irql, modelled)

    def _step_table(self) -> dict[type, Callable[[Any, CpuState, EffectsBuilder], Irql | None]]:
        """The replay step of each record class, looked up once per record by its exact class
        (`apply`'s dispatch; a subclass is resolved by `_apply_other` and then cached)."""
        return {
            Callback: self._callback,
            Done: self._done,
            DmaAccess: self._dma_step,
            Call: self._call_step,
            Enter: self._enter_step,
            Leave: self._leave_step,
            MemAccess: self._mem_step,
            MdlRecord: self._mdl_step,
            SglRecord: self._sgl_step,
        }

    def _apply_other(self, record: Record) -> Effects:
        """A directive or comment (no CPU, no effects), or an event of a subclass of a known record class."""
        if not isinstance(record, Event):
            self._directive(record)
            return Effects(record)
        base = next((cls for cls in type(record).__mro__ if cls in self._steps), None)
        self._steps[type(record)] = self._steps[base] if base is not None else self._at_level
        return self.apply(record)

    # --- the steps: each returns the level the event ran at --------------------------------

    def _at_level(self, event: Event, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        """The level a driver-side event runs at: its captured `irql=` (which the CPU takes,
        noting where the bookkeeping disagreed), else the bookkeeping's."""
        captured = event.context.irql
        modelled = cpu.irql
        if captured is None:
            return modelled
        if modelled is not None and captured is not modelled and captured != modelled:
            out.fact("irql-differs", modelled)
        cpu.irql = captured
        return captured

    def _dma_step(self, event: DmaAccess, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        # the device is not a CPU: a dma line's cpu=/irql= do not change any CPU's state
        self._dma(event, out)
        return event.context.irql

    def _call_step(self, event: Call, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(event, cpu, out)
        self._invoke(event, cpu, out, event.result, "call")
        return irql

    def _enter_step(self, event: Enter, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(event, cpu, out)
        cpu.frames.append(Frame("enter", event.name, event.location, irql, irql, None, event.arguments))
        self._invoke(event, cpu, out, None, "enter")
        return irql

    def _leave_step(self, event: Leave, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(event, cpu, out)
        self._leave(event, cpu, out)
        return irql

    def _mem_step(self, event: MemAccess, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(event, cpu, out)
        self._mem(event, out)
        return irql

    def _mdl_step(self, record: MdlRecord, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(record, cpu, out)
        self.mdl_ddis._mdl_record(record, out)
        return irql

    def _sgl_step(self, record: SglRecord, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(record, cpu, out)
        self.sgl_ddis._sgl_record(record, out)
        return irql

    def _directive(self, record: Record) -> None:
        if isinstance(record, TargetDirective):
            target = Target(arch=record.arch or self.target.arch, page_size=record.page_size or self.target.page_size)
            self._reset_memory(target, self.memory_config)
        elif isinstance(record, MemoryDirective):
            default = MemoryConfig()
            self._reset_memory(self.target, MemoryConfig(
                size=default.size if record.size is None else record.size,
                layout=record.layout or default.layout,
                seed=default.seed if record.seed is None else record.seed,
            ))
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
                self.adapter_ddis.storport_adapter = adapter
            elif record.address is not None:
                self.adapter_ddis.adapters[record.address] = adapter

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

    def _callback(self, event: Callback, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        enter = cpu.frames[-1] if cpu.frames and cpu.frames[-1].kind == "enter" else None
        ordinal = None
        if enter is not None:
            runs_for, arguments = enter.name, enter.arguments
            if enter.name in RUNS_ROUTINE_AT_DISPATCH:
                cpu.frames[-1] = replace(enter, ran_routine=True)
                ordinal = self.sgl_ddis._pending_build(cpu).get(enter.name)
        else:  # a routine the DDI queued runs now, maybe on another CPU: its request, by Context
            deferred = self.deferred_routines.pop(_context_of(event.arguments), None)
            runs_for, arguments = (deferred.ddi, deferred.arguments) if deferred is not None else (None, ())
            if deferred is not None:
                ordinal = deferred.ordinal
                out.fact("deferred-routine", deferred)
        expected = DISPATCH_LEVEL if runs_for in RUNS_ROUTINE_AT_DISPATCH else ROUTINE_IRQL.get(event.name)
        captured = event.context.irql
        if expected is not None and captured is not None and not captured.is_level(expected):
            out.fact("routine-irql", (expected, captured))
        entry = captured if captured is not None else expected if expected is not None else cpu.irql
        cpu.frames.append(Frame("callback", event.name, event.location, entry, cpu.irql, runs_for, arguments))
        cpu.irql = entry
        if runs_for in ("GetScatterGatherList", "GetScatterGatherListEx") and ordinal is not None:
            self.sgl_ddis._bind_got_list(event, ordinal)
        return entry

    def _done(self, event: Done, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
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
        if frame.runs_for in ("AllocateAdapterChannel", "AllocateAdapterChannelEx"):
            self.sgl_ddis._adapter_control_returned(frame.arguments, event, out)
        del cpu.frames[index:]
        cpu.settle_locks(index)  # a lock the routine leaked is reported once, at its `done`
        cpu.irql = frame.saved_irql  # None when the level before the routine was never known
        return at_return

    def _leave(self, event: Leave, cpu: CpuState, out: EffectsBuilder) -> None:
        index = cpu.innermost("enter", event.name)
        if index is None:
            out.fact("no-open-enter", event.name)
            return
        frame = cpu.frames[index]
        del cpu.frames[index:]
        cpu.settle_locks(index)
        out.previous.append(frame)
        if frame.name in RUNS_ROUTINE_AT_DISPATCH and not frame.ran_routine and is_success(event.result):
            self._defer_routine(frame, cpu, event.location)
        if frame.arguments:  # the DDI acts on the arguments it was entered with (a leave's out-arguments first)
            event = Leave(location=event.location, context=event.context, name=event.name,
                          arguments=(*event.arguments, *frame.arguments), result=event.result)
        self._invoke(event, cpu, out, event.result, phase="leave")

    def _defer_routine(self, enter: Frame, cpu: CpuState, at: SourceLocation) -> None:
        """The DDI returned success without running the driver's routine: the system queued it
        until the adapter or map registers are free ("called at DISPATCH_LEVEL when the system
        DMA controller or bus-master adapter is available", PGET_SCATTER_GATHER_LIST and
        PBUILD_SCATTER_GATHER_LIST, wdm.h; PALLOCATE_ADAPTER_CHANNEL likewise), to be paired
        with the `callback` that carries the request's Context."""
        context = _context_of(enter.arguments)
        if context is None:
            return
        request = DeferredRoutine(enter.name, enter.arguments, self.sgl_ddis._pending_build(cpu).get(enter.name), enter.location, at)
        remember(self.deferred_routines, context, request)

    def open_enter(self, cpu: int) -> Frame | None:
        """The innermost `enter` still open on a CPU (the DDI a `callback` there runs for), or None."""
        state = self.cpu(cpu)
        index = state.innermost("enter")
        return state.frames[index] if index is not None else None

    def open_routine(self, cpu: int) -> Frame | None:
        """The innermost driver routine (`callback`) still running on a CPU, or None."""
        state = self.cpu(cpu)
        index = state.innermost("callback")
        return state.frames[index] if index is not None else None

    def channel_opened_at(self, adapter: int) -> SourceLocation | None:
        """Where the adapter channel still open on `adapter` was allocated, or None."""
        return self.channels.get(adapter)

    def transfer_mapped_at(self, key: tuple) -> SourceLocation | None:
        """Where the MapTransfer of a still-mapped transfer ((adapter, MapRegisterBase, CurrentVa), as
        `unflushed` names it) ran, or None."""
        transfer = self.transfers.get(key)
        return transfer[3] if transfer is not None else None

    def open_frames(self) -> list[Frame]:
        """Frames still open on any CPU, in CPU order then call order."""
        return [frame for number in sorted(self.cpus) for frame in self.cpus[number].frames]

    def irql(self, cpu: int) -> Irql | None:
        return self.cpu(cpu).irql

    def held_locks(self, cpu: int) -> tuple[HeldLock, ...]:
        return tuple(self.cpu(cpu).locks)

    # --- DDI dispatch -----------------------------------------------------------------

    def _invoke(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        if phase != "leave":
            self._check_adapter(event, out)
        plan = self._handlers.get(name)
        if plan is None:
            if phase != "leave":
                out.fact("unhandled", True)
            return
        handler, at_enter, returns_status, returns_pointer = plan
        if phase == "enter" and not at_enter:
            return  # most DDIs take effect when they return: at the `leave`
        if returns_status and result is not None and not is_success(result):
            out.fact("failed", result)  # a call that failed does nothing
            return
        if returns_pointer and not as_int(result):
            out.fact("failed", result)  # NULL (or no logged result): nothing was created
            return
        handler(event, cpu, out, result, phase)

    def _handler_table(self) -> dict[str, tuple[Callable, bool, bool, bool]]:
        """Per DDI, built once: its handler, and whether it acts at `enter`, returns a status,
        returns the new object's address (so `_invoke` asks one dictionary per event)."""
        table: dict[str, tuple[Callable, bool, bool, bool]] = {}
        for family in self.families:
            for ddi, method in family.HANDLERS.items():
                table[ddi] = (getattr(family, method), ddi in RUNS_AT_ENTER, ddi in RETURNS_STATUS, ddi in RETURNS_POINTER)
        return table

    def handled_ddis(self) -> frozenset[str]:
        """The DDIs the model replays."""
        return frozenset(self._handlers)

    def _check_adapter(self, event: Event, out: EffectsBuilder) -> None:
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        if address is None or event.name == "IoGetDmaAdapter":  # type: ignore[attr-defined]
            return
        adapter = self.adapters.get(address)
        if adapter is None:
            out.fact("unknown-adapter", address)
        elif not adapter.live:
            out.fact("adapter-put", adapter)

    # --- memory accesses ------------------------------------------------------------------------

    def _mem(self, event: MemAccess, out: EffectsBuilder) -> None:
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

    def _dma(self, event: DmaAccess, out: EffectsBuilder) -> None:
        pieces = self.bus.resolve(event.address, event.length)
        out.accesses = pieces
        if event.access != "write":
            return
        data = pattern(event.length, event.fill, event.data) if event.data else None
        for piece in pieces:
            entry = piece.entry
            memory = self.bounce_memory if piece.state == "live" and entry is not None and self._bounced(entry) else self.ram
            if data is not None:
                memory.write(piece.start, data[piece.start - event.address : piece.start - event.address + piece.length])
            else:  # one byte repeated: filled in place, the bytes never built
                memory.fill(piece.start, min(piece.length, event.address + event.length - piece.start), event.fill or 0)

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
        ordinal = self.sgl_ddis.list_in_buffer.get(buffer)
        return self.lists.get(ordinal) if ordinal is not None else None

    def lists_covering(self, va: int, length: int) -> tuple[SgList, ...]:
        """Live lists whose transfer includes any byte of [va, va + length)."""
        shift = self.space.shift
        ordinals: set[int] = set()
        for vpn in range(va >> shift, ((va + max(length, 1) - 1) >> shift) + 1):
            owners = self.sgl_ddis._list_pages.get(vpn)
            if owners:
                ordinals |= owners
        if not ordinals:
            return ()
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
            return self.put_by_ordinal.get(entry.key)  # type: ignore[arg-type]
        if entry.kind == "common-buffer":
            return self.adapter_ddis.common_buffers.at(entry.key) or self.adapter_ddis.freed_common_buffers.get(entry.key)  # type: ignore[arg-type]
        transfer = self.transfers.get(entry.key)  # type: ignore[arg-type]
        return transfer[1] if transfer is not None else None

    def va_of_physical(self, address: int) -> int | None:
        """The driver's virtual address behind a physical (direct bus) address, if known."""
        return self.space.virtual(address)

    def driver_va(self, entry: BusEntry, bus: int) -> int | None:
        """The driver's virtual address whose data bus address `bus` of a mapping carries: the
        buffer behind a list element (direct or bounced), a mapped transfer or a common buffer."""
        if entry.kind == "common-buffer":
            return entry.key + (bus - entry.bus)  # type: ignore[operator]
        if entry.kind == "transfer":
            return entry.key[2] + (bus - entry.bus)  # type: ignore[index]
        sgl = self.owner(entry)
        if sgl is None or entry.index >= len(sgl.segments) or sgl.segments[entry.index].bus != entry.bus:
            return None  # a mapping the list no longer has (a captured `sgl` record replaced it)
        segment = sgl.segments[entry.index]
        return sgl.current_va + segment.offset + (bus - segment.bus)

    def freed_block_in(self, va: int, length: int = 1) -> Block | None:
        """A freed block (remembered, not since reallocated) sharing a byte with [va, va + length)."""
        return self.pool.freed_overlapping(va, length)

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
        return tuple(self.adapter_ddis.common_buffers)

    def live_adapters(self) -> tuple[Adapter, ...]:
        """Adapters IoGetDmaAdapter returned and PutDmaAdapter has not released."""
        return tuple(adapter for adapter in self.adapters.values() if adapter.live and adapter.version is not None)

    def adapter_at(self, address: int) -> Adapter | None:
        """The adapter (live or put) at `address`, as IoGetDmaAdapter or `@adapter` made it."""
        return self.adapters.get(address)

    def storport_dma_adapter(self) -> Adapter | None:
        """The adapter StorPort's DMA calls use: `@adapter storport`, or the one the model
        assumed at the first StorPort build (None before either)."""
        return self.adapter_ddis.storport_adapter

    def calculation(self, adapter: int | None, current_va: int, length: int) -> Calculation | None:
        """The last successful CalculateScatterGatherList on `adapter` for this CurrentVa and
        Length (its captured ScatterGatherListSize and NumberOfMapRegisters), if any."""
        return self.calculations.get((adapter, current_va, length))

    def mapping_direction(self, entry: BusEntry) -> str | None:
        """Which way a mapping lets data go: `to-device` (WriteToDevice), `from-device`, or
        None for a common buffer (both ways)."""
        if entry.kind == "sgl":
            owner = self.owner(entry)
            return None if owner is None else "to-device" if owner.write_to_device else "from-device"
        if entry.kind == "transfer":
            transfer = self.transfers.get(entry.key)  # type: ignore[arg-type]
            return None if transfer is None else "to-device" if transfer[2] else "from-device"
        return None

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
