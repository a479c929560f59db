"""The layout of a trace's timeline picture: a `Timeline` and the trace's findings turned into
positioned shapes (in SVG user units) that the HTML template draws as inline SVG.

Lanes, top to bottom: one per CPU with its IRQL as a step line over the trace's line numbers,
then one band per kind of object (scatter/gather lists, pool blocks, common buffers, MDLs) with
a bar for each object's life, packed into rows. Findings are vertical markers at their line.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .timeline import KINDS, Lifetime, Timeline

__all__ = ["MAX_ROWS", "Bar", "Marker", "Picture", "Tick", "lay_out"]

WIDTH = 1120
LEFT = 128  # room for lane labels
RIGHT = 24
TOP = 34  # room for finding labels
LANE_HEIGHT = 64
LANE_GAP = 10
ROW_HEIGHT = 10
ROW_GAP = 3
KIND_GAP = 22
SPACIOUS_ROWS = 12  # up to this many objects of a kind live at once, rows are ROW_HEIGHT high ...
DENSE_HEIGHT = 150  # ... beyond, MAX_ROWS at most share this height
MAX_ROWS = 60  # rows of bars per kind; bars that would need more are counted, not drawn
AXIS_HEIGHT = 34

# IRQL bands drawn in a CPU lane, bottom to top: (label, lowest level, highest level)
BANDS = (("PASSIVE", 0, 0), ("APC", 1, 1), ("DISPATCH", 2, 2), ("DIRQL", 3, 30), ("HIGH", 31, 31))

KIND_TITLES = {"sg list": "Scatter/gather lists", "pool block": "Pool blocks", "common buffer": "Common buffers", "MDL": "MDLs"}
KIND_CLASSES = {"sg list": "sgl", "pool block": "pool", "common buffer": "cb", "MDL": "mdl"}


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A level's gridline in a CPU lane."""

    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Peak:
    """Where IRQL points were merged: the highest level reached over [x, x + width)."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Lane:
    """One CPU: its box, level gridlines, the IRQL step path and merged peaks."""

    label: str
    y: float
    height: float
    bands: tuple[Band, ...]
    path: str
    peaks: tuple[Peak, ...]
    title: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    open: bool
    flagged: bool
    title: str

    @property
    def thin(self) -> bool:
        return self.height < 5


@dataclass(frozen=True, slots=True)
class Group:
    """One kind of object: a label, its rows of bars, how many were drawn and not, and the
    most that were live at the same line of the trace."""

    label: str
    css: str
    y: float
    height: float
    bars: tuple[Bar, ...]
    count: int
    not_drawn: int
    most_live: int

    @property
    def captions(self) -> tuple[str, ...]:
        """The lines under the group's label: how many drawn, how many at once."""
        lines = [f"{self.count:,} drawn"]
        if self.most_live > 1:
            lines.append(f"up to {self.most_live:,} live at once")
        return tuple(lines)


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    severity: str
    code: str
    anchor: str
    title: str
    labelled: bool


