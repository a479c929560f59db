"""Memory descriptor lists: the buffer an MDL describes, its page frames, and its state."""

from __future__ import annotations

from dataclasses import dataclass

from .frozen import fast_init
from .location import SourceLocation

__all__ = ["Mdl"]


@fast_init
@dataclass(frozen=True, slots=True)
class Mdl:
    """An MDL at `address` describing `byte_count` bytes from virtual address `va`.

    `pfns` is the PFN array once known (captured by an `mdl` record, or filled when the
    model builds the MDL for nonpaged pool). `family` is `io` (IoAllocateMdl, freed with
    IoFreeMdl), `storport` (StorPortAllocateMdl / StorPortFreeMdl) or `captured` (seen only
    in an `mdl` record). `source` says how its pages became resident: `nonpaged`
    (Mm/StorPortBuildMdlForNonPagedPool), `locked` (MmProbeAndLockPages), `pages`
    (MmAllocatePagesForMdl), or None while they are not. `source_at` is where `source` last
    changed (the build for nonpaged pool, the lock, the unlock, the partial build).
    """

    address: int
    va: int
    byte_count: int
    family: str
    ordinal: int
    allocated_at: SourceLocation
    pfns: tuple[int, ...] | None = None
    next: int | None = None
    source: str | None = None
    freed_at: SourceLocation | None = None
    source_at: SourceLocation | None = None
    allocator: str | None = None  # the DDI that made it (IoAllocateMdl, MmAllocatePagesForMdlEx, ...)

    @property
    def live(self) -> bool:
        return self.freed_at is None

    @property
    def resident(self) -> bool:
        return self.source is not None

    @property
    def end(self) -> int:
        return self.va + self.byte_count

    def with_source(self, source: str | None, pfns: tuple[int, ...] | None, location: SourceLocation) -> Mdl:
        """This MDL with its pages made resident (or not) at `location`: `dataclasses.replace`,
        without its cost on every build, lock and free."""
        return Mdl(self.address, self.va, self.byte_count, self.family, self.ordinal, self.allocated_at, pfns, self.next,
                   source, self.freed_at, location, self.allocator)

    def as_freed(self, location: SourceLocation) -> Mdl:
        return Mdl(self.address, self.va, self.byte_count, self.family, self.ordinal, self.allocated_at, self.pfns,
                   self.next, self.source, location, self.source_at, self.allocator)

    def as_captured(self, va: int, byte_count: int, pfns: tuple[int, ...], next_mdl: int | None) -> Mdl:
        """This MDL as an `mdl` record describes it."""
        return Mdl(self.address, va, byte_count, self.family, self.ordinal, self.allocated_at, pfns, next_mdl, self.source,
                   self.freed_at, self.source_at, self.allocator)

    def offset(self, page_size: int) -> int:
        return self.va & (page_size - 1)

    def span(self, page_size: int) -> int:
        """Pages the buffer spans: the PFN array's length."""
        return ((self.va & (page_size - 1)) + self.byte_count + page_size - 1) // page_size
