"""The timeline the HTML report draws: IRQL per CPU and object lifetimes, bounded in memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checker.engine.run import RunOptions, check_sources
from checker.language.rulebook import builtin_rulebook
from checker.reading.discover import discover
from checker.reporters.timeline import MAX_IRQL_POINTS, MAX_LIFETIMES, Timeline, TimelineRecorder
from model.effects import Effects
from model.irql import Irql
from model.location import SourceLocation
from model.pool import Block

from .helpers import ROOT, TRACES, parse_line

FIXTURES = ROOT / "tests" / "fixtures"


def _timelines(*paths) -> dict[str, Timeline]:
    result = check_sources(discover([str(p) for p in paths]), builtin_rulebook(), RunOptions(recorder=TimelineRecorder))
    return {file.path: file.timeline for file in result.files}


def test_without_the_option_no_timeline_is_recorded():
    result = check_sources(discover([str(FIXTURES / "violations.trace")]), builtin_rulebook())
    assert result.files[0].timeline is None


def test_violations_fixture_lifetimes_and_irql():
    (timeline,) = _timelines(FIXTURES / "violations.trace").values()
    assert (timeline.first_line, timeline.last_line) == (1, 14)
    spans = {(life.kind, life.label): (life.start, life.end, life.cpu) for life in timeline.lifetimes}
    assert spans == {
        ("pool block", "block 0xffffb00012340000"): (4, 13, 0),  # the second free (line 14) finds it freed
        ("MDL", "MDL 0xd0"): (5, None, 0),  # never freed: open to the end
        ("sg list", "sg list 0xb000"): (6, 9, 1),  # the first put releases it
        ("sg list", "sg list 0xc000"): (12, None, 1),  # never put (SGL001)
    }
    lanes = {lane.cpu: [(p.line, p.name) for p in lane.points] for lane in timeline.lanes}
    # the dma lines (DIRQL) are the device's, not CPU 1's
    assert lanes == {0: [(4, "PASSIVE_LEVEL")], 1: [(6, "DISPATCH_LEVEL"), (9, "PASSIVE_LEVEL"), (10, "DISPATCH_LEVEL")]}
    assert all(p.peak == p.level for lane in timeline.lanes for p in lane.points)
    assert timeline.lifetimes_not_drawn == timeline.irql_points_merged == 0


def test_bundled_traces():
    timelines = _timelines(TRACES)
    assert sorted(timelines) == sorted(str(p) for p in TRACES.glob("*.trace"))
    for path, timeline in timelines.items():
        assert isinstance(timeline, Timeline) and timeline.lanes and timeline.lifetimes, path
        assert timeline.last_line == len((ROOT / path).read_text().splitlines())
        for life in timeline.lifetimes:
            assert timeline.first_line <= life.start <= timeline.last_line
            assert life.end is None or life.start <= life.end <= timeline.last_line
        for lane in timeline.lanes:
            lines = [p.line for p in lane.points]
            assert lines == sorted(set(lines))
            levels = [p.level for p in lane.points]
            assert all(a != b for a, b in zip(levels, levels[1:], strict=False)), "a point is only kept where the level changes"
        # one bar per object, however often the model updates it (captured lists, PFN arrays)
        keys = [(life.kind, life.ordinal) for life in timeline.lifetimes]
        assert len(keys) == len(set(keys))
    four = timelines[str(TRACES / "multi-cpu-tracefmt.trace")]
    assert [lane.cpu for lane in four.lanes] == [0, 1, 2, 3]
    # the clean traces release everything they make
    for name in ("wdm-busmaster-clean.trace", "storport-miniport-clean.trace", "multi-cpu-tracefmt.trace"):
        assert all(life.end is not None for life in timelines[str(TRACES / name)].lifetimes), name
    bounce = timelines[str(TRACES / "wdm-32bit-device-bounce.trace")]
    assert {life.kind for life in bounce.lifetimes} == {"sg list", "pool block", "common buffer", "MDL"}
    example = timelines[str(TRACES / "format-example.trace")]
    assert [(life.kind, life.start, life.end) for life in example.lifetimes] == [
        ("pool block", 15, 31), ("MDL", 16, 30), ("sg list", 20, 29)
    ]


def test_a_long_trace_keeps_the_first_lifetimes_and_merges_irql_points(tmp_path):
    count = MAX_LIFETIMES + 600
    lines = ["@dmatrace 1"]
    for index in range(count):
        address = 0xFFFFB00010000000 + index * 0x1000
        lines.append(f"cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, "
                     f"Tag=0x41424344) -> {address:#x}")
        lines.append("cpu=0 irql=DISPATCH call KeGetCurrentIrql()")
    (tmp_path / "long.trace").write_text("\n".join(lines) + "\n")
    (timeline,) = _timelines(tmp_path / "long.trace").values()
    assert len(timeline.lifetimes) == MAX_LIFETIMES
    assert timeline.lifetimes_not_drawn == count - MAX_LIFETIMES
    assert [life.start for life in timeline.lifetimes[:3]] == [2, 4, 6]  # the first ones, in order
    (lane,) = timeline.lanes
    assert len(lane.points) < MAX_IRQL_POINTS
    assert len(lane.points) + lane.merged == 2 * count
    assert lane.points[0].line == 2
    assert lane.points[0].peak == 2 and max(p.peak for p in lane.points) == 2  # a merged pair shows the DISPATCH it reached


def _effects(record, line: int, cpu: int, irql: Irql, created=(), released=()) -> Effects:
    return Effects(replace(record, location=SourceLocation("gen.trace", line)), cpu, irql, irql, tuple(created), tuple(released))


def test_memory_is_bounded_on_a_very_long_stream():
    """A quarter of a million records: the kept items stay under the caps all along, and a
    single short raise to HIGH_LEVEL survives the merging."""
    call = parse_line("cpu=0 call KeGetCurrentIrql()")
    recorder = TimelineRecorder("gen.trace", max_lifetimes=100, max_irql_points=64)
    levels = [Irql.from_name("PASSIVE"), Irql.from_name("DISPATCH")]
    spike = 120_001
    total = 250_000
    for line in range(1, total + 1):
        cpu = line % 2
        irql = Irql.from_name("HIGH") if line == spike else levels[(line // 2) % 2]
        created = released = ()
        if line % 3 == 0:
            created = (Block(line, 0x10, None, "nonpaged", "ex", "ExAllocatePool2", line // 3, SourceLocation("gen.trace", line)),)
        elif line % 3 == 1 and line > 3:
            ordinal = (line - 1) // 3
            released = (Block(line - 1, 0x10, None, "nonpaged", "ex", "ExAllocatePool2", ordinal,
                              SourceLocation("gen.trace", line - 1), freed_at=SourceLocation("gen.trace", line)),)
        recorder(_effects(call, line, cpu, irql, created, released))
        if line % 1000 == 0:
            assert len(recorder._lifetimes) <= 100 and len(recorder._open) <= 100
            assert all(len(lane.points) <= 64 for lane in recorder._lanes.values())
    timeline = recorder.timeline()
    assert len(timeline.lifetimes) == 100 and timeline.lifetimes_not_drawn == total // 3 - 100
    assert all(life.end == life.start + 1 for life in timeline.lifetimes)
    assert timeline.last_line == total
    for lane in timeline.lanes:
        assert 0 < len(lane.points) <= 64 and lane.merged > 0
    assert max(p.peak for p in timeline.lanes[1].points) == 31  # line 120001 is on CPU 1
    assert max(p.peak for p in timeline.lanes[0].points) == 2


@pytest.mark.parametrize("limit", [4, 5, 7])
def test_merging_keeps_the_first_line_and_the_last_level(limit):
    call = parse_line("cpu=0 call KeGetCurrentIrql()")
    recorder = TimelineRecorder("gen.trace", max_irql_points=limit)
    names = ["PASSIVE", "DISPATCH", "APC", "DIRQL", "PASSIVE", "DISPATCH", "HIGH", "APC", "PASSIVE"]
    for line, name in enumerate(names, start=10):
        recorder(_effects(call, line, 0, Irql.from_name(name)))
    (lane,) = recorder.timeline().lanes
    assert len(lane.points) < limit
    assert lane.points[0].line == 10
    assert lane.points[-1].level == 0  # the level the trace ends at
    assert max(p.peak for p in lane.points) == 31
    assert len(lane.points) + lane.merged == len(names)
