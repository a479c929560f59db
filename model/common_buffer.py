"""Common buffers: memory the CPU and the device share, mapped for the device at a logical address."""

from __future__ import annotations

from dataclasses import dataclass

from .frozen import fast_init
from .location import SourceLocation

__all__ = ["CommonBuffer"]


@fast_init
@dataclass(frozen=True, slots=True)
class CommonBuffer:
    """AllocateCommonBuffer(Ex)'s result: `length` bytes at `va` for the CPU and at `logical`
    for the device, through `adapter`, with the parameters FreeCommonBuffer must repeat."""

    va: int
    logical: int
    length: int
    cache_enabled: bool
    adapter: int | None
    allocator: str
    ordinal: int
    allocated_at: SourceLocation
    freed_at: SourceLocation | None = None

    @property
    def live(self) -> bool:
        return self.freed_at is None
