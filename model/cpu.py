"""Per-CPU state: the IRQL by the model's own bookkeeping, held spin locks, open frames."""

from __future__ import annotations

from dataclasses import dataclass, field

from .irql import Irql
from .location import SourceLocation

__all__ = ["CpuState", "Frame", "HeldLock"]


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
    runs_for: str | None = None  # for a callback inside an `enter`: the DDI that runs it


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


@dataclass(slots=True)
class CpuState:
    """One CPU: its IRQL (None until known), the locks it holds, its open frames."""

    number: int
    irql: Irql | None = None
    locks: list[HeldLock] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

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
