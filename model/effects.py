"""What one record did to the machine: `Effects`, and the builder handlers fill in.

Facts it reports (key: value):
  irql-differs: the modelled Irql when a captured `irql=` disagrees with it
  routine-irql: (expected, captured) for a routine the system runs at a fixed level
  failed: the captured status of a call that did not take effect
  unhandled: True for a call the model does not simulate
  no-open-enter / no-open-callback: a `leave` / `done` that matches nothing open
  block-freed-before: the Block (already freed) a free found; not-allocated: the address
  inside-block: the live Block an address points into; free-family / free-tag: what the free used
  common-buffer-freed-as-pool: the CommonBuffer a pool free hit
  live-lists-in-buffer: lists whose caller buffer a free releases while live
  mdl-freed-before / mdl-unknown / mdl-live-lists / mdl-lock: MDL lifecycle observations (mdl-freed-before:
    the freed Mdl a free, a build on it, a lock or unlock, or a list build found)
  mdl-pages-not-freed: the Mdl (MmAllocatePagesForMdl's) whose structure an ExFreePool freed before
    MmFreePagesFromMdl released its pages
  pfn-count: (expected, captured) when an `mdl` record's PFN array does not span its buffer
  unknown-adapter / adapter-put: the adapter address a call used / the Adapter put earlier
  outstanding: (lists, common buffers, channels) still held when PutDmaAdapter runs
  build: the ListBuild the model made; status-differs: (model status, captured status)
  outside-mdl: why CurrentVa/Length leave the MDL chain; buffer-live: the SgList still in the buffer
  list-unknown / list-put-before: a put of a pointer never built / already put (the SgList)
  put-direction: WriteToDevice the put passed; sgl-differs: the differences of a captured list
  list-for-sgl-unknown: an `sgl` record for a buffer no build produced
  calculated: (ScatterGatherListSize, NumberOfMapRegisters) the model computes
  common-buffer-mismatch: ((parameter, freed, allocated), ...); common-buffer-freed-before
  common-buffer-inside: the live CommonBuffer a FreeCommonBuffer's VirtualAddress points into, not at its start
  list-failed: the SgList (status: the captured failure) a put or `sgl` record names after its build failed
  beyond-limit: (Segment, Adapter) a captured list hands the device directly above its reach
  mdl-not-resident: the first Mdl of a build's chain whose pages are neither locked nor nonpaged
  overlaps-live-block: blocks an allocation overlaps; transfer-unknown: a flush of nothing mapped
  channel-open / unflushed: an adapter channel already open / transfers not flushed
  no-channel: FreeAdapterChannel on an adapter with no channel open
  allocation-action: the AllocationAction (what AdapterControl returned, or the convention where
    `done` has no value) at the `done`, and at FreeAdapterChannel / FreeMapRegisters of that adapter
  channel-released-at-return: AdapterControl returned DeallocateObject(KeepRegisters) (a bus master's is
    assumed to where `done` has no value)
  channel-kept: FreeMapRegisters while the adapter's channel is still held (KeepObject)
  registers-released: FreeMapRegisters after AdapterControl returned DeallocateObject (the AllocationAction)
  lock-held / lock-not-held / lock-family: spin lock observations; locks-held-at-done
  storport-locks-held: the StorPort lock types this CPU holds when it acquires another
  raise-below-current / lower-above-current: (current, new) for KeRaiseIrql / KeLowerIrql
  restores-other-irql: (saved, restored) when KeLowerIrql / a release restores another level
  raised-at: for KeLowerIrql, where the KeRaiseIrql(ToDpcLevel) it undoes saved the level it should restore
  lock-released-before: for a release of a lock not held, the HeldLock (with released_at) this CPU last
    released under that lock or handle
  done-irql: (entry, at return) of a routine
  pool-block / freed-block / live-lists: for a `mem` access, what it touched
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bus import Resolution
from .events import Record
from .frozen import fast_init
from .irql import Irql

__all__ = ["Effects", "EffectsBuilder"]


@fast_init
@dataclass(frozen=True, slots=True)
class Effects:
    """What one record did to the machine.

    `irql` is the level the event ran at (the captured `irql=` where given, else the model's
    bookkeeping), `modelled_irql` what the bookkeeping alone says. `created` and `released`
    hold snapshots of the objects after the event; `previous` snapshots of objects as they
    were before it changed them (the block a double free finds already freed, the list a
    build finds in its buffer). `facts` are (key, value) observations; the module's docstring lists the keys.
    """

    record: Record
    cpu: int | None = None
    irql: Irql | None = None
    modelled_irql: Irql | None = None
    created: tuple[Any, ...] = ()
    released: tuple[Any, ...] = ()
    previous: tuple[Any, ...] = ()
    accesses: tuple[Resolution, ...] = ()
    facts: tuple[tuple[str, Any], ...] = ()

    def fact(self, key: str, default: Any = None) -> Any:
        for name, value in self.facts:
            if name == key:
                return value
        return default


class EffectsBuilder:
    """Collects one record's effects while a handler runs. `finish` makes them the record's
    `Effects` and empties the builder, so one builder serves every record of a machine (no
    five new objects per record, for the allocator and the garbage collector to handle)."""

    __slots__ = ("created", "released", "previous", "accesses", "facts")

    def __init__(self) -> None:
        self.created: list[Any] = []
        self.released: list[Any] = []
        self.previous: list[Any] = []
        self.accesses: tuple[Resolution, ...] = ()
        self.facts: list[tuple[str, Any]] = []

    def fact(self, key: str, value: Any = True) -> None:
        self.facts.append((key, value))

    def finish(self, record: Record, cpu: int | None, irql: Irql | None, modelled: Irql | None) -> Effects:
        """The record's Effects; the builder is empty again (most records fill one list or none)."""
        created, released, previous, facts = self.created, self.released, self.previous, self.facts
        effects = Effects(record, cpu, irql, modelled, tuple(created) if created else (), tuple(released) if released else (),
                          tuple(previous) if previous else (), self.accesses, tuple(facts) if facts else ())
        if created:
            created.clear()
        if released:
            released.clear()
        if previous:
            previous.clear()
        if facts:
            facts.clear()
        self.accesses = ()
        return effects

    def clear(self) -> None:
        self.created.clear()
        self.released.clear()
        self.previous.clear()
        self.accesses = ()
        self.facts.clear()
