"""What a bus address belongs to: live mappings, and the ones that were put or freed.

Mappings (list segments, common buffers, mapped transfers) are indexed by bus page, so
resolving a device access costs a dictionary lookup per page it touches, whatever the number
of mappings. A retired mapping stays answerable ("this range belonged to a list put at line
40") until a new mapping covers its pages, or until it is the oldest of more than
RETIRED_MAPPINGS retired mappings still remembered: memory is bounded by the live mappings
plus that many retired ones, whatever the number of events.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .frozen import fast_init
from .retained import RETIRED_MAPPINGS

__all__ = ["BusEntry", "BusIndex", "Resolution"]


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class Resolution:
    """A piece of a device access: [start, start + length) and what it hit.

    `state` is `live`, `retired` (the owner was put or freed) or `unmapped` (no entry)."""

    start: int
    length: int
    state: str
    entry: BusEntry | None


class BusIndex:
    """Live and retired mappings by bus page.

    Each page keeps its live entries and its retired ones, oldest first. A retired entry
    leaves a page's list when a newer mapping, live or retired, overlaps it there.
    `_retired_pages` counts, per retired entry (by identity: each retire stores one object on
    all its pages), the pages whose list still holds it, in the order they were retired (for
    the bound); `_retired_owners` counts retired entries per owner, so `forget(kind, key)` can
    tell the machine when nothing retired names an owner any more (it then drops its record).
    """

    def __init__(self, page_size: int = 4096, forget: Callable[[str, Hashable], None] | None = None) -> None:
        self.shift = page_size.bit_length() - 1
        self.forget = forget
        self._live: dict[int, list[BusEntry]] = {}
        self._retired: dict[int, list[BusEntry]] = {}
        self._retired_pages: dict[int, list] = {}  # id(entry) -> [entry, pages holding it]
        self._retired_owners: dict[tuple[str, Hashable], int] = {}

    def _pages(self, entry: BusEntry) -> range:
        return range(entry.bus >> self.shift, ((entry.bus + entry.length - 1) >> self.shift) + 1)

    def add(self, entry: BusEntry) -> None:
        self._map(entry, again=False)

    def renew(self, entry: BusEntry) -> None:
        """The owner maps the same range again (a captured list confirmed a mapping): exactly
        `retire(entry)` then `add(entry)`, without making it a retired entry in between."""
        self._map(entry, again=True)

    def _map(self, entry: BusEntry, again: bool) -> None:
        live_pages, retired_pages = self._live, self._retired
        gone: list[BusEntry] = []
        for page in self._pages(entry):
            live = live_pages.get(page)
            if live is None:
                live_pages[page] = [entry]
            elif again:  # the entry moves to the newest place
                live[:] = [e for e in live if e != entry]
                live.append(entry)
            else:
                live.append(entry)
            retired = retired_pages.get(page)
            if retired:
                kept = self._overlapped(retired, entry, gone)
                if kept:
                    retired_pages[page] = kept
                else:
                    del retired_pages[page]
        self._uncount(gone)

    def retire(self, entry: BusEntry) -> None:
        """The owner was put or freed: the range stays known as retired."""
        live_pages, retired_pages = self._live, self._retired
        pages = self._pages(entry)
        gone: list[BusEntry] = []
        for page in pages:
            live = live_pages.get(page)
            if live is not None:
                kept = [e for e in live if e != entry]
                if not kept:
                    del live_pages[page]
                elif len(kept) < len(live):
                    live[:] = kept
            retired = retired_pages.get(page)
            if retired:
                kept = self._overlapped(retired, entry, gone)
                kept.append(entry)
                retired_pages[page] = kept
            else:
                retired_pages[page] = [entry]
        self._count(entry, len(pages))
        self._uncount(gone)
        while len(self._retired_pages) > RETIRED_MAPPINGS:
            self._evict(next(iter(self._retired_pages.values()))[0])

    def _uncount(self, gone: list[BusEntry]) -> None:
        """Retired entries left pages' lists, once per page (an entry over n pages counted once, by n)."""
        if len(gone) == 1:
            self._count(gone[0], -1)
            return
        tally: dict[int, list] = {}
        for old in gone:
            seen = tally.get(id(old))
            if seen is None:
                tally[id(old)] = [old, -1]
            else:
                seen[1] -= 1
        for old, change in tally.values():
            self._count(old, change)

    @staticmethod
    def _overlapped(retired: list[BusEntry], newer: BusEntry, gone: list[BusEntry]) -> list[BusEntry]:
        """A page's retired entries that `newer` does not overlap (the list itself when it
        overlaps none); the others are added to `gone`."""
        bus, end = newer.bus, newer.bus + newer.length
        kept = []
        for old in retired:
            if old.bus < end and bus < old.bus + old.length:
                gone.append(old)
            else:
                kept.append(old)
        return kept if len(kept) < len(retired) else retired

    def _count(self, entry: BusEntry, change: int) -> None:
        """`change` more (or fewer) pages hold a retired entry; at none, the entry is gone."""
        record = self._retired_pages.get(id(entry))
        if record is None:
            self._retired_pages[id(entry)] = [entry, change]
            owner = (entry.kind, entry.key)
            self._retired_owners[owner] = self._retired_owners.get(owner, 0) + 1
            return
        record[1] += change
        if record[1]:
            return
        del self._retired_pages[id(entry)]
        owner = (entry.kind, entry.key)
        left = self._retired_owners.pop(owner) - 1
        if left:
            self._retired_owners[owner] = left
        elif self.forget is not None:
            self.forget(entry.kind, entry.key)

    def _evict(self, entry: BusEntry) -> None:
        """Forget the oldest retired entry on every page that still holds it."""
        for page in self._pages(entry):
            retired = self._retired.get(page)
            if retired is not None and any(old is entry for old in retired):
                kept = [old for old in retired if old is not entry]
                if kept:
                    self._retired[page] = kept
                else:
                    del self._retired[page]
                self._count(entry, -1)

    def has_retired(self, kind: str, key: Hashable) -> bool:
        """Does some retired entry still name this owner?"""
        return (kind, key) in self._retired_owners

    def retired_entries(self) -> int:
        return len(self._retired_pages)

    def live_entries(self) -> int:
        return len({entry for entries in self._live.values() for entry in entries})

    def resolve(self, address: int, length: int) -> tuple[Resolution, ...]:
        """The access [address, address + length) split into pieces by what each piece hits;
        a live mapping wins over a retired one, the newest live one over older ones."""
        end = address + max(length, 1)
        first, last = address >> self.shift, (end - 1) >> self.shift
        live_list = self._gather(self._live, first, last, address, end)
        if len(live_list) == 1 and live_list[0].bus <= address and end <= live_list[0].bus + live_list[0].length:
            return (Resolution(address, end - address, "live", live_list[0]),)  # one live mapping holds it all
        return self._pieces(address, end, live_list, self._gather(self._retired, first, last, address, end))

    @staticmethod
    def _gather(pages: dict[int, list[BusEntry]], first: int, last: int, address: int, end: int) -> list[BusEntry]:
        """The entries of pages first..last that overlap [address, end), each once (equal
        entries count as one, at the first one's place), in the order the pages list them."""
        found: list[BusEntry] = []
        if first == last:
            for entry in pages.get(first, ()):
                if entry.bus < end and address < entry.bus + entry.length:
                    found.append(entry)
        else:
            seen: set[int] = set()  # an entry over several pages is one object on each
            for page in range(first, last + 1):
                for entry in pages.get(page, ()):
                    if id(entry) not in seen and entry.bus < end and address < entry.bus + entry.length:
                        seen.add(id(entry))
                        found.append(entry)
        return list(dict.fromkeys(found)) if len(found) > 1 else found

    @staticmethod
    def _pieces(address: int, end: int, live_list: list[BusEntry], retired_list: list[BusEntry]) -> tuple[Resolution, ...]:
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