@dataclass(frozen=True, slots=True)
class Picture:
    """Everything the template needs to draw one timeline."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    ticks: tuple[Tick, ...]
    lanes: tuple[Lane, ...]
    groups: tuple[Group, ...]
    markers: tuple[Marker, ...]
    notes: tuple[str, ...]
    first_line: int
    last_line: int

    @property
    def has_open_bars(self) -> bool:
        return any(bar.open for group in self.groups for bar in group.bars)

    @property
    def has_flagged_bars(self) -> bool:
        return any(bar.flagged for group in self.groups for bar in group.bars)

    @property
    def has_peaks(self) -> bool:
        return any(lane.peaks for lane in self.lanes)


@dataclass(frozen=True, slots=True)
class FindingMark:
    """What the picture needs of a finding: where, how bad, its anchor in the page, and the
    lines of its related events (bars starting or ending there are outlined)."""

    line: int
    severity: str
    code: str
    anchor: str
    message: str
    related_lines: tuple[int, ...] = ()


def _nice_step(span: int, count: int = 8) -> int:
    raw = max(1.0, span / count)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)


def _band_index(level: int) -> int:
    for index, (_, low, high) in enumerate(BANDS):
        if low <= level <= high:
            return index
    return len(BANDS) - 1


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


_RANK = {"error": 3, "warning": 2, "note": 1}


def _irql_path(points: tuple, x_of: Callable[[int], float], y_of: Callable[[int], float],
               end_x: float) -> tuple[str, list[Peak]]:
    """The step path of one CPU's IRQL, and the shaded peaks of merged points. Points that
    start in the same pixel column are drawn as one vertical stroke over the levels they
    reach, so the path stays small however many points there are."""
    commands: list[str] = []
    peaks: list[Peak] = []
    drawing = False
    index, count = 0, len(points)
    while index < count:
        x0 = x_of(points[index].line)
        stop = index
        while stop + 1 < count and int(x_of(points[stop + 1].line)) == int(x0):
            stop += 1
        column = points[index:stop + 1]
        x1 = x_of(points[stop + 1].line) if stop + 1 < count else end_x
        index = stop + 1
        known = [p for p in column if p.level is not None]
        if not known:
            drawing = False
            continue
        first_y = y_of(known[0].level)
        if not drawing:
            commands.append(f"M{x0},{first_y}")
        if len(column) > 1:
            top = min(y_of(p.peak if p.peak is not None else p.level) for p in known)
            bottom = max(y_of(p.level) for p in known)
            commands.append(f"V{top} V{bottom}")
        last = column[-1]
        if last.level is None:
            drawing = False
            continue
        level_y = y_of(last.level)
        commands.append(f"V{level_y} H{x1}")
        drawing = True
        if last.peak is not None and y_of(last.peak) < level_y:
            peak_y = y_of(last.peak)
            peaks.append(Peak(x0, peak_y, max(round(x1 - x0, 2), 1.0), round(level_y - peak_y, 2)))
    return " ".join(commands), peaks


def _markers(findings: list[FindingMark], x_of: Callable[[int], float], first: int, last: int) -> tuple[Marker, ...]:
    """One marker per pixel column that holds findings: the worst severity, the first
    finding's anchor, and a title that counts them."""
    columns: dict[int, list[tuple[float, FindingMark]]] = {}
    for mark in sorted(findings, key=lambda m: (m.line, m.code)):
        x = x_of(min(max(mark.line, first), last))
        columns.setdefault(int(x), []).append((x, mark))
    markers = []
    last_label = -1e9
    for column in columns.values():
        x, head = column[0]
        marks = [mark for _, mark in column]
        worst = max(marks, key=lambda m: _RANK.get(m.severity, 0)).severity
        codes: dict[str, int] = {}
        for mark in marks:
            codes[mark.code] = codes.get(mark.code, 0) + 1
        if len(marks) == 1:
            title = f"line {head.line}: {head.code} {head.message}"
        else:
            lines = f"line {marks[0].line}" if marks[0].line == marks[-1].line else f"lines {marks[0].line}-{marks[-1].line}"
            title = f"{lines}: {len(marks)} findings: " + ", ".join(f"{code} x{n}" for code, n in codes.items())
        label = head.code if len(codes) == 1 else f"{head.code} +{len(codes) - 1}"
        labelled = x - last_label >= 8 * len(label) + 8
        if labelled:
            last_label = x
        markers.append(Marker(x, worst, label, head.anchor, title, labelled))
    return tuple(markers)


def _rows(spans: list[tuple[float, float]]) -> tuple[list[int], int]:
    """The lowest free row for each (x, width) span, in order of x, so that no two spans of
    a row overlap; and the number of rows used (the most objects live at once)."""
    busy: list[tuple[float, int]] = []  # (end x, row)
    free: list[int] = []
    rows: list[int] = []
    count = 0
    for x0, width in spans:
        while busy and busy[0][0] + 2 <= x0:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            row = heapq.heappop(free)
        else:
            row, count = count, count + 1
        heapq.heappush(busy, (x0 + width, row))
        rows.append(row)
    return rows, count


def _most_live(lifetimes: list[Lifetime]) -> int:
    """The most of these objects (in order of creation) live at the same line."""
    ends: list[float] = []
    most = 0
    for lifetime in lifetimes:
        while ends and ends[0] <= lifetime.start:
            heapq.heappop(ends)
        heapq.heappush(ends, math.inf if lifetime.end is None else lifetime.end)
        most = max(most, len(ends))
    return most


