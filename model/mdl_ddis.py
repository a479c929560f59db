"""Replaying the MDL DDIs and captured `mdl` records."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from .cpu import CpuState
from .effects import EffectsBuilder
from .events import Event, MdlRecord
from .location import SourceLocation
from .mdl import Mdl
from .retained import remember
from .shared import Ordinals, SharedMemory
from .status import is_success
from .values import Value, as_int

if TYPE_CHECKING:  # the list family, made after it
    from .sgl_ddis import SglDdis


__all__ = ["MdlDdis"]


class MdlDdis:
    """The MDL DDIs and `mdl` records: a family of the machine, with its state (live MDLs,
    and the ones freed lately). It asks the list family which live lists were built from an
    MDL that is freed; the list family asks it for chains and page frames. `HANDLERS` maps
    each DDI to the method that replays it."""

    HANDLERS: dict[str, str] = {
        "IoAllocateMdl": "_mdl_allocate",
        "StorPortAllocateMdl": "_mdl_allocate",
        "MmAllocatePagesForMdl": "_mdl_allocate",
        "MmAllocatePagesForMdlEx": "_mdl_allocate",
        "MmBuildMdlForNonPagedPool": "_mdl_state",
        "StorPortBuildMdlForNonPagedPool": "_mdl_state",
        "MmProbeAndLockPages": "_mdl_state",
        "MmUnlockPages": "_mdl_state",
        "IoFreeMdl": "_mdl_free",
        "StorPortFreeMdl": "_mdl_free",
        "MmFreePagesFromMdl": "_mdl_free",
        "IoBuildPartialMdl": "_mdl_partial",
    }

    QUERIES: dict[str, str] = {"live_mdls": "live_mdls"}  # what a rule's `each:` may ask at the end

    def __init__(self, memory: SharedMemory, ordinals: Ordinals) -> None:
        self.memory = memory
        self.ordinals = ordinals
        self.sgl_ddis: SglDdis | None = None  # set by the machine once the list family is made
        self.mdls: dict[int, Mdl] = {}
        self.freed_mdls: OrderedDict[int, Mdl] = OrderedDict()

    def live_mdls(self) -> tuple[Mdl, ...]:
        """The MDLs the driver allocated (IoAllocateMdl, StorPortAllocateMdl, MmAllocatePagesForMdl(Ex))
        and has not freed."""
        return tuple(m for m in self.mdls.values() if m.family in ("io", "storport", "pages"))

    def free_structure(self, mdl: Mdl, event: Event, out: EffectsBuilder) -> None:
        """ExFreePool of an MDL MmAllocatePagesForMdl(Ex) made: "After calling
        MmFreePagesFromMdl, the caller must also call ExFreePool to release the memory that
        was allocated for the MDL structure" (nf-wdm-mmfreepagesfrommdl). Its pages, if
        MmFreePagesFromMdl never released them, are lost with it (the fact says so)."""
        if mdl.source == "pages":
            out.fact("mdl-pages-not-freed", mdl)
        out.previous.append(mdl)
        freed = mdl.as_freed(event.location)
        del self.mdls[mdl.address]
        remember(self.freed_mdls, mdl.address, freed)
        out.released.append(freed)


    def _mdl_allocate(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        if name == "StorPortAllocateMdl":
            address = as_int(event.arg("Mdl"))  # type: ignore[attr-defined]
            if not is_success(result) or not address:
                out.fact("failed", result)
                return
            va, size, family, source = as_int(event.arg("BufferPointer")) or 0, as_int(event.arg("NumberOfBytes")) or 0, "storport", None  # type: ignore[attr-defined]
        elif name == "IoAllocateMdl":
            address = as_int(result) or 0  # the dispatcher turned NULL away
            va, size, family, source = as_int(event.arg("VirtualAddress")) or 0, as_int(event.arg("Length")) or 0, "io", None  # type: ignore[attr-defined]
        else:  # MmAllocatePagesForMdl(Ex): pages, no virtual mapping yet
            address = as_int(result) or 0  # the dispatcher turned NULL away
            va, size, family, source = 0, as_int(event.arg("TotalBytes")) or 0, "pages", "pages"  # type: ignore[attr-defined]
        old = self.mdls.get(address)
        if old is not None:
            out.fact("mdl-replaced", old)
        mdl = Mdl(address, va, size, family, self.ordinals.next(), event.location, source=source,
                  source_at=event.location if source is not None else None, allocator=name)
        self.mdls[address] = mdl
        self.freed_mdls.pop(address, None)
        out.created.append(mdl)

    def _mdl_arg(self, event: Event) -> int | None:
        for name in ("MemoryDescriptorList", "Mdl"):
            value = as_int(event.arg(name))  # type: ignore[attr-defined]
            if value is not None:
                return value
        return None

    def _mdl_state(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        address = self._mdl_arg(event)
        mdl = self.mdls.get(address) if address is not None else None
        if mdl is None:
            self._not_live(address, out)
            return
        out.previous.append(mdl)
        if name in ("MmBuildMdlForNonPagedPool", "StorPortBuildMdlForNonPagedPool"):
            pfns = mdl.pfns if mdl.pfns is not None else self._pfns_for(mdl.va, mdl.byte_count)
            mdl = mdl.with_source("nonpaged", pfns, event.location)
        elif name == "MmProbeAndLockPages":
            if mdl.source is not None:
                out.fact("mdl-lock", f"already {mdl.source}")
            pfns = mdl.pfns if mdl.pfns is not None else self._pfns_for(mdl.va, mdl.byte_count)
            mdl = mdl.with_source("locked", pfns, event.location)
        else:  # MmUnlockPages
            if mdl.source != "locked":
                out.fact("mdl-lock", f"unlock of an MDL that is {mdl.source or 'not locked'}")
            mdl = mdl.with_source(None, mdl.pfns, event.location)
        self.mdls[mdl.address] = mdl

    def _not_live(self, address: int | None, out: EffectsBuilder) -> None:
        """An MDL a call uses is not live: the freed Mdl if it was freed lately, else unknown."""
        freed = self.freed_mdls.get(address) if address is not None else None
        if freed is not None:
            out.fact("mdl-freed-before", freed)
        else:
            out.fact("mdl-unknown", address)

    def _pfns_for(self, va: int, length: int) -> tuple[int, ...]:
        shift = self.memory.space.shift
        first = va >> shift
        last = (va + max(length, 1) - 1) >> shift
        return tuple(self.memory.space.pfn(vpn) for vpn in range(first, last + 1))

    def _chain_of(self, first: int) -> list[int]:
        """The addresses of an MDL chain from its first MDL, by each MDL's `next`."""
        chain: list[int] = []
        address: int | None = first
        while address is not None and address not in chain and len(chain) < 4096:
            chain.append(address)
            mdl = self.mdls.get(address)
            address = mdl.next if mdl is not None else None
        return chain

    def _chain_holds(self, first: int, address: int) -> bool:
        """Is `address` in the chain from `first` (as `_chain_of` walks it)? Most lists have
        one MDL: answered without building the chain."""
        if first == address:
            return True
        mdl = self.mdls.get(first)
        if mdl is None or mdl.next is None:
            return False
        return address in self._chain_of(first)

    def _mdl_free(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        address = self._mdl_arg(event) if name != "MmFreePagesFromMdl" else as_int(event.arg("MemoryDescriptorList"))  # type: ignore[attr-defined]
        out.fact("free-family", "storport" if name == "StorPortFreeMdl" else "pages" if name == "MmFreePagesFromMdl" else "io")
        mdl = self.mdls.get(address) if address is not None else None
        if mdl is None:
            freed = self.freed_mdls.get(address) if address is not None else None
            out.fact("mdl-freed-before" if freed is not None else "mdl-unknown", freed if freed is not None else address)
            return
        lists = self.sgl_ddis.lists_from_mdl(address, self._chain_holds) if self.sgl_ddis is not None else ()
        if lists:
            out.fact("mdl-live-lists", lists)
        out.previous.append(mdl)
        if name == "MmFreePagesFromMdl":
            freed = mdl.with_source(None, None, event.location)
            self.mdls[address] = freed
            out.released.append(freed)
            return
        freed = mdl.as_freed(event.location)
        del self.mdls[address]
        remember(self.freed_mdls, address, freed)
        out.released.append(freed)

    def _mdl_partial(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        source = self.mdls.get(as_int(event.arg("SourceMdl")) or -1)  # type: ignore[attr-defined]
        target = self.mdls.get(as_int(event.arg("TargetMdl")) or -1)  # type: ignore[attr-defined]
        if source is None or target is None:
            out.fact("mdl-unknown", as_int(event.arg("SourceMdl" if source is None else "TargetMdl")))  # type: ignore[attr-defined]
            return
        va = as_int(event.arg("VirtualAddress")) or source.va  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or (source.end - va)  # type: ignore[attr-defined]
        pfns = None
        if source.pfns is not None:
            shift = self.memory.space.shift
            first = (va >> shift) - (source.va >> shift)
            pfns = source.pfns[first : first + self.memory.target.span_pages(va, length)]
        partial = replace(target, va=va, byte_count=length, pfns=pfns, source=source.source and "partial", source_at=event.location)
        self.mdls[target.address] = partial
        out.previous.append(target)
        out.created.append(partial)

    def mdl_record(self, record: MdlRecord, out: EffectsBuilder) -> None:
        page = self.memory.target.page_size
        mdl = self.mdls.get(record.address)
        if mdl is None:
            mdl = Mdl(record.address, record.va, record.byte_count, "captured", self.ordinals.next(), record.location, source="nonpaged")
            out.fact("mdl-unknown", record.address)
        span = self.memory.target.span_pages(record.va, record.byte_count)
        if len(record.pfns) != span:
            out.fact("pfn-count", (span, len(record.pfns)))
        if record.offset != record.va & (page - 1):
            out.fact("offset-differs", (record.va & (page - 1), record.offset))
        shift = self.memory.space.shift
        for index, pfn in enumerate(record.pfns):
            self.memory.space.bind((record.va >> shift) + index, pfn)
        updated = mdl.as_captured(record.va, record.byte_count, record.pfns, record.next)
        self.mdls[record.address] = updated
        out.previous.append(mdl)
        out.created.append(updated)

    def chain(self, address: int, out: EffectsBuilder, current_va: int, length: int) -> list[Mdl]:
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
            self._not_live(address, out)
            chain = [Mdl(address, current_va, length, "assumed", 0, SourceLocation("<model>", 0))]
        return chain

    def pfn_of(self, mdl: Mdl, va: int) -> int:
        shift = self.memory.space.shift
        if mdl.pfns is not None:
            index = (va >> shift) - (mdl.va >> shift)
            if 0 <= index < len(mdl.pfns):
                return mdl.pfns[index]
        return self.memory.space.pfn(va >> shift)
