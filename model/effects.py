"""What one record did to the machine: `Effects`, and the builder handlers fill in."""

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
    build finds in its buffer). `facts` are (key, value) observations; see `Machine` for the keys.
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
