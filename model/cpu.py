"""Per-CPU state: the IRQL by the model's own bookkeeping, held spin locks, open frames."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from .frozen import fast_init
from .irql import Irql
from .location import SourceLocation
from .retained import RELEASED_LOCKS

__all__ = ["CpuState", "DeferredRoutine", "Frame", "HeldLock"]


@fast_init
@dataclass(frozen=True, slots=True)
class Frame:
    """An open `enter` (a DDI still running) or `callback` (a driver routine still running).

    `entry_irql` is the level the routine was entered at; `saved_irql` the CPU's level
    before it, which the CPU returns to when the routine is done."""

    kind: str
    name: str
    location: SourceLocation
    entry_irql: Irql | None
    saved_irql: Irql | None
    runs_for: str | None = None  # for a callback: the DDI that runs it (inside its `enter`, or deferred)
    arguments: tuple = ()  # an `enter`'s in-arguments, which its `leave` acts on; a callback's: its DDI's
    ran_routine: bool = False  # for an `enter`: a callback ran inside it


@dataclass(frozen=True, slots=True)
class DeferredRoutine:
    """A request whose DDI returned before running the driver's routine: the system runs it
    later, maybe on another CPU, with the request's Context. `ordinal` is the list the
    request builds (None for AllocateAdapterChannel); `entered_at` and `left_at` are the
    DDI's `enter` and `leave`."""

    ddi: str
    arguments: tuple
    ordinal: int | None
    entered_at: SourceLocation
    left_at: SourceLocation


@fast_init
@dataclass(frozen=True, slots=True)
class HeldLock:
    """A spin lock held on a CPU: `key` identifies it (the lock's address, a queued lock's
    handle, or a StorPort lock type), `family` is how it was acquired."""

    key: object
    family: str
    ddi: str
    old_irql: Irql | None
    acquired_at: SourceLocation
    frame_depth: int
    released_at: SourceLocation | None = None  # set on the snapshot a release reports

    def as_released(self, location: SourceLocation) -> HeldLock:
        """This lock, released at `location` (`dataclasses.replace`, without its cost per release)."""
        return HeldLock(self.key, self.family, self.ddi, self.old_irql, self.acquired_at, self.frame_depth, location)

    @property
    def lock(self) -> object:
        """The lock itself, whatever handle acquired it: its address, or a StorPort lock type
        (`DpcLock`, `StartIoLock`, `InterruptLock`)."""
        key = self.key
        if isinstance(key, tuple) and len(key) == 2 and key[0] != "storport":
            key = key[0]  # (lock, handle): a queued or StorPort lock acquired with a handle
        if isinstance(key, tuple) and len(key) == 2 and key[0] == "storport":
            key = key[1]
        return key


@dataclass(slots=True)
class CpuState:
    """One CPU: its IRQL (None until known), the locks it holds, its open frames."""

    number: int
    irql: Irql | None = None
    locks: list[HeldLock] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    raised: list[Irql | None] = field(default_factory=list)  # levels KeRaiseIrql saved, innermost last
    raised_at: list[SourceLocation] = field(default_factory=list)  # where each of `raised` was saved
    released_locks: OrderedDict[object, HeldLock] = field(default_factory=OrderedDict)  # recent releases, bounded

    def innermost(self, kind: str, name: str | None = None) -> int | None:
        """Index of the innermost open frame of `kind` (and `name`), or None."""
        for index in range(len(self.frames) - 1, -1, -1):
            frame = self.frames[index]
            if frame.kind == kind and (name is None or frame.name == name):
                return index
        return None

    def lock(self, key: object) -> HeldLock | None:
        for held in self.locks:
            if held.key == key:
                return held
        return None

    def holding(self, key: object) -> HeldLock | None:
        """The held lock `key` (an address, or ("storport", type)) names, whatever handle acquired it."""
        for held in self.locks:
            if held.key == key or (isinstance(held.key, tuple) and len(held.key) == 2 and held.key[0] == key):
                return held
        return None

    def settle_locks(self, depth: int) -> None:
        """The frames from `depth` on are gone: locks they acquired and still hold now belong to
        what runs at `depth` (so a later routine there does not report them as its own)."""
        if any(lock.frame_depth > depth for lock in self.locks):
            self.locks = [replace(lock, frame_depth=depth) if lock.frame_depth > depth else lock for lock in self.locks]

    def remember_release(self, lock: HeldLock, handle: int | None) -> None:
        """Keep a released lock (by its lock and its handle) to answer a later release of it."""
        for token in (("lock", lock.lock), ("handle", handle)) if handle is not None else (("lock", lock.lock),):
            self.released_locks.pop(token, None)
            self.released_locks[token] = lock
        while len(self.released_locks) > RELEASED_LOCKS:
            self.released_locks.popitem(last=False)
