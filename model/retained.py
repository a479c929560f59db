"""What the model keeps of objects after they are released, and how much of it.

The machine's state is its live objects plus a memory of released ones, for the findings
that look back: a double free or put, a use after free, a device access after the put, a
build sized without its CalculateScatterGatherList. Every such memory is bounded, so memory
follows the live objects, never the number of events:

- freed pool blocks (`PoolTable`): until an allocation overlaps the range, or until more
  than FREED_MEMORY freed blocks are remembered, oldest forgotten first (a use after free or
  a double free comes soon after the free, while the pool has not handed the memory out
  again; a pool reuses addresses, so the blocks not yet reallocated stay few);
- retired bus mappings (`BusIndex`): until a new mapping covers the pages, or until more than
  RETIRED_MAPPINGS retired mappings are remembered, oldest forgotten first (a device touches a
  mapping after its put while it still finishes that transfer, or on a stale descriptor of a
  recent one); the put list behind a retired mapping (`owner`) is kept exactly as long as a
  retired mapping names it;
- lists put, and failed builds, by buffer; freed MDLs and common buffers, by address;
  calculations, by (adapter, CurrentVa, Length): the RETIRED_MEMORY most recent, a newer one
  at the same key replacing the older (the buffer, address or transfer is used again long
  before that many others have been released);
- released spin locks, per CPU: the RELEASED_LOCKS most recent (`cpu.py`); the levels
  KeRaiseIrql saved, per CPU: the RAISED_LEVELS innermost.

What the model keeps per page (the virtual-to-physical map, written RAM and map-register
pages) follows the pages the driver's buffers occupy, which a driver's pool reuses, not the
events. Adapters (live or put) are kept by address: a driver gets a handful.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

__all__ = ["FREED_MEMORY", "RAISED_LEVELS", "RELEASED_LOCKS", "RETIRED_MAPPINGS", "RETIRED_MEMORY", "remember"]

FREED_MEMORY = 4096  # freed pool blocks no allocation has overlapped since
RETIRED_MAPPINGS = 4096  # retired bus mappings no newer mapping has covered
RETIRED_MEMORY = 4096  # per table: put lists, failed builds, freed MDLs, freed common buffers, calculations
RELEASED_LOCKS = 64  # per CPU
RAISED_LEVELS = 64  # per CPU: IRQLs run 0-31, so anything deeper is raises never lowered

K = TypeVar("K")
V = TypeVar("V")


def remember(table: OrderedDict[K, V], key: K, value: V, limit: int = RETIRED_MEMORY) -> None:
    """Keep `value` as the newest entry of a bounded memory, forgetting the oldest past `limit`."""
    table.pop(key, None)
    table[key] = value
    while len(table) > limit:
        table.popitem(last=False)
