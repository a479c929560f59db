"""Replaying IoGetDmaAdapter, PutDmaAdapter and the common-buffer DDIs."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .adapter import adapter_from_description
from .bus import BusEntry
from .common_buffer import CommonBuffer
from .cpu import CpuState
from .effects import EffectsBuilder
from .events import Event
from .retained import remember
from .values import Value, as_bool, as_int

if TYPE_CHECKING:
    from .machine import Machine

__all__ = ["AdapterDdis"]


class AdapterDdis:
    """The adapter and common-buffer DDIs.

    A mixin of `Machine`: the methods use the machine's tables. `HANDLERS` maps each DDI
    to the method that replays it."""

    HANDLERS: dict[str, str] = {
        "IoGetDmaAdapter": "_get_adapter",
        "PutDmaAdapter": "_put_adapter",
        "AllocateCommonBuffer": "_common_allocate",
        "AllocateCommonBufferEx": "_common_allocate",
        "AllocateCommonBufferWithBounds": "_common_allocate",
        "StorPortGetUncachedExtension": "_common_allocate",
        "FreeCommonBuffer": "_common_free",
    }

    def _get_adapter(self: Machine, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        address = as_int(result) or 0  # the dispatcher turned NULL away
        adapter = adapter_from_description(
            address, event.arg("DeviceDescription"), as_int(event.arg("NumberOfMapRegisters")), event.location  # type: ignore[attr-defined]
        )
        self.adapters[address] = adapter
        out.created.append(adapter)

    def _put_adapter(self: Machine, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
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

    def _common_allocate(self: Machine, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        va = as_int(result) or 0  # the dispatcher turned NULL away
        name = event.name  # type: ignore[attr-defined]
        length = as_int(event.arg("NumberOfBytes" if name == "StorPortGetUncachedExtension" else "Length")) or 0  # type: ignore[attr-defined]
        logical = as_int(event.arg("LogicalAddress"))  # type: ignore[attr-defined]
        if logical is None:
            logical = self._next_logical
        page = self.target.page_size
        self._next_logical = max(self._next_logical, logical + ((length + page - 1) // page + 1) * page)
        buffer = CommonBuffer(
            va, logical, length, bool(as_bool(event.arg("CacheEnabled"))), as_int(event.arg("DmaAdapter")), name,  # type: ignore[attr-defined]
            self._next(), event.location,
        )
        self._bind_range(va, logical, length)
        self.common_buffers.insert(va, max(length, 1), buffer)
        self.freed_common_buffers.pop(va, None)
        self.bus.add(BusEntry(logical, max(length, 1), "common-buffer", va))
        out.created.append(buffer)

    def _bind_range(self: Machine, va: int, physical: int, length: int) -> None:
        shift = self.space.shift
        pages = self.target.span_pages(va, length)
        for index in range(pages):
            self.space.bind((va >> shift) + index, (physical >> shift) + index)

    def _common_free(self: Machine, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
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
        self.bus.retire(BusEntry(buffer.logical, max(buffer.length, 1), "common-buffer", buffer.va))
        freed = replace(buffer, freed_at=event.location)
        remember(self.freed_common_buffers, buffer.va, freed)
        out.previous.append(buffer)
        out.released.append(freed)
