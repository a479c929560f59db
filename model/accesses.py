"""The CPU's and the device's accesses to memory (`mem` and `dma` records), and what a bus
address maps: the object behind a bus entry, the driver's address its data belongs to, which
way it lets data go, and the bytes the device has put in a range."""

from __future__ import annotations

from typing import Any

from .adapter_ddis import AdapterDdis
from .bus import BusEntry
from .channel_ddis import ChannelDdis
from .effects import EffectsBuilder
from .events import DmaAccess, MemAccess
from .memory import pattern
from .pool_ddis import PoolDdis
from .sgl import SgList
from .sgl_ddis import SglDdis
from .shared import SharedMemory

__all__ = ["Accesses"]


class Accesses:
    """Replays `mem` and `dma` records and answers questions about mappings, over the pool,
    list, channel and adapter families' state (it keeps none of its own)."""

    def __init__(self, memory: SharedMemory, pool_ddis: PoolDdis, sgl_ddis: SglDdis, channel_ddis: ChannelDdis,
                 adapter_ddis: AdapterDdis) -> None:
        self.memory = memory
        self.pool_ddis = pool_ddis
        self.sgl_ddis = sgl_ddis
        self.channel_ddis = channel_ddis
        self.adapter_ddis = adapter_ddis

    def mem(self, event: MemAccess, out: EffectsBuilder) -> None:
        block = self.pool_ddis.table.containing(event.address)
        if block is not None:
            out.fact("pool-block", block)
        else:
            freed = self.pool_ddis.table.freed_containing(event.address)
            if freed is not None:
                out.fact("freed-block", freed)
        lists = self.lists_covering(event.address, event.length)
        if lists:
            out.fact("live-lists", lists)

    def dma(self, event: DmaAccess, out: EffectsBuilder) -> None:
        pieces = self.memory.bus.resolve(event.address, event.length)
        out.accesses = pieces
        if event.access != "write":
            return
        data = pattern(event.length, event.fill, event.data) if event.data else None
        for piece in pieces:
            entry = piece.entry
            memory = self.memory.bounce_memory if piece.state == "live" and entry is not None and self._bounced(entry) else self.memory.ram
            if data is not None:
                memory.write(piece.start, data[piece.start - event.address : piece.start - event.address + piece.length])
            else:  # one byte repeated: filled in place, the bytes never built
                memory.fill(piece.start, min(piece.length, event.address + event.length - piece.start), event.fill or 0)

    def _bounced(self, entry: BusEntry) -> bool:
        if entry.kind == "sgl":
            sgl = self.sgl_ddis.lists.get(entry.key)  # type: ignore[arg-type]
            return sgl is not None and entry.index < len(sgl.segments) and sgl.segments[entry.index].bounced
        if entry.kind == "transfer":
            transfer = self.channel_ddis.transfers.get(entry.key)  # type: ignore[arg-type]
            return transfer is not None and transfer[1].bounced
        return False

    def lists_covering(self, va: int, length: int) -> tuple[SgList, ...]:
        """Live lists whose transfer includes any byte of [va, va + length)."""
        shift = self.memory.space.shift
        ordinals: set[int] = set()
        for vpn in range(va >> shift, ((va + max(length, 1) - 1) >> shift) + 1):
            owners = self.sgl_ddis.list_pages.get(vpn)
            if owners:
                ordinals |= owners
        if not ordinals:
            return ()
        found = [self.sgl_ddis.lists[o] for o in sorted(ordinals) if o in self.sgl_ddis.lists]
        return tuple(s for s in found if s.current_va < va + max(length, 1) and va < s.current_va + s.length)

    def owner(self, entry: BusEntry) -> Any:
        """The object behind a bus entry: a live or put SgList, a CommonBuffer, a transfer segment."""
        if entry.kind == "sgl":
            sgl = self.sgl_ddis.lists.get(entry.key)  # type: ignore[arg-type]
            if sgl is not None:
                return sgl
            return self.sgl_ddis.put_by_ordinal.get(entry.key)  # type: ignore[arg-type]
        if entry.kind == "common-buffer":
            return self.adapter_ddis.common_buffers.at(entry.key) or self.adapter_ddis.freed_common_buffers.get(entry.key)  # type: ignore[arg-type]
        transfer = self.channel_ddis.transfers.get(entry.key)  # type: ignore[arg-type]
        return transfer[1] if transfer is not None else None

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

    def mapping_direction(self, entry: BusEntry) -> str | None:
        """Which way a mapping lets data go: `to-device` (WriteToDevice), `from-device`, or
        None for a common buffer (both ways)."""
        if entry.kind == "sgl":
            owner = self.owner(entry)
            return None if owner is None else "to-device" if owner.write_to_device else "from-device"
        if entry.kind == "transfer":
            transfer = self.channel_ddis.transfers.get(entry.key)  # type: ignore[arg-type]
            return None if transfer is None else "to-device" if transfer[2] else "from-device"
        return None

    def device_view(self, va: int, length: int) -> bytes:
        """The bytes the device has put at [va, va + length): where a live list bounced those
        pages, what sits in its map registers (not yet copied back); elsewhere, memory."""
        data = bytearray(self.memory.space.read(va, length))
        for sgl in self.lists_covering(va, length):
            for segment in sgl.segments:
                if not segment.bounced:
                    continue
                start = sgl.current_va + segment.offset
                lo, hi = max(start, va), min(start + segment.length, va + length)
                if lo < hi:
                    data[lo - va : hi - va] = self.memory.bounce_memory.read(segment.bus + (lo - start), hi - lo)
        return bytes(data)