def lay_out(timeline: Timeline, findings: Iterable[FindingMark] = ()) -> Picture:
    """Position every lane, bar and marker of `timeline` on a WIDTH-wide canvas."""
    first = timeline.first_line or 1
    last = max(timeline.last_line, first + 1)
    plot = WIDTH - LEFT - RIGHT

    def x_of(line: int) -> float:
        return round(LEFT + (line - first) / (last - first) * plot, 2)

    findings = list(findings)
    y = TOP
    lanes = []
    step = (LANE_HEIGHT - 12) / (len(BANDS) - 1)
    for lane in timeline.lanes:
        bottom = y + LANE_HEIGHT - 6

        def y_of(level: int, bottom: float = bottom) -> float:
            return round(bottom - _band_index(level) * step, 2)

        path, peaks = _irql_path(lane.points, x_of, y_of, x_of(last))
        title = f"CPU {lane.cpu}: {_plural(len(lane.points), 'IRQL change')}"
        if lane.merged:
            title += f" drawn, {lane.merged:,} more merged (the shaded areas show the highest level reached)"
        bands = tuple(Band(y_of(low), label) for label, low, _ in BANDS)
        lanes.append(Lane(f"CPU {lane.cpu}", y, LANE_HEIGHT, bands, path, tuple(peaks), title))
        y += LANE_HEIGHT + LANE_GAP

    flagged_lines = {line for mark in findings for line in mark.related_lines} | {mark.line for mark in findings}
    by_kind: dict[str, list[Lifetime]] = {kind: [] for kind in KINDS}
    for lifetime in timeline.lifetimes:
        by_kind.setdefault(lifetime.kind, []).append(lifetime)
    groups = []
    if any(by_kind.values()):
        y += 8
    crowded = False
    for kind in KINDS:
        lifetimes = by_kind.get(kind) or []
        if not lifetimes:
            continue
        spans = []
        for lifetime in lifetimes:
            x0 = x_of(lifetime.start)
            spans.append((x0, max(x_of(lifetime.end if lifetime.end is not None else last) - x0, 3.0)))
        rows, needed = _rows(spans)
        shown_rows = min(needed, MAX_ROWS)
        pitch = ROW_HEIGHT + ROW_GAP if needed <= SPACIOUS_ROWS else max(DENSE_HEIGHT / shown_rows, 2.0)
        height_of_bar = ROW_HEIGHT if needed <= SPACIOUS_ROWS else round(max(pitch * 0.75, 1.5), 2)
        top = y + 16
        bars = []
        not_drawn = 0
        for lifetime, (x0, width), row in zip(lifetimes, spans, rows, strict=True):
            if row >= MAX_ROWS:
                not_drawn += 1
                continue
            end = f"released at line {lifetime.end}" if lifetime.end is not None else "still live at the end of the trace"
            flagged = lifetime.start in flagged_lines or (lifetime.end is not None and lifetime.end in flagged_lines)
            bars.append(Bar(
                x0, round(top + row * pitch, 2), round(width, 2), height_of_bar, KIND_CLASSES[kind], lifetime.end is None,
                flagged, f"{lifetime.label} ({lifetime.detail}): created at line {lifetime.start}, {end}",
            ))
        crowded = crowded or bool(not_drawn)
        captions = 3 if not_drawn else 2
        height = max(16 + shown_rows * pitch, 18 + 13 * captions)
        groups.append(Group(KIND_TITLES[kind], KIND_CLASSES[kind], round(y, 2), round(height, 2), tuple(bars), len(bars),
                            not_drawn, _most_live(lifetimes)))
        y += height + KIND_GAP - 10

    bottom = round(y, 2)
    tick_step = _nice_step(last - first)
    start_tick = math.ceil(first / tick_step) * tick_step
    ticks = tuple(Tick(x_of(line), f"{line:,}") for line in range(start_tick, last + 1, tick_step))

    notes = []
    not_drawn = timeline.lifetimes_not_drawn + sum(group.not_drawn for group in groups)
    if not_drawn:
        why = []
        if timeline.lifetimes_not_drawn:
            why.append(f"only the first {len(timeline.lifetimes):,} objects of the trace are kept")
        if crowded:
            why.append(f"at most {MAX_ROWS} objects of a kind live at the same time are drawn")
        notes.append(f"{not_drawn:,} more not drawn: {'; '.join(why)}.")
    if timeline.irql_points_merged:
        notes.append(f"{timeline.irql_points_merged:,} IRQL changes more not drawn one by one: neighbouring changes were "
                     "merged; the shaded areas show the highest level reached.")
    return Picture(
        width=WIDTH,
        height=int(bottom + AXIS_HEIGHT),
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP - 8,
        bottom=bottom,
        ticks=ticks,
        lanes=tuple(lanes),
        groups=tuple(groups),
        markers=_markers(findings, x_of, first, last),
        notes=tuple(notes),
        first_line=first,
        last_line=last,
    )
