"""The platform a trace was captured on: architecture, page size, structure sizes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHITECTURES", "Target"]

# pointer size, SCATTER_GATHER_LIST header, SCATTER_GATHER_ELEMENT, HIGH_LEVEL (wdm.h)
ARCHITECTURES: dict[str, tuple[int, int, int, int]] = {
    "x64": (8, 16, 24, 15),
    "arm64": (8, 16, 24, 15),
    "x86": (4, 8, 16, 31),
}


@dataclass(frozen=True, slots=True)
class Target:
    """`@target arch=... page_size=...`, with the format's defaults (x64, 4096)."""

    arch: str = "x64"
    page_size: int = 4096

    @property
    def pointer_size(self) -> int:
        return ARCHITECTURES[self.arch][0]

    @property
    def high_level(self) -> int:
        """HIGH_LEVEL's number on this architecture."""
        return ARCHITECTURES[self.arch][3]

    def sgl_bytes(self, elements: int) -> int:
        """Bytes a SCATTER_GATHER_LIST with `elements` elements occupies (x64: 16 + 24n)."""
        _, header, element, _ = ARCHITECTURES[self.arch]
        return header + element * elements

    def span_pages(self, address: int, length: int) -> int:
        """ADDRESS_AND_SIZE_TO_SPAN_PAGES(address, length)."""
        page = self.page_size
        return ((address & (page - 1)) + length + page - 1) // page
