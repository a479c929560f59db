"""ETL reading speed: the kit's events through `capture_lines`, and the raw `EtlFile.events()` walk.

    python bench/etl_speed.py [--events 1000000] [--cpus 4] [--keep FILE] [--etl FILE] [--json OUT]

Writes a kit-only ETL file of N `Line` events of Dmalint.Capture on 4 CPUs with the test
writer (tests/etl_writer.py: real layout, 64 KiB per-CPU buffers written as they fill),
realistic lines (calls, enter/leave around BuildScatterGatherList, sgl and mdl records, IRQL
changes; new addresses every request), then times in this process:

  capture_lines   the dmatrace text of the capture (fast path for the kit's schema, seq merge)
  events          `EtlFile.events()`: every record decoded into an `EtlEvent` (TraceLogging fields)

and prints events/s, MB/s and peak RSS (resource.getrusage, the whole process). The target is
300,000 kit events/s through capture_lines. `--etl FILE` times an existing file instead.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.reading.etl import EtlFile, capture_lines  # noqa: E402
from tests.etl_writer import WriterEvent, kit_event, write_etl  # noqa: E402

TARGET = 300_000  # kit events/s through capture_lines


def kit_lines(count: int, cpus: int, seed: int = 1) -> Iterator[tuple[int, str]]:
    """(cpu, line) for seq 1..count: a driver's request cycle, new addresses per request."""
    rng = random.Random(seed)
    seq = 0
    request = 0
    while True:
        request += 1
        cpu = rng.randrange(cpus)
        tid = 4000 + rng.randrange(64)
        sg = 0xFFFFB20A1C5E0000 + (request % 4096) * 0x100
        mdl = 0xFFFFE00C50000000 + (request % 2048) * 0x80
        va = 0xFFFFB00012340000 + (request % 1024) * 0x3000
        frame = 0x0A340 + request % 50_000
        body = [
            f"irql=PASSIVE_LEVEL call IoAllocateMdl(VirtualAddress={va:#x}, Length=0x3000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> {mdl:#x}",
            f"irql=PASSIVE_LEVEL mdl {mdl:#x} va={va:#x} offset=0 bytes=0x3000 pfns=[{frame:#x}, {frame + 1:#x}, {frame + 2:#x}]",
            "irql=PASSIVE_LEVEL call KeRaiseIrql(NewIrql=DISPATCH_LEVEL) -> PASSIVE_LEVEL",
            f"irql=DISPATCH_LEVEL enter BuildScatterGatherList(DmaAdapter=0xffffe00c4f7c2010, DeviceObject=0xffffe00c4f7b0060, Mdl={mdl:#x}, CurrentVa={va:#x}, Length=0x3000, ExecutionRoutine=0xfffff80512341000, Context={sg:#x}, WriteToDevice=FALSE, ScatterGatherBuffer={sg:#x}, ScatterGatherLength=0x80)",
            f"irql=DISPATCH_LEVEL callback AdapterListControl(DeviceObject=0xffffe00c4f7b0060, Irp=NULL, ScatterGather={sg:#x}, Context={sg:#x})",
            f"irql=DISPATCH_LEVEL sgl {sg:#x} [{frame << 12:#x}:0x1000, {(frame + 1) << 12:#x}:0x2000]",
            "irql=DISPATCH_LEVEL done AdapterListControl",
            "irql=DISPATCH_LEVEL leave BuildScatterGatherList -> STATUS_SUCCESS",
            f"irql=DISPATCH_LEVEL call PutScatterGatherList(DmaAdapter=0xffffe00c4f7c2010, ScatterGather={sg:#x}, WriteToDevice=FALSE)",
            "irql=DISPATCH_LEVEL call KeLowerIrql(NewIrql=PASSIVE_LEVEL)",
            f"irql=PASSIVE_LEVEL call IoFreeMdl(Mdl={mdl:#x})",
        ]
        for text in body:
            seq += 1
            if seq > count:
                return
            yield cpu, f"seq={seq} cpu={cpu} tid={tid} {text}"
            if rng.random() < 0.2:
                cpu = rng.randrange(cpus)


def kit_events(count: int, cpus: int) -> Iterator[WriterEvent]:
    stamp = 1_000_000
    for seq, (cpu, line) in enumerate(kit_lines(count, cpus), 1):
        stamp += 3 + seq % 7
        yield kit_event(seq, line, cpu=cpu, pid=4, tid=4242, timestamp=stamp)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path) -> dict:
    size = path.stat().st_size
    begin = time.perf_counter()
    lines = 0
    for _line in capture_lines(path):
        lines += 1
    lines_seconds = time.perf_counter() - begin
    kit = lines - 4  # @dmatrace, @target and the two comments; nothing is lost in these files
    begin = time.perf_counter()
    records = 0
    for _event in EtlFile(path).events():
        records += 1
    events_seconds = time.perf_counter() - begin
    return {
        "file": str(path), "bytes": size, "kit_events": kit, "records": records,
        "capture_lines_seconds": round(lines_seconds, 3), "capture_lines_events_per_s": round(kit / lines_seconds),
        "capture_lines_mb_per_s": round(size / lines_seconds / 1e6, 1),
        "events_seconds": round(events_seconds, 3), "events_per_s": round(records / events_seconds),
        "peak_rss_mb": round(peak_rss_mb(), 1), "target": TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cpus", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="write the ETL file here (and keep it)")
    parser.add_argument("--etl", type=Path, help="time this ETL file instead of writing one")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = options.etl
        if path is None:
            path = options.keep or Path(scratch) / "kit.etl"
            begin = time.perf_counter()
            write_etl(path, kit_events(options.events, options.cpus), cpus=options.cpus)
            print(f"wrote {options.events:,} kit events on {options.cpus} CPUs: {path.stat().st_size / 1e6:.1f} MB "
                  f"in {time.perf_counter() - begin:.1f} s ({path})")
        figures = measure(path)
    print(f"capture_lines  {figures['kit_events']:>10,} kit events  {figures['capture_lines_seconds']:7.2f} s  "
          f"{figures['capture_lines_events_per_s']:>9,} events/s  {figures['capture_lines_mb_per_s']:6.1f} MB/s")
    print(f"events()       {figures['records']:>10,} records     {figures['events_seconds']:7.2f} s  "
          f"{figures['events_per_s']:>9,} events/s")
    verdict = "met" if figures["capture_lines_events_per_s"] >= TARGET else "MISSED"
    print(f"target {TARGET:,} kit events/s through capture_lines: {verdict}; peak RSS {figures['peak_rss_mb']:.0f} MB")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
