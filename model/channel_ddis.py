"""Replaying the v1 DMA path: adapter channels, AdapterControl's return, map registers,
MapTransfer and FlushAdapterBuffers (and CancelAdapterChannel of a queued request)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from .adapter import AllocationAction, allocation_action
from .bus import BusEntry
from .cpu import CpuState, DeferredRoutine
from .effects import EffectsBuilder
from .events import Event
from .location import SourceLocation
from .sgl import Segment
from .shared import SharedMemory
from .status import is_success
from .values import Value, as_bool, as_int

if TYPE_CHECKING:  # the families it asks, made before it
    from .adapter_ddis import AdapterDdis
    from .mdl_ddis import MdlDdis
    from .sgl_ddis import SglDdis

__all__ = ["ChannelDdis"]


class ChannelDdis:
    """The adapter-channel and map-register DDIs: a family of the machine, with its state
    (open channels, what each adapter's AdapterControl returned, mapped transfers). It asks
    the MDL family for chains and page frames, the adapter family for adapters, and the list
    family to drop a list whose queued request is cancelled. `HANDLERS` maps each DDI to the
    method that replays it."""

    HANDLERS: dict[str, str] = {
        "AllocateAdapterChannel": "_allocate_channel",
        "AllocateAdapterChannelEx": "_allocate_channel",
        "FreeAdapterChannel": "_free_channel",
        "CancelAdapterChannel": "_cancel_channel",
        "MapTransfer": "_map_transfer",
        "FlushAdapterBuffers": "_flush",
        "FreeMapRegisters": "_free_map_registers",
    }

    QUERIES: dict[str, str] = {"held_map_registers": "held_map_registers"}  # what a rule's `each:` may ask at the end

    def __init__(self, memory: SharedMemory, mdl_ddis: MdlDdis, adapter_ddis: AdapterDdis, sgl_ddis: SglDdis,
                 deferred_routines: OrderedDict[int, DeferredRoutine]) -> None:
        self.memory = memory
        self.mdl_ddis = mdl_ddis
        self.adapter_ddis = adapter_ddis
        self.sgl_ddis = sgl_ddis
        self.deferred_routines = deferred_routines  # the machine's queue of routines the system runs later
        self.transfers: dict[tuple, tuple[int, Segment, bool, SourceLocation]] = {}
        self.channels: dict[int, SourceLocation] = {}
        self._channel_before: dict[tuple[int, int], SourceLocation | None] = {}  # (cpu, adapter) -> channel before an enter
        self.allocation_actions: dict[int, AllocationAction] = {}  # adapter -> what its last AdapterControl returned
        self.held_registers: dict[int, AllocationAction] = {}  # adapter -> the return that kept its map registers

    def held_map_registers(self) -> tuple[AllocationAction, ...]:
        """Map registers an AdapterControl kept (it returned DeallocateObjectKeepRegisters, as
        the trace says, not as the model assumed) that no FreeMapRegisters has released:
        "it calls FreeMapRegisters to release the map registers previously allocated by a
        call to AllocateAdapterChannel and retained because its AdapterControl routine
        returned DeallocateObjectKeepRegisters" (nc-wdm-pfree_map_registers)."""
        return tuple(self.held_registers.values())

    def _allocate_channel(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        if phase == "leave":
            # the enter opened the channel; a failure takes back this request's, not an earlier one
            before = self._channel_before.pop((cpu.number, adapter), None)
            if not is_success(result):
                out.fact("failed", result)
                if before is None:
                    self.channels.pop(adapter, None)
                else:
                    self.channels[adapter] = before
            return
        if phase == "call" and not is_success(result):
            out.fact("failed", result)  # nothing was opened; a channel already open stays open
            return
        if adapter in self.channels:
            out.fact("channel-open", self.channels[adapter])
        self.allocation_actions.pop(adapter, None)  # this channel's AdapterControl has not returned yet
        if phase == "enter":
            self._channel_before[(cpu.number, adapter)] = self.channels.get(adapter)
        self.channels[adapter] = self.channels.get(adapter, event.location)

    def _cancel_channel(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        """CancelAdapterChannel returned TRUE: the pending request with this DmaTransferContext
        (AllocateAdapterChannelEx, GetScatterGatherListEx or BuildScatterGatherListEx) is
        cancelled: "no resources are allocated and the execution routine is not called"
        (PCANCEL_ADAPTER_CHANNEL, wdm.h). FALSE: the routine has run or will run."""
        if not as_bool(result):
            return
        transfer = as_int(event.arg("DmaTransferContext"))  # type: ignore[attr-defined]
        for context, request in list(self.deferred_routines.items()):
            if next((as_int(a.value) for a in request.arguments if a.name == "DmaTransferContext"), None) != transfer:
                continue
            del self.deferred_routines[context]
            if request.ordinal is not None:
                sgl = self.sgl_ddis.lists.get(request.ordinal)
                if sgl is not None:
                    self.sgl_ddis.drop_list(sgl)
                    out.released.append(sgl)
            else:
                adapter = next((as_int(a.value) for a in request.arguments if a.name == "DmaAdapter"), None)
                if adapter is not None and self.channels.get(adapter) == request.entered_at:
                    del self.channels[adapter]
            return

    def adapter_control_returned(self, arguments: tuple, done: Event, out: EffectsBuilder) -> None:
        """AdapterControl returned. `done -> value` says what (IO_ALLOCATION_ACTION): KeepObject
        keeps the channel for FreeAdapterChannel; DeallocateObjectKeepRegisters releases it and
        keeps the map registers for FreeMapRegisters; DeallocateObject releases both. Where the
        trace does not say, the model takes the documented convention: a bus master's routine
        returns DeallocateObjectKeepRegisters, a system-DMA routine KeepObject."""
        address = next((as_int(a.value) for a in arguments if a.name == "DmaAdapter"), None)
        if address is None:
            return
        adapter = self.adapter_ddis.adapters.get(address)
        name = allocation_action(done.result)  # type: ignore[attr-defined]
        assumed = name is None
        if name is None:
            name = "DeallocateObjectKeepRegisters" if adapter is None or adapter.master else "KeepObject"
        action = AllocationAction(address, name, assumed, done.location)
        self.allocation_actions[address] = action
        out.fact("allocation-action", action)
        if name == "DeallocateObjectKeepRegisters" and not assumed:
            self.held_registers[address] = action
        if name != "KeepObject" and self.channels.pop(address, None) is not None:
            out.fact("channel-released-at-return", address)

    def _free_channel(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        unflushed = tuple(key for key in self.transfers if key[0] == adapter)
        if unflushed:
            out.fact("unflushed", unflushed)
        action = self.allocation_actions.get(adapter)
        if action is not None:
            out.fact("allocation-action", action)
        if self.channels.pop(adapter, None) is None:
            out.fact("no-channel", adapter)

    def _map_transfer(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        base = as_int(event.arg("MapRegisterBase"))  # type: ignore[attr-defined]
        current_va = as_int(event.arg("CurrentVa")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        write = bool(as_bool(event.arg("WriteToDevice")))  # type: ignore[attr-defined]
        mdl_address = as_int(event.arg("Mdl")) or 0  # type: ignore[attr-defined]
        chain = self.mdl_ddis.chain(mdl_address, out, current_va, length)
        chunks = []
        offset = 0
        for mdl in chain:
            while offset < length and mdl.va <= current_va + offset < mdl.end:
                va = current_va + offset
                n = min(length - offset, self.memory.target.page_size - (va & (self.memory.target.page_size - 1)), mdl.end - va)
                chunks.append(((self.mdl_ddis.pfn_of(mdl, va) << self.memory.space.shift) | (va & (self.memory.target.page_size - 1)), n))
                offset += n
        logical = as_int(result)
        if logical is None:
            logical = chunks[0][0] if chunks else 0
        bounced = bool(chunks) and (logical != chunks[0][0] or any(a[0] + a[1] != b[0] for a, b in zip(chunks, chunks[1:], strict=False)))
        segment = Segment(logical, sum(n for _, n in chunks), 0, bounced, tuple(chunks))
        key = (adapter, base, current_va)
        self.transfers[key] = (adapter, segment, write, event.location)
        self.memory.bus.add(BusEntry(segment.bus, max(segment.length, 1), "transfer", key))
        if bounced and write:
            done = 0
            for phys, n in segment.chunks:
                self.memory.bounce_memory.write(segment.bus + done, self.memory.ram.read(phys, n))
                done += n
        out.created.append(segment)

    def _flush(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        key = (as_int(event.arg("DmaAdapter")) or 0, as_int(event.arg("MapRegisterBase")), as_int(event.arg("CurrentVa")) or 0)  # type: ignore[attr-defined]
        transfer = self.transfers.pop(key, None)
        if transfer is None:
            out.fact("transfer-unknown", key)
            return
        _, segment, write, _ = transfer
        if segment.bounced and not write:
            done = 0
            for phys, n in segment.chunks:
                self.memory.ram.write(phys, self.memory.bounce_memory.read(segment.bus + done, n))
                done += n
        self.memory.bus.retire(BusEntry(segment.bus, max(segment.length, 1), "transfer", key))
        out.released.append(segment)

    def _free_map_registers(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        adapter = as_int(event.arg("DmaAdapter")) or 0  # type: ignore[attr-defined]
        base = as_int(event.arg("MapRegisterBase"))  # type: ignore[attr-defined]
        self.held_registers.pop(adapter, None)
        unflushed = tuple(key for key in self.transfers if key[0] == adapter and key[1] == base)
        if unflushed:
            out.fact("unflushed", unflushed)
        action = self.allocation_actions.get(adapter)
        if action is not None:
            out.fact("allocation-action", action)
        if adapter in self.channels:  # AdapterControl kept the channel (KeepObject)
            out.fact("channel-kept", self.channels[adapter])
        elif action is not None and action.name == "DeallocateObject" and not action.assumed:
            out.fact("registers-released", action)  # the system freed them when AdapterControl returned
