"""What a bus address belongs to: live mappings, and the ones that were put or freed.

Mappings (list segments, common buffers, mapped transfers) are indexed by bus page, so
resolving a device access costs a dictionary lookup per page it touches, whatever the number
of mappings. A retired mapping stays answerable ("this range belonged to a list put at line
40") until a new mapping covers its pages; memory grows with pages touched, not with events.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["BusEntry", "BusIndex", "Resolution"]


@dataclass(frozen=True, slots=True)
class BusEntry:
    """A bus range [bus, bus + length) mapped for the device, owned by (`kind`, `key`)."""

    bus: int
    length: int
    kind: str  # "sgl", "common-buffer", "transfer"
    key: Hashable
    index: int = 0  # which segment of the owner

    @property
    def end(self) -> int:
        return self.bus + self.length


@dataclass(frozen=True, slots=True)
class Resolution:
    """A piece of a device access: [start, start + length) and what it hit.

    `state` is `live`, `retired` (the owner was put or freed) or `unmapped` (no entry)."""

    start: int
    length: int
    state: str
    entry: BusEntry | None


class BusIndex:
    def __init__(self, page_size: int = 4096) -> None:
        self.shift = page_size.bit_length() - 1
        self._live: dict[int, list[BusEntry]] = {}
        self._retired: dict[int, list[BusEntry]] = {}

    def _pages(self, entry: BusEntry) -> range:
        return range(entry.bus >> self.shift, ((entry.end - 1) >> self.shift) + 1)

    def add(self, entry: BusEntry) -> None:
        for page in self._pages(entry):
            self._live.setdefault(page, []).append(entry)
            retired = self._retired.get(page)
            if retired:
                kept = [old for old in retired if not (old.bus < entry.end and entry.bus < old.end)]
                if kept:
                    self._retired[page] = kept
                else:
                    del self._retired[page]

    def retire(self, entry: BusEntry) -> None:
        """The owner was put or freed: the range stays known as retired."""
        for page in self._pages(entry):
            entries = self._live.get(page)
            if entries is not None:
                entries[:] = [e for e in entries if e != entry]
                if not entries:
                    del self._live[page]
            retired = [old for old in self._retired.get(page, []) if not (old.bus < entry.end and entry.bus < old.end)]
            retired.append(entry)
            self._retired[page] = retired

    def live_entries(self) -> int:
        return len({entry for entries in self._live.values() for entry in entries})

    def resolve(self, address: int, length: int) -> tuple[Resolution, ...]:
        """The access [address, address + length) split into pieces by what each piece hits;
        a live mapping wins over a retired one, the newest live one over older ones."""
        end = address + max(length, 1)
        live: dict[BusEntry, None] = {}
        retired: dict[BusEntry, None] = {}
        for page in range(address >> self.shift, ((end - 1) >> self.shift) + 1):
            for entry in self._live.get(page, ()):
                live[entry] = None
            for entry in self._retired.get(page, ()):
                retired[entry] = None
        live_list = [e for e in live if e.bus < end and address < e.end]
        retired_list = [e for e in retired if e.bus < end and address < e.end]
        pieces: list[Resolution] = []
        position = address
        while position < end:
            covering = [e for e in live_list if e.bus <= position < e.end]
            if covering:
                entry = covering[-1]
                stop = min(entry.end, end)
                pieces.append(Resolution(position, stop - position, "live", entry))
            else:
                upcoming = [e.bus for e in live_list if e.bus > position]
                limit = min([end, *upcoming])
                old = [e for e in retired_list if e.bus <= position < e.end]
                if old:
                    entry = old[-1]
                    stop = min(entry.end, limit)
                    pieces.append(Resolution(position, stop - position, "retired", entry))
                else:
                    later = [e.bus for e in retired_list if e.bus > position]
                    stop = min([limit, *later])
                    pieces.append(Resolution(position, stop - position, "unmapped", None))
            position = stop
        return tuple(pieces)
