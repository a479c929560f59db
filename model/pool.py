"""Pool and contiguous memory blocks: who allocated them, with what, and whether they are freed."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .frozen import fast_init
from .intervals import IntervalMap
from .location import SourceLocation
from .retained import FREED_MEMORY

__all__ = ["Block", "PoolTable"]


@fast_init
@dataclass(frozen=True, slots=True)
class Block:
    """An allocation: [address, address + size), its tag, pool, allocator family and history.

    `family` is the free family the allocator belongs to: `ex` (ExAllocatePool*, freed with
    ExFreePool*), `storport` (StorPortAllocatePool / StorPortFreePool), `contiguous`
    (MmAllocateContiguousMemory*), `storport-contiguous` (StorPortAllocateContiguousMemory*).
    """

    address: int
    size: int
    tag: int | None
    pool: str
    family: str
    allocator: str
    ordinal: int
    allocated_at: SourceLocation
    freed_at: SourceLocation | None = None
    freed_by: str | None = None

    @property
    def end(self) -> int:
        return self.address + self.size

    @property
    def live(self) -> bool:
        return self.freed_at is None

    @property
    def paged(self) -> bool:
        return self.pool == "paged"

    def contains(self, address: int, length: int = 1) -> bool:
        return self.address <= address and address + length <= self.end

    def as_freed(self, location: SourceLocation, ddi: str) -> Block:
        """This block, freed by `ddi` at `location` (`dataclasses.replace`, without its cost per free)."""
        return Block(self.address, self.size, self.tag, self.pool, self.family, self.allocator, self.ordinal,
                     self.allocated_at, location, ddi)


class PoolTable:
    """Live blocks by address range, and freed ones until their range is allocated again (at
    most FREED_MEMORY, the oldest forgotten first: see `retained`)."""

    def __init__(self) -> None:
        self._live: IntervalMap[Block] = IntervalMap()
        self._freed: OrderedDict[int, Block] = OrderedDict()
        self._freed_ranges: IntervalMap[Block] = IntervalMap()
        self.allocated = 0
        self.live_bytes = 0
        self.ordinal = 0

    def __iter__(self):
        return iter(self._live)

    def __len__(self) -> int:
        return len(self._live)

    def next_ordinal(self) -> int:
        self.ordinal += 1
        return self.ordinal

    def allocate(self, block: Block) -> list[Block]:
        """Record a new live block; returns live blocks it overlapped (a capture inconsistency)."""
        overlapped = self._live.insert(block.address, block.size, block)
        for old in overlapped:
            self.live_bytes -= old.size
        self._forget_freed(block.address, block.size)
        self.allocated += 1
        self.live_bytes += block.size
        return overlapped

    def free(self, address: int, location: SourceLocation, ddi: str) -> Block | None:
        """Free the live block starting at `address`; returns it as freed, or None."""
        block = self._live.at(address)
        if block is None:
            return None
        self._live.pop(address)
        self.live_bytes -= block.size
        freed = block.as_freed(location, ddi)
        self._remember_freed(freed)
        return freed

    def live_at(self, address: int) -> Block | None:
        """The live block that starts exactly at `address`."""
        return self._live.at(address)

    def containing(self, address: int) -> Block | None:
        """The live block that holds `address`."""
        return self._live.containing(address)

    def overlapping(self, address: int, length: int) -> list[Block]:
        return [block for _, block in self._live.overlapping(address, length)]

    def freed_at(self, address: int) -> Block | None:
        """The remembered freed block that started at `address`."""
        return self._freed.get(address)

    def freed_containing(self, address: int) -> Block | None:
        return self._freed_ranges.containing(address)

    def freed_overlapping(self, address: int, length: int) -> Block | None:
        """The first remembered freed block sharing a byte with [address, address + length)."""
        found = self._freed_ranges.overlapping(address, length)
        return found[0][1] if found else None

    def _remember_freed(self, block: Block) -> None:
        self._freed.pop(block.address, None)
        self._freed[block.address] = block
        self._freed_ranges.insert(block.address, block.size, block)
        while len(self._freed) > FREED_MEMORY:
            _, oldest = self._freed.popitem(last=False)
            if self._freed_ranges.at(oldest.address) is oldest:
                self._freed_ranges.pop(oldest.address)

    def _forget_freed(self, address: int, size: int) -> None:
        for start, block in self._freed_ranges.overlapping(address, size):
            self._freed_ranges.pop(start)
            if self._freed.get(block.address) is block:
                del self._freed[block.address]
