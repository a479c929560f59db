"""Simulated physical memory and the virtual-to-physical page map.

RAM is sparse: a page costs memory only once something writes it (a bytearray of
page_size bytes); unwritten memory reads as zeros. The `AddressSpace` knows which physical
page backs each virtual page: pages a capture described (`mdl` records, common buffers)
are bound as captured; any other virtual page gets a physical page on first use, chosen by
the `@memory` layout and seed, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AddressSpace", "FOUR_GIB", "LAYOUTS", "MemoryConfig", "PhysicalMemory", "pattern"]

FOUR_GIB = 1 << 32
LAYOUTS = ("fragmented", "contiguous", "high")
GIB = 1 << 30
RANDOM_BATCH = 256  # frames the random layouts draw from the generator at a time


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """`@memory`, with the format's defaults: 16 GiB, fragmented layout, seed 0."""

    size: int = 16 * GIB
    layout: str = "fragmented"
    seed: int = 0


class PhysicalMemory:
    """Byte-exact, sparse RAM of `size` bytes in pages of `page_size`."""

    def __init__(self, size: int, page_size: int = 4096) -> None:
        self.size = size
        self.page_size = page_size
        self.shift = page_size.bit_length() - 1
        self._pages: dict[int, bytearray] = {}

    @property
    def pages_touched(self) -> int:
        return len(self._pages)

    def _page(self, pfn: int) -> bytearray:
        page = self._pages.get(pfn)
        if page is None:
            page = self._pages[pfn] = bytearray(self.page_size)
        return page

    def _spans(self, address: int, length: int):
        mask = self.page_size - 1
        while length > 0:
            offset = address & mask
            chunk = min(length, self.page_size - offset)
            yield address >> self.shift, offset, chunk
            address += chunk
            length -= chunk

    def read(self, address: int, length: int) -> bytes:
        out = bytearray()
        for pfn, offset, chunk in self._spans(address, length):
            page = self._pages.get(pfn)
            out += bytes(chunk) if page is None else page[offset : offset + chunk]
        return bytes(out)

    def write(self, address: int, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        for pfn, offset, chunk in self._spans(address, len(data)):
            self._page(pfn)[offset : offset + chunk] = view[done : done + chunk]
            done += chunk

    def fill(self, address: int, length: int, byte: int) -> None:
        for pfn, offset, chunk in self._spans(address, length):
            self._page(pfn)[offset : offset + chunk] = bytes((byte,)) * chunk

    def discard(self, address: int, length: int) -> None:
        """Forget the pages wholly inside a range (they read as zeros again)."""
        first = (address + self.page_size - 1) >> self.shift
        last = (address + length) >> self.shift
        for pfn in range(first, last):
            self._pages.pop(pfn, None)

    def copy_page(self, source_pfn: int, target_pfn: int) -> None:
        page = self._pages.pop(source_pfn, None)
        if page is not None:
            self._pages[target_pfn] = page


def pattern(length: int, fill: int | None, data: bytes | None) -> bytes:
    """The bytes of a `dma` event: one byte repeated, or a pattern repeated to LEN."""
    if data:
        repeats = -(-length // len(data))
        return (data * repeats)[:length]
    return bytes([fill or 0]) * length


class AddressSpace:
    """Virtual page -> physical page, bound by the capture or assigned by the layout."""

    def __init__(
        self, memory: PhysicalMemory, layout: str = "fragmented", seed: int = 0, reserved: range = range(0)
    ) -> None:
        self.memory = memory
        self.reserved = reserved  # frames the layout never hands out (the map-register window)
        self.layout = layout
        self.page_size = memory.page_size
        self.shift = memory.shift
        self._rng = np.random.default_rng(seed)
        self._pfn_of: dict[int, int] = {}  # vpn -> pfn
        self._vpn_of: dict[int, int] = {}  # pfn -> vpn
        self._captured: set[int] = set()  # vpns whose pfn the capture fixed
        self._next_contiguous = 0x1000  # 16 MiB
        self._pages = max(memory.size >> self.shift, 1)
        if layout == "high" and self._pages > (FOUR_GIB >> self.shift) + 1:
            self._frames = (FOUR_GIB >> self.shift, self._pages)  # the random layouts' frames: [low, high)
        else:
            self._frames = (0x100, max(self._pages, 0x101))
        self._drawn: list[int] = []  # frames drawn and not used yet, the next one last

    def frame_in_use(self, pfn: int) -> bool:
        """Does some virtual page use physical page `pfn`?"""
        return pfn in self._vpn_of

    def bound(self, vpn: int) -> int | None:
        return self._pfn_of.get(vpn)

    def bind(self, vpn: int, pfn: int) -> None:
        """The capture says virtual page `vpn` is physical page `pfn` (the capture wins)."""
        old = self._pfn_of.get(vpn)
        if old == pfn:
            self._captured.add(vpn)
            return
        other = self._vpn_of.get(pfn)
        if other is not None and other != vpn:
            # another virtual page had this frame only by our own assignment: move it away
            del self._pfn_of[other]
            del self._vpn_of[pfn]
            if other not in self._captured:
                moved = self._assign(other)
                self.memory.copy_page(pfn, moved)
        if old is not None:
            self.memory.copy_page(old, pfn)
            self._vpn_of.pop(old, None)
        self._pfn_of[vpn] = pfn
        self._vpn_of[pfn] = vpn
        self._captured.add(vpn)

    def pfn(self, vpn: int) -> int:
        """The physical page behind a virtual page, assigning one by the layout if needed."""
        pfn = self._pfn_of.get(vpn)
        return pfn if pfn is not None else self._assign(vpn)

    def _assign(self, vpn: int) -> int:
        while True:
            if self.layout == "contiguous":
                pfn = self._next_contiguous % self._pages
                self._next_contiguous += 1
            else:
                pfn = self._random_frame()
            if pfn not in self._vpn_of and pfn not in self.reserved:
                break
        self._pfn_of[vpn] = pfn
        self._vpn_of[pfn] = vpn
        return pfn

    def _random_frame(self) -> int:
        """The random layouts' next frame. numpy's generator gives the same numbers, in the same
        order, drawn RANDOM_BATCH at a time as drawn one per call (the bit generator keeps any
        half-used word in its state; tests/test_model.py checks it), at a fraction of the cost."""
        if not self._drawn:
            self._drawn = self._rng.integers(*self._frames, size=RANDOM_BATCH).tolist()
            self._drawn.reverse()
        return self._drawn.pop()

    def virtual(self, physical: int) -> int | None:
        """The virtual address that maps a physical address, if any page maps it."""
        vpn = self._vpn_of.get(physical >> self.shift)
        return None if vpn is None else (vpn << self.shift) | (physical & (self.page_size - 1))

    def physical(self, va: int) -> int:
        return (self.pfn(va >> self.shift) << self.shift) | (va & (self.page_size - 1))

    def chunks(self, va: int, length: int):
        """(physical address, length) for each page piece of a virtual range, in order."""
        mask = self.page_size - 1
        while length > 0:
            offset = va & mask
            chunk = min(length, self.page_size - offset)
            yield (self.pfn(va >> self.shift) << self.shift) | offset, chunk
            va += chunk
            length -= chunk

    def read(self, va: int, length: int) -> bytes:
        return b"".join(self.memory.read(phys, n) for phys, n in self.chunks(va, length))
