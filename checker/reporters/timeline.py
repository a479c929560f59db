"""A trace's timeline for the HTML report: each CPU's IRQL over the trace, and how long each
scatter/gather list, pool block, common buffer and MDL lived.

`TimelineRecorder` watches the model's `Effects` record by record (the engine's observer) and
keeps a bounded picture whatever the trace's length: at most `MAX_LIFETIMES` lifetimes (the
first ones created; the rest are only counted) and at most `MAX_IRQL_POINTS` IRQL points per
CPU (when a lane fills up, neighbouring points are merged in pairs, keeping the highest level
each pair reached, so a short raise to DIRQL is never lost from the picture). The x axis is the
trace's line number, which every record has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.common_buffer import CommonBuffer
from model.effects import Effects
from model.events import DmaAccess, Event
from model.mdl import Mdl
from model.pool import Block
from model.sgl import SgList

__all__ = [
    "KINDS",
    "MAX_IRQL_POINTS",
    "MAX_LIFETIMES",
    "IrqlLane",
    "IrqlPoint",
    "Lifetime",
    "Timeline",
    "TimelineRecorder",
]

MAX_LIFETIMES = 2000
MAX_IRQL_POINTS = 5000

KINDS = ("sg list", "pool block", "common buffer", "MDL")
"""The kinds of object a lifetime bar is drawn for, in the order the picture shows them."""


@dataclass(frozen=True, slots=True)
class IrqlPoint:
    """From `line` on, the CPU ran at `level` (None: unknown). `peak` is the highest level
    reached between `line` and the next point: above `level` only where points were merged."""

    line: int
    level: int | None
    name: str | None
    peak: int | None


@dataclass(frozen=True, slots=True)
class IrqlLane:
    """One CPU's IRQL changes, and how many changes were merged away to keep the lane small."""

    cpu: int
    points: tuple[IrqlPoint, ...]
    merged: int = 0


@dataclass(frozen=True, slots=True)
class Lifetime:
    """An object from the line that created it to the line that released it (None: still
    live at the end of the trace). `label` names it as findings do ("sg list 0xb000")."""

    kind: str
    ordinal: int
    label: str
    detail: str
    start: int
    end: int | None
    cpu: int | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the HTML report draws for one trace. `first_line`/`last_line` span the records
    seen (0 when none); `lifetimes_not_drawn` counts objects created after the first
    `MAX_LIFETIMES`."""

    path: str
    first_line: int
    last_line: int
    lanes: tuple[IrqlLane, ...]
    lifetimes: tuple[Lifetime, ...]
    lifetimes_not_drawn: int = 0

    @property
    def irql_points_merged(self) -> int:
        return sum(lane.merged for lane in self.lanes)


def _describe(obj: Any) -> tuple[str, str, str, int] | None:
    """(kind, label, detail, ordinal) of an object a bar is drawn for, or None."""
    if isinstance(obj, SgList):
        direction = "to the device" if obj.write_to_device else "from the device"
        return "sg list", f"sg list {obj.buffer:#x}", f"{obj.length:#x} bytes {direction}, by {obj.ddi}", obj.ordinal
    if isinstance(obj, Block):
        tag = ""
        if obj.tag is not None:
            raw = obj.tag.to_bytes(4, "little", signed=False) if 0 <= obj.tag < 1 << 32 else b""
            tag = f", tag '{raw.decode('latin-1')}'" if raw and all(32 <= b < 127 for b in raw) else f", tag {obj.tag:#x}"
        return "pool block", f"block {obj.address:#x}", f"{obj.size:#x} bytes{tag}, by {obj.allocator}", obj.ordinal
    if isinstance(obj, CommonBuffer):
        return "common buffer", f"common buffer {obj.va:#x}", f"{obj.length:#x} bytes at logical {obj.logical:#x}", obj.ordinal
    if isinstance(obj, Mdl):
        return "MDL", f"MDL {obj.address:#x}", f"{obj.byte_count:#x} bytes at {obj.va:#x}", obj.ordinal
    return None


class _Lane:
    """A CPU's IRQL points while recording: merged in pairs whenever `limit` is reached."""

    __slots__ = ("cpu", "points", "merged", "last", "limit")

    def __init__(self, cpu: int, limit: int) -> None:
        self.cpu = cpu
        self.points: list[list] = []  # [line, level, name, peak]
        self.merged = 0
        self.last: tuple[int | None, str | None] | None = None
        self.limit = limit

    def add(self, line: int, level: int | None, name: str | None) -> None:
        if self.last == (level, name):
            return
        self.last = (level, name)
        if self.points and self.points[-1][0] == line:
            point = self.points[-1]
            point[1], point[2], point[3] = level, name, _higher(point[3], level)
            return
        self.points.append([line, level, name, level])
        if len(self.points) >= self.limit:
            self._halve()

    def _halve(self) -> None:
        """Merge each pair of neighbouring points into one: the pair's first line, the level
        the second ends at (so the step into the next point stays right), the higher peak."""
        points = self.points
        merged = []
        for index in range(0, len(points) - 1, 2):
            first, second = points[index], points[index + 1]
            merged.append([first[0], second[1], second[2], _higher(_higher(first[3], second[3]), first[1])])
        if len(points) % 2:
            merged.append(points[-1])
        self.merged += len(points) - len(merged)
        self.points = merged

    def freeze(self) -> IrqlLane:
        return IrqlLane(self.cpu, tuple(IrqlPoint(*point) for point in self.points), self.merged)


