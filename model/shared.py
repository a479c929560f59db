"""What the DDI families share, handed to each when the machine is made: the simulated memory
(RAM, the driver's address space, map-register bounce memory and window, the bus index) and
the ordinal counter that numbers the objects they make.

The memory is remade by `@target` and `@memory` (`reset`); a family keeps this object, never
one of its parts, so it always sees the current memory.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from .bus import BusIndex
from .memory import AddressSpace, MemoryConfig, PhysicalMemory
from .platform import Target
from .sgl import MapRegisterWindow

__all__ = ["Ordinals", "SharedMemory"]


class Ordinals:
    """One counter for the objects the families make (MDLs, common buffers, lists): an
    object's ordinal is its identity in findings' fingerprints."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


class SharedMemory:
    """The target, RAM, the driver's address space, bounce memory, the map-register window
    and the bus index: what a DDI's effect is made of."""

    def __init__(self, target: Target, config: MemoryConfig, forget: Callable[[str, Hashable], None]) -> None:
        self.forget = forget  # the bus index tells when no retired entry names an owner any more
        self.reset(target, config)

    def reset(self, target: Target, config: MemoryConfig) -> None:
        self.target = target
        self.config = config
        page = target.page_size
        self.ram = PhysicalMemory(config.size, page)
        self.bounce_memory = PhysicalMemory(1 << 32, page)
        # Map registers live in a window of bus pages that no driver buffer's frame may use:
        # the layout never hands its frames out, and the window skips frames a capture bound.
        self.window = MapRegisterWindow(page_size=page, is_ram=lambda pfn: self.space.frame_in_use(pfn))
        self.space = AddressSpace(self.ram, config.layout, config.seed, reserved=self.window.frames)
        self.bus = BusIndex(page, forget=self.forget)

    def bind_range(self, va: int, physical: int, length: int) -> None:
        """The driver's pages from `va` are the physical pages from `physical` (a common
        buffer's or contiguous block's captured address)."""
        shift = self.space.shift
        pages = self.target.span_pages(va, length)
        for index in range(pages):
            self.space.bind((va >> shift) + index, (physical >> shift) + index)
