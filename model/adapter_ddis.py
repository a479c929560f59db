"""Replaying IoGetDmaAdapter, PutDmaAdapter and the common-buffer DDIs."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from .adapter import Adapter, adapter_from_description
from .bus import BusEntry
from .common_buffer import CommonBuffer
from .cpu import CpuState
from .effects import EffectsBuilder
from .events import Event
from .intervals import IntervalMap
from .retained import remember
from .shared import Ordinals, SharedMemory
from .values import Value, as_bool, as_int

if TYPE_CHECKING:  # the list and channel families, made after it
    from .channel_ddis import ChannelDdis
    from .sgl_ddis import SglDdis


__all__ = ["AdapterDdis"]


class AdapterDdis:
    """The adapter and common-buffer DDIs: a family of the machine, with its state (the
    adapters, the StorPort adapter, live and freed common buffers). It asks the list and
    channel families what an adapter still has outstanding when it is put. `HANDLERS` maps each DDI to the
    method that replays it."""

    HANDLERS: dict[str, str] = {
        "IoGetDmaAdapter": "_get_adapter",
        "PutDmaAdapter": "_put_adapter",
        "AllocateCommonBuffer": "_common_allocate",
        "AllocateCommonBufferEx": "_common_allocate",
        "AllocateCommonBufferWithBounds": "_common_allocate",
        "StorPortGetUncachedExtension": "_common_allocate",
        "FreeCommonBuffer": "_common_free",
    }

    QUERIES: dict[str, str] = {"live_common_buffers": "live_common_buffers", "live_adapters": "live_adapters"}

    def __init__(self, memory: SharedMemory, ordinals: Ordinals) -> None:
        self.memory = memory
        self.ordinals = ordinals
        self.sgl_ddis: SglDdis | None = None  # set by the machine once the list and channel families are made
        self.channel_ddis: ChannelDdis | None = None
        self.adapters: dict[int, Adapter] = {}
        self.storport_adapter: Adapter | None = None
        self.common_buffers: IntervalMap[CommonBuffer] = IntervalMap()
        self.freed_common_buffers: OrderedDict[int, CommonBuffer] = OrderedDict()
        self.reset_memory()

    def live_common_buffers(self) -> tuple[CommonBuffer, ...]:
        return tuple(self.common_buffers)

    def live_adapters(self) -> tuple[Adapter, ...]:
        """Adapters IoGetDmaAdapter returned and PutDmaAdapter has not released."""
        return tuple(adapter for adapter in self.adapters.values() if adapter.live and adapter.version is not None)

    def reset_memory(self) -> None:
        self._next_logical = 0x10000000  # common buffers without a captured logical address

    def adapter_for(self, event: Event, storport: bool) -> Adapter:
        """The adapter a list DDI builds through: StorPort's, or the one at DmaAdapter (one
        that restricts nothing when the trace never made it)."""
        if storport:
            if self.storport_adapter is None:
                self.storport_adapter = Adapter(None, "storport", None, True, True, 32, 0x10000, 17, 1, event.location)
            return self.storport_adapter
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        adapter = self.adapters.get(address) if address is not None else None
        if adapter is None:  # never created in the trace: assume nothing it would restrict
            adapter = Adapter(address, "wdm", None, True, True, 64, None, None, 1, event.location)
        return adapter


    def _get_adapter(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        address = as_int(result) or 0  # the dispatcher turned NULL away
        adapter = adapter_from_description(
            address, event.arg("DeviceDescription"), as_int(event.arg("NumberOfMapRegisters")), event.location  # type: ignore[attr-defined]
        )
        self.adapters[address] = adapter
        out.created.append(adapter)

    def _put_adapter(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        address = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
        adapter = self.adapters.get(address) if address is not None else None
        if adapter is None or not adapter.live:
            return
        lists = self.sgl_ddis.lists_through(address) if self.sgl_ddis is not None else ()
        buffers = tuple(cb for cb in self.common_buffers if cb.adapter == address)
        channel = (address,) if self.channel_ddis is not None and address in self.channel_ddis.channels else ()
        if lists or buffers or channel:
            out.fact("outstanding", (lists, buffers, channel))
        out.previous.append(adapter)
        put = replace(adapter, put_at=event.location)
        self.adapters[address] = put
        out.released.append(put)

    def _common_allocate(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        va = as_int(result) or 0  # the dispatcher turned NULL away
        name = event.name  # type: ignore[attr-defined]
        length = as_int(event.arg("NumberOfBytes" if name == "StorPortGetUncachedExtension" else "Length")) or 0  # type: ignore[attr-defined]
        logical = as_int(event.arg("LogicalAddress"))  # type: ignore[attr-defined]
        if logical is None:
            logical = self._next_logical
        page = self.memory.target.page_size
        self._next_logical = max(self._next_logical, logical + ((length + page - 1) // page + 1) * page)
        buffer = CommonBuffer(
            va, logical, length, bool(as_bool(event.arg("CacheEnabled"))), as_int(event.arg("DmaAdapter")), name,  # type: ignore[attr-defined]
            self.ordinals.next(), event.location,
        )
        self.memory.bind_range(va, logical, length)
        self.common_buffers.insert(va, max(length, 1), buffer)
        self.freed_common_buffers.pop(va, None)
        self.memory.bus.add(BusEntry(logical, max(length, 1), "common-buffer", va))
        out.created.append(buffer)

    def _common_free(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        va = as_int(event.arg("VirtualAddress"))  # type: ignore[attr-defined]
        buffer = self.common_buffers.at(va) if va is not None else None
        if buffer is None:
            freed = self.freed_common_buffers.get(va) if va is not None else None
            out.fact("common-buffer-freed-before" if freed is not None else "common-buffer-unknown", freed or va)
            inside = self.common_buffers.containing(va) if va is not None and freed is None else None
            if inside is not None:
                out.fact("common-buffer-inside", inside)  # VirtualAddress points into a live buffer, not at its start
            return
        mismatch = []
        for parameter, allocated in (("Length", buffer.length), ("LogicalAddress", buffer.logical)):
            given = as_int(event.arg(parameter))  # type: ignore[attr-defined]
            if given is not None and given != allocated:
                mismatch.append((parameter, given, allocated))
        cache = as_bool(event.arg("CacheEnabled"))  # type: ignore[attr-defined]
        if cache is not None and cache != buffer.cache_enabled:
            mismatch.append(("CacheEnabled", cache, buffer.cache_enabled))
        if mismatch:
            out.fact("common-buffer-mismatch", tuple(mismatch))
        self.common_buffers.pop(buffer.va)
        self.memory.bus.retire(BusEntry(buffer.logical, max(buffer.length, 1), "common-buffer", buffer.va))
        freed = replace(buffer, freed_at=event.location)
        remember(self.freed_common_buffers, buffer.va, freed)
        out.previous.append(buffer)
        out.released.append(freed)
