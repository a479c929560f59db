"""The simulated machine: `Machine().apply(record) -> Effects`, and questions about its state.

The machine replays a trace in order. Each DDI the model knows changes state the way its
documentation says, with the effect its captured return value implies (a failed call does
nothing; a free by the wrong family still frees). `Effects` says what one record did:
objects created and released (as frozen snapshots carrying the events' locations), the
device-access pieces, and `facts`: plain observations a rule may judge ("this block was
already freed at line 40"), never verdicts.

The work is the families' (docs/model.md, "DDI families"): each `*_ddis.py` module holds a
family's state and handlers, `routines.py` the CPUs and driver routines, `accesses.py` the
`mem`/`dma` records; `shared.py` what they share. The machine makes them, dispatches each
record and DDI to them, and answers the rules' questions; that query API, one small method a
question, is most of this module's length.

State is kept for live objects and a bounded memory of released ones (what each keeps, and
why the bounds leave the answers alone: `retained`), never for the events seen. `apply` looks
the record's class up in a table built once, and each DDI's handler and calling convention in
another: the cost of an event is what it does, not a walk down a chain of tests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .accesses import Accesses
from .adapter import Adapter
from .adapter_ddis import AdapterDdis
from .bus import BusEntry, Resolution
from .channel_ddis import ChannelDdis
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
from .irql import Irql
from .location import SourceLocation
from .lock_ddis import LockDdis
from .mdl import Mdl
from .mdl_ddis import MdlDdis
from .memory import MemoryConfig
from .platform import Target
from .pool import Block
from .pool_ddis import PoolDdis
from .routines import DEFAULT_CPU, Routines
from .sgl import Calculation, SgList
from .sgl_ddis import SglDdis
from .shared import Ordinals, SharedMemory
from .status import is_success
from .values import Value, as_int

__all__ = ["DEFAULT_CPU", "Effects", "Machine", "MemoryConfig"]


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
# VOID DDIs whose failure is an exception: a failure status logged on one means it raised and did
# nothing. MmProbeAndLockPages: "Calls to MmProbeAndLockPages must be enclosed in a try/except
# block. If the pages do not support the specified operation, the routine raises the
# STATUS_ACCESS_VIOLATION or other exceptions" (nf-wdm-mmprobeandlockpages).
RAISES_ON_FAILURE = frozenset({"MmProbeAndLockPages"})
# DDIs that return the new object's address; NULL (or no logged address) means nothing was made.
RETURNS_POINTER = frozenset(
    {"ExAllocatePool", "ExAllocatePoolWithTag", "ExAllocatePoolWithQuota", "ExAllocatePoolWithQuotaTag",
     "ExAllocatePoolWithTagPriority", "ExAllocatePool2", "ExAllocatePool3", "MmAllocateContiguousMemory",
     "MmAllocateContiguousMemorySpecifyCache", "IoAllocateMdl", "MmAllocatePagesForMdl", "MmAllocatePagesForMdlEx",
     "IoGetDmaAdapter", "AllocateCommonBuffer", "AllocateCommonBufferEx", "AllocateCommonBufferWithBounds",
     "StorPortGetUncachedExtension"}
)
class Machine:
    """The machine a trace drives. Feed it every record in order with `apply`.

    The facts the families report are listed in `model.effects`.
    Queries a rule may ask besides: owner / mapping_direction / driver_va of a bus entry,
    block_at / freed_block_in of a virtual range, adapter_at, cpu_view / device_view.
    """

    def __init__(self, target: Target | None = None, memory: MemoryConfig | None = None) -> None:
        self.driver: dict[str, Value] = {}
        self.events = 0
        self.deferred_routines: OrderedDict[int, DeferredRoutine] = OrderedDict()  # Context -> a queued request
        self.ordinals = Ordinals()
        self.memory = SharedMemory(target or Target(), memory or MemoryConfig(), forget=self._forget_retired)
        # The DDI families, each with its state and handlers, given what it shares and the
        # families it asks. Adding a family is a module and one line here (docs/model.md).
        self.adapter_ddis = AdapterDdis(self.memory, self.ordinals)
        self.mdl_ddis = MdlDdis(self.memory, self.ordinals)
        self.sgl_ddis = SglDdis(self.memory, self.ordinals, self.mdl_ddis, self.adapter_ddis)
        self.pool_ddis = PoolDdis(self.memory, self.sgl_ddis, self.adapter_ddis, self.mdl_ddis)
        self.channel_ddis = ChannelDdis(self.memory, self.mdl_ddis, self.adapter_ddis, self.sgl_ddis, self.deferred_routines)
        self.lock_ddis = LockDdis()
        self.routines = Routines(self.sgl_ddis, self.channel_ddis, self.deferred_routines, self._invoke)
        self.cpus = self.routines.cpus
        self.accesses = Accesses(self.memory, self.pool_ddis, self.sgl_ddis, self.channel_ddis, self.adapter_ddis)
        self.adapter_ddis.sgl_ddis = self.mdl_ddis.sgl_ddis = self.sgl_ddis
        self.adapter_ddis.channel_ddis = self.channel_ddis
        self.families = (self.pool_ddis, self.mdl_ddis, self.adapter_ddis, self.sgl_ddis, self.channel_ddis, self.lock_ddis)
        self._handlers = self._handler_table()
        self._queries = {name: getattr(part, method) for part in (*self.families, self.routines)
                         for name, method in getattr(part, "QUERIES", {}).items()}
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
    transfers = property(lambda self: self.channel_ddis.transfers)
    channels = property(lambda self: self.channel_ddis.channels)
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
            cpu = self.routines.cpu_of(record)  # type: ignore[arg-type]
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
            Callback: self.routines.callback,
            Done: self.routines.done,
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
        self.accesses.dma(event, out)
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
        self.routines.leave(event, cpu, out)
        return irql

    def _mem_step(self, event: MemAccess, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(event, cpu, out)
        self.accesses.mem(event, out)
        return irql

    def _mdl_step(self, record: MdlRecord, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(record, cpu, out)
        self.mdl_ddis.mdl_record(record, out)
        return irql

    def _sgl_step(self, record: SglRecord, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        irql = self._at_level(record, cpu, out)
        self.sgl_ddis.sgl_record(record, out)
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

    # --- CPUs and routines (model/routines.py) ---------------------------------------------

    def cpu(self, number: int) -> CpuState:
        return self.routines.cpu(number)

    def cpu_of(self, event: Event) -> CpuState:
        return self.routines.cpu_of(event)

    def open_enter(self, cpu: int) -> Frame | None:
        return self.routines.open_enter(cpu)

    def open_routine(self, cpu: int) -> Frame | None:
        return self.routines.open_routine(cpu)

    def open_frames(self) -> list[Frame]:
        return self.routines.open_frames()

    def irql(self, cpu: int) -> Irql | None:
        return self.routines.irql(cpu)

    def held_locks(self, cpu: int) -> tuple[HeldLock, ...]:
        return self.routines.held_locks(cpu)

    def channel_opened_at(self, adapter: int) -> SourceLocation | None:
        """Where the adapter channel still open on `adapter` was allocated, or None."""
        return self.channel_ddis.channels.get(adapter)

    def transfer_mapped_at(self, key: tuple) -> SourceLocation | None:
        """Where the MapTransfer of a still-mapped transfer ((adapter, MapRegisterBase, CurrentVa), as
        `unflushed` names it) ran, or None."""
        transfer = self.channel_ddis.transfers.get(key)
        return transfer[3] if transfer is not None else None

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
                table[ddi] = (getattr(family, method), ddi in RUNS_AT_ENTER, ddi in RETURNS_STATUS or ddi in RAISES_ON_FAILURE,
                              ddi in RETURNS_POINTER)
        return table

    def query(self, name: str) -> tuple:
        """A family's end-of-trace query by the name a rule's `each:` gives (`QUERIES`)."""
        return self._queries[name]()

    def query_names(self) -> frozenset[str]:
        return frozenset(self._queries)

    def handled_ddis(self) -> frozenset[str]:
        """The DDIs the model replays."""
        return frozenset(self._handlers)

    def _check_adapter(self, event: Event, out: EffectsBuilder) -> None:
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        if address is None or event.name == "IoGetDmaAdapter":  # type: ignore[attr-defined]
            return
        adapter = self.adapter_ddis.adapters.get(address)
        if adapter is None:
            out.fact("unknown-adapter", address)
        elif not adapter.live:
            out.fact("adapter-put", adapter)

    # --- questions ------------------------------------------------------------------------------

    def live_sgls(self) -> tuple[SgList, ...]:
        return self.sgl_ddis.live_sgls()

    def sgl_at(self, buffer: int) -> SgList | None:
        """The live list whose pointer (caller buffer) is `buffer`."""
        ordinal = self.sgl_ddis.list_in_buffer.get(buffer)
        return self.sgl_ddis.lists.get(ordinal) if ordinal is not None else None

    def resolve_bus_range(self, address: int, length: int) -> tuple[Resolution, ...]:
        return self.memory.bus.resolve(address, length)

    def va_of_physical(self, address: int) -> int | None:
        """The driver's virtual address behind a physical (direct bus) address, if known."""
        return self.memory.space.virtual(address)

    def freed_block_in(self, va: int, length: int = 1) -> Block | None:
        """A freed block (remembered, not since reallocated) sharing a byte with [va, va + length)."""
        return self.pool_ddis.table.freed_overlapping(va, length)

    def block_at(self, va: int) -> Block | None:
        """The live pool block holding `va`."""
        return self.pool_ddis.table.containing(va)

    def mdl(self, address: int) -> Mdl | None:
        return self.mdl_ddis.mdls.get(address)

    def adapter(self, address: int) -> Adapter | None:
        return self.adapter_ddis.adapters.get(address)

    def live_mdls(self) -> tuple[Mdl, ...]:
        return self.mdl_ddis.live_mdls()

    def live_blocks(self) -> tuple[Block, ...]:
        return self.pool_ddis.live_blocks()

    def live_common_buffers(self) -> tuple[CommonBuffer, ...]:
        return self.adapter_ddis.live_common_buffers()

    def live_adapters(self) -> tuple[Adapter, ...]:
        return self.adapter_ddis.live_adapters()

    def adapter_at(self, address: int) -> Adapter | None:
        """The adapter (live or put) at `address`, as IoGetDmaAdapter or `@adapter` made it."""
        return self.adapter_ddis.adapters.get(address)

    def storport_dma_adapter(self) -> Adapter | None:
        """The adapter StorPort's DMA calls use: `@adapter storport`, or the one the model
        assumed at the first StorPort build (None before either)."""
        return self.adapter_ddis.storport_adapter

    def calculation(self, adapter: int | None, current_va: int, length: int) -> Calculation | None:
        """The last successful CalculateScatterGatherList on `adapter` for this CurrentVa and
        Length (its captured ScatterGatherListSize and NumberOfMapRegisters), if any."""
        return self.sgl_ddis.calculations.get((adapter, current_va, length))

    def cpu_view(self, va: int, length: int) -> bytes:
        """The bytes the CPU reads at [va, va + length) now."""
        return self.memory.space.read(va, length)

    def lists_covering(self, va: int, length: int) -> tuple[SgList, ...]:
        return self.accesses.lists_covering(va, length)

    def owner(self, entry: BusEntry) -> Any:
        return self.accesses.owner(entry)

    def driver_va(self, entry: BusEntry, bus: int) -> int | None:
        return self.accesses.driver_va(entry, bus)

    def mapping_direction(self, entry: BusEntry) -> str | None:
        return self.accesses.mapping_direction(entry)

    def device_view(self, va: int, length: int) -> bytes:
        return self.accesses.device_view(va, length)
