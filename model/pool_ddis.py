"""Replaying the pool DDIs: ExAllocatePool*, ExFreePool*, StorPort pool, contiguous memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cpu import CpuState
from .effects import EffectsBuilder
from .events import Event
from .pool import Block, PoolTable
from .shared import SharedMemory
from .status import is_success
from .values import Symbol, Value, as_int

if TYPE_CHECKING:  # the families it asks, made beside it
    from .adapter_ddis import AdapterDdis
    from .mdl_ddis import MdlDdis
    from .sgl_ddis import SglDdis


__all__ = ["PoolDdis"]

_POOL_FLAG_PAGED = 0x100  # POOL_FLAGS bit for paged pool (wdm.h)
_FREE_FAMILY = {"StorPortFreePool": "storport", "MmFreeContiguousMemory": "contiguous"}  # the others: by prefix


class PoolDdis:
    """The pool DDIs: a family of the machine, with its state (the pool's blocks, live and
    freed). It asks the list family which live lists use a block as their buffer, and the
    adapter family whether an address is a common buffer. `HANDLERS` maps each DDI to the
    method that replays it."""

    HANDLERS: dict[str, str] = {
        "ExAllocatePool": "_pool_allocate",
        "ExAllocatePoolWithTag": "_pool_allocate",
        "ExAllocatePoolWithQuota": "_pool_allocate",
        "ExAllocatePoolWithQuotaTag": "_pool_allocate",
        "ExAllocatePoolWithTagPriority": "_pool_allocate",
        "ExAllocatePool2": "_pool_allocate",
        "ExAllocatePool3": "_pool_allocate",
        "MmAllocateContiguousMemory": "_pool_allocate",
        "MmAllocateContiguousMemorySpecifyCache": "_pool_allocate",
        "StorPortAllocatePool": "_storport_allocate",
        "StorPortAllocateContiguousMemorySpecifyCacheNode": "_storport_allocate",
        "StorPortAllocateDmaMemory": "_storport_allocate",
        "ExFreePool": "_pool_free",
        "ExFreePoolWithTag": "_pool_free",
        "ExFreePool2": "_pool_free",
        "StorPortFreePool": "_pool_free",
        "MmFreeContiguousMemory": "_pool_free",
        "StorPortFreeContiguousMemorySpecifyCache": "_pool_free",
        "StorPortFreeDmaMemory": "_pool_free",
    }

    QUERIES: dict[str, str] = {"live_blocks": "live_blocks"}  # what a rule's `each:` may ask at the end

    def __init__(self, memory: SharedMemory, sgl_ddis: SglDdis, adapter_ddis: AdapterDdis, mdl_ddis: MdlDdis) -> None:
        self.memory = memory
        self.mdl_ddis = mdl_ddis
        self.sgl_ddis = sgl_ddis
        self.adapter_ddis = adapter_ddis
        self.table = PoolTable()

    def live_blocks(self) -> tuple[Block, ...]:
        return tuple(self.table)


    def _pool_allocate(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        address = as_int(result) or 0  # the dispatcher turned NULL away
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

    def _storport_allocate(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        address = as_int(event.arg("BufferPointer"))  # type: ignore[attr-defined]
        if not is_success(result) or not address:
            out.fact("failed", result)
            return
        family = "storport" if event.name == "StorPortAllocatePool" else "storport-contiguous"  # type: ignore[attr-defined]
        size = as_int(event.arg("NumberOfBytes")) or 0  # type: ignore[attr-defined]
        self._new_block(event, out, address, size, as_int(event.arg("Tag")), "nonpaged", family)  # type: ignore[attr-defined]
        physical = as_int(event.arg("PhysicalAddress"))  # type: ignore[attr-defined]
        if physical:
            self.memory.bind_range(address, physical, size)

    def _new_block(self, event: Event, out: EffectsBuilder, address: int, size: int, tag: int | None, pool: str, family: str) -> None:
        block = Block(address, size, tag, pool, family, event.name, self.table.next_ordinal(), event.location)  # type: ignore[attr-defined]
        overlapped = self.table.allocate(block)
        if overlapped:
            out.fact("overlaps-live-block", tuple(overlapped))
        out.created.append(block)

    def _pool_free(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        address = as_int(event.arg("P") if name.startswith("ExFree") else  # type: ignore[attr-defined]
                         event.arg("BufferPointer") if name == "StorPortFreePool" else event.arg("BaseAddress"))  # type: ignore[attr-defined]
        family = _FREE_FAMILY.get(name, "storport-contiguous" if name.startswith("StorPortFree") else "ex")
        out.fact("free-family", family)
        tag = as_int(event.arg("Tag"))  # type: ignore[attr-defined]
        if tag is not None:
            out.fact("free-tag", tag)
        if address is None:
            return
        common = self.adapter_ddis.common_buffers.at(address)
        if common is not None:
            out.fact("common-buffer-freed-as-pool", common)
        block = self.table.live_at(address)
        if block is None and family == "ex":
            mdl = self.mdl_ddis.mdls.get(address)
            if mdl is not None and mdl.family == "pages":  # the MDL structure MmAllocatePagesForMdl(Ex) made
                self.mdl_ddis.free_structure(mdl, event, out)
                return
        if block is None:
            freed = self.table.freed_at(address)
            if freed is not None:
                out.fact("block-freed-before", freed)
                out.previous.append(freed)
            else:
                inside = self.table.containing(address)
                if inside is not None:
                    out.fact("inside-block", inside)
                out.fact("not-allocated", address)
            return
        lists = self.sgl_ddis.lists_with_buffer_in(block)
        if lists:
            out.fact("live-lists-in-buffer", lists)
        out.previous.append(block)
        freed = self.table.free(address, event.location, name)
        out.released.append(freed)