def _higher(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class TimelineRecorder:
    """Called as `recorder(effects, machine)` for every record of one trace (the engine's
    observer); `timeline()` gives the frozen picture. Memory is bounded by `max_lifetimes`
    and `max_irql_points` per CPU, not by the trace's length."""

    def __init__(self, path: str, max_lifetimes: int = MAX_LIFETIMES, max_irql_points: int = MAX_IRQL_POINTS) -> None:
        self.path = path
        self.max_lifetimes = max_lifetimes
        self.max_irql_points = max(4, max_irql_points)
        self.first_line = 0
        self.last_line = 0
        self._lanes: dict[int, _Lane] = {}
        self._lifetimes: list[dict[str, Any]] = []
        self._open: dict[tuple[str, int], dict[str, Any]] = {}  # kept lifetimes not yet released
        self._newest: dict[str, int] = {}  # highest ordinal seen per kind: a lower one is an update
        self._not_drawn = 0

    def __call__(self, effects: Effects, machine: Any = None) -> None:
        record = effects.record
        line = record.location.line
        if not self.first_line:
            self.first_line = line
        self.last_line = max(self.last_line, line)
        if not isinstance(record, Event):
            return
        if effects.cpu is not None and not isinstance(record, DmaAccess):  # a dma line is the device, not a CPU
            lane = self._lanes.get(effects.cpu)
            if lane is None:
                lane = self._lanes[effects.cpu] = _Lane(effects.cpu, self.max_irql_points)
            irql = effects.irql
            lane.add(line, None if irql is None else irql.level, None if irql is None else str(irql))
        for obj in effects.created:
            self._created(obj, line, effects.cpu)
        for obj in effects.released:
            described = _describe(obj)
            if described is not None:
                kept = self._open.pop((described[0], described[3]), None)
                if kept is not None:
                    kept["end"] = line

    def _created(self, obj: Any, line: int, cpu: int | None) -> None:
        described = _describe(obj)
        if described is None:
            return
        kind, label, detail, ordinal = described
        if ordinal <= self._newest.get(kind, 0):
            return  # the same object updated (a captured list or PFN array, a partial MDL)
        self._newest[kind] = ordinal
        if len(self._lifetimes) >= self.max_lifetimes:
            self._not_drawn += 1
            return
        entry = {"kind": kind, "ordinal": ordinal, "label": label, "detail": detail, "start": line, "end": None, "cpu": cpu}
        self._lifetimes.append(entry)
        self._open[(kind, ordinal)] = entry

    def timeline(self) -> Timeline:
        return Timeline(
            path=self.path,
            first_line=self.first_line,
            last_line=self.last_line,
            lanes=tuple(self._lanes[cpu].freeze() for cpu in sorted(self._lanes)),
            lifetimes=tuple(Lifetime(**entry) for entry in self._lifetimes),
            lifetimes_not_drawn=self._not_drawn,
        )
