"""dmalint's speed and scale benchmark: floor, dmalint's reader, the reference pipeline and dmalint end to end.

    python -m bench [--sizes 10k,100k,1M] [--full] [--kind mixed] [--seed 1] [--json FILE] [--keep DIR]
    python -m bench --jobs [--jobs-traces 50] [--jobs-events 10000] [--json FILE]

For each size (10k, 100k and 1M events; --full adds 10M) it generates a trace with
bench/generate.py (the benchmark mix: StorPort and WDM drivers on four CPUs, with a known set
of injected violations), then runs in this one session, each stage in its own process so each
has its own peak RSS:

  floor      read the file line by line and decode it, nothing else
  parse      dmalint's reader (checker.reading.reader.read_stream) yielding records
  reference  Lark LALR line by line with the project's grammar and Transformer
             (checker.reading.parser.LineParser with the fast path off), then the same model and
             rules (checker.engine.run.TraceCheck)
  dmalint    `dmalint check --format json FILE` end to end, timed from outside (start-up
             included), its peak RSS from wait4

floor, parse and reference are timed inside their process, from opening the file to the
last record (the parser and rules are built before the clock starts). The findings of
reference and dmalint are compared with the counts the generator injected, by code: a fast
wrong answer fails the run (exit status 1). Prints a table (events/s, lines/s, MB/s, peak
RSS, ratio to the reference and to the floor), the time per event at each size, and how far
each target of issue 7 is; --json FILE writes all of it.

--jobs checks a directory of generated traces with `dmalint check --jobs 1` and `--jobs 2`,
reports the speedup and checks that both reports are identical and right.

A long run shows a progress bar (events and MB done, rate, ETA) when standard error is a
terminal, and nothing of it otherwise. The machines are shared and noisy: compare ratios from
one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generate import VERSION, Manifest, expected_path, generate  # noqa: E402

SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
STAGES = ("floor", "parse", "reference", "dmalint")
TARGETS = {
    "end_to_end_events_per_s": 100_000,
    "end_to_end_aim_events_per_s": 150_000,
    "x_reference": 8.0,
    "parse_lines_per_s": 250_000,
    "peak_rss_mb_at_10M": 200,
    "linearity": 0.20,
    "jobs_speedup_2": 1.8,
}


# --- workers: one stage in its own process -----------------------------------------------------

def worker(stage: str, path: str) -> dict:
    """Run one in-process stage over `path` and return its measurements."""
    if stage == "floor":
        start = time.perf_counter()
        lines = 0
        with open(path, "rb") as stream:
            for raw in stream:
                raw.decode("utf-8")
                lines += 1
        return {"seconds": time.perf_counter() - start, "lines": lines}
    if stage == "parse":
        from checker.reading.reader import read_stream
        from model.events import Event

        with open(path, "rb") as stream:  # warm up: build the parser once, as a real run does at start
            for _ in zip(range(50), read_stream(stream, path), strict=False):
                pass
        start = time.perf_counter()
        events = 0
        with open(path, "rb") as stream:
            for item in read_stream(stream, path):
                if isinstance(item, Event):
                    events += 1
        return {"seconds": time.perf_counter() - start, "events": events}
    if stage == "reference":
        return reference(path)
    raise SystemExit(f"unknown stage {stage}")


def reference(path: str) -> dict:
    """Lark LALR line by line (LineParser with the fast path off), then TraceCheck: the model and rules."""
    from checker.engine.run import TraceCheck
    from checker.errors import TraceSyntaxError
    from checker.language.rulebook import builtin_rulebook
    from checker.reading.parser import LineParser
    from model.events import Event

    note = None
    try:
        parser = LineParser(path, fast=False)
    except TypeError:
        parser = LineParser(path)
        note = "LineParser has no fast= parameter yet: the reference uses LineParser as it is"
    rulebook = builtin_rulebook()
    parser.parse("@dmatrace 1", 0)  # the grammar is built: the clock starts with the file
    start = time.perf_counter()
    check = TraceCheck(path, rulebook)
    events = 0
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            text = raw.decode("utf-8").rstrip("\r\n")
            if not text or text.isspace():
                continue
            try:
                record = parser.parse(text, number)
            except TraceSyntaxError as error:
                check.feed(error)
                continue
            parser.take_warnings()
            if record is not None:
                events += isinstance(record, Event)
                check.feed(record)
    result = check.finish()
    seconds = time.perf_counter() - start
    findings = dict(sorted(Counter(f.code for f in result.findings).items()))
    return {"seconds": seconds, "events": events, "findings": findings, "unparsed": result.unparsed_lines, "note": note}


# --- running children, with their own peak RSS and an optional progress bar ---------------------

@dataclass
class Child:
    seconds: float  # wall time, start-up included
    cpu_seconds: float  # user + system time of the child and the children it waited for
    status: int
    peak_rss_mb: float
    stdout: bytes
    stderr: bytes


def run_child(command: list[str], watch: str | None = None, update: Callable[[int], None] | None = None) -> Child:
    """Run `command` to its end; its peak RSS comes from wait4 (that child alone). With `update`,
    the child's read position in the file `watch` is reported a few times a second."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        watched = None
        while True:
            if update is None:
                _, status, usage = os.wait4(process.pid, 0)
                break
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if watched is None and watch is not None:
                watched = _find_fd(process.pid, watch)
            if watched is not None:
                position = _position(process.pid, watched)
                if position is not None:
                    update(position)
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Child(seconds, cpu, process.returncode, usage.ru_maxrss / 1024, out.read(), err.read())


def _find_fd(pid: int, path: str) -> str | None:
    target = os.path.realpath(path)
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return fd
            except OSError:
                continue
    except OSError:
        return None
    return None


def _position(pid: int, fd: str) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("pos:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Progress:
    """A rich progress bar on a terminal; nothing when standard error is not one."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.progress = RichProgress(
                TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.fields[events]:>12,.0f} events"),
                DownloadColumn(), TextColumn("{task.fields[rate]:>9,.0f} events/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )
            self.progress.start()

    def task(self, description: str, total_bytes: int, total_events: int) -> Callable[[int], None] | None:
        """An updater taking bytes done (events are estimated from the file's events per byte)."""
        if self.progress is None:
            return None
        progress = self.progress
        task = progress.add_task(description, total=total_bytes, events=0, rate=0)
        started = time.perf_counter()
        per_byte = total_events / max(1, total_bytes)

        def update(done: int) -> None:
            events = done * per_byte
            elapsed = max(1e-9, time.perf_counter() - started)
            progress.update(task, completed=done, events=events, rate=events / elapsed)

        return update

    def generation(self, description: str, target: int) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        progress = self.progress
        task = progress.add_task(description, total=None, events=0, rate=0)
        started = time.perf_counter()

        def update(events: int, done: int) -> None:
            elapsed = max(1e-9, time.perf_counter() - started)
            # the bar is in bytes; its total is estimated from the bytes per event so far
            progress.update(task, completed=done, total=int(done * target / max(1, events)), events=events, rate=events / elapsed)

        return update

    def done(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, highlight=False, markup=False)
        else:
            print(message, file=sys.stderr, flush=True)


# --- the benchmark ------------------------------------------------------------------------------

@dataclass
class Row:
    stage: str
    size: str
    events: int
    lines: int
    bytes: int
    seconds: float
    peak_rss_mb: float | None
    correct: bool | None = None  # findings equal the injected counts (reference, dmalint)
    findings: dict[str, int] | None = None
    x_reference: float | None = None
    x_floor: float | None = None
    note: str | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    def as_json(self) -> dict:
        data = asdict(self)
        data.update(events_per_s=round(self.events_per_s), lines_per_s=round(self.lines_per_s), mb_per_s=round(self.mb_per_s, 2))
        return data


@dataclass
class Report:
    date: str
    machine: dict
    kind: str
    seed: int
    command: list[str]
    rows: list[Row] = field(default_factory=list)
    generation: list[dict] = field(default_factory=list)
    startup_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    targets: dict = field(default_factory=dict)
    jobs: dict | None = None
    ok: bool = True

    def as_json(self) -> dict:
        data = asdict(self)
        data["rows"] = [row.as_json() for row in self.rows]
        return data


def dmalint_command() -> list[str]:
    """The dmalint of this interpreter's environment (the venv's script), else `python -m checker`."""
    script = Path(sys.executable).with_name("dmalint")
    if script.exists():
        return [str(script)]
    found = shutil.which("dmalint")
    return [found] if found else [sys.executable, "-m", "checker"]


def trace_for(directory: Path, size: int, seed: int, kind: str, progress: Progress, report: Report) -> Manifest:
    """The trace of `size` events in `directory`, reused when its manifest says it is this one."""
    path = directory / f"{kind}-seed{seed}-{size}.trace"
    if path.exists() and expected_path(path).exists():
        data = json.loads(expected_path(path).read_text())
        if data.get("generator") == VERSION and path.stat().st_size == data.get("bytes"):
            return Manifest(**data)
    start = time.perf_counter()
    manifest = generate(path, size, seed=seed, kind=kind, progress=progress.generation(f"generate {label(size)}", size))
    seconds = time.perf_counter() - start
    report.generation.append({"size": label(size), "events": manifest.events, "bytes": manifest.bytes, "seconds": round(seconds, 2)})
    return manifest


def label(size: int) -> str:
    for name, value in SIZES.items():
        if value == size:
            return name
    return f"{size:,}"


def measure(manifest: Manifest, size: str, progress: Progress, report: Report, with_reference: bool = True) -> list[Row]:
    path = manifest.path
    rows = []
    for stage in STAGES:
        if stage == "reference" and not with_reference:
            continue
        update = progress.task(f"{stage} {size}", manifest.bytes, manifest.events)
        if stage == "dmalint":
            child = run_child([*dmalint_command(), "check", "--format", "json", path], path, update)
            row = Row(stage, size, manifest.events, manifest.lines, manifest.bytes, child.seconds, child.peak_rss_mb)
            try:
                result = json.loads(child.stdout)
                found = dict(sorted(Counter(f["code"] for f in result["findings"]).items()))
                row.findings = found
                row.correct = found == manifest.findings and result["summary"]["events"] == manifest.events
                if result["summary"]["events"] != manifest.events:
                    row.note = f"dmalint counted {result['summary']['events']:,} events, the trace has {manifest.events:,}"
            except (ValueError, KeyError) as error:
                row.correct = False
                row.note = f"no JSON report (exit status {child.status}): {error}; {child.stderr[-500:].decode(errors='replace')}"
        else:
            child = run_child([sys.executable, "-m", "bench.run", "--worker", stage, path], path, update)
            if child.status != 0:
                raise SystemExit(f"the {stage} stage failed on {path}:\n{child.stderr.decode(errors='replace')}")
            data = json.loads(child.stdout)
            row = Row(stage, size, manifest.events, manifest.lines, manifest.bytes, data["seconds"], child.peak_rss_mb,
                      note=data.get("note"))
            if stage == "parse":
                row.correct = data["events"] == manifest.events
                if not row.correct:
                    row.note = f"the reader yielded {data['events']:,} events, the trace has {manifest.events:,}"
            if stage == "reference":
                row.findings = data["findings"]
                row.correct = data["findings"] == manifest.findings and data["events"] == manifest.events
                if data.get("note") and data["note"] not in report.notes:
                    report.notes.append(data["note"])
        if update is not None:
            update(manifest.bytes)
        if row.correct is False:
            report.ok = False
            progress.log(f"WRONG: {stage} at {size}: findings {row.findings}, injected {manifest.findings}"
                         + (f" ({row.note})" if row.note else ""))
        rows.append(row)
    by_stage = {row.stage: row for row in rows}
    reference = by_stage.get("reference") or next((row for row in reversed(report.rows) if row.stage == "reference"), None)
    if "reference" not in by_stage and reference is not None:
        report.notes.append(f"{size}: the reference was not run (--reference-up-to); x ref is against its rate at {reference.size}")
    for row in rows:
        row.x_reference = row.events_per_s / reference.events_per_s if reference is not None else None
        row.x_floor = row.events_per_s / by_stage["floor"].events_per_s
    return rows


def startup(directory: Path) -> float:
    """dmalint's start-up: the wall time of checking a trace of a few events."""
    path = directory / "startup.trace"
    path.write_text("@dmatrace 1\ncpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x10, "
                    "Tag=0x41424344) -> 0xffffb00000001000\ncpu=0 irql=PASSIVE call ExFreePool(P=0xffffb00000001000)\n")
    return min(run_child([*dmalint_command(), "check", "--format", "json", str(path)]).seconds for _ in range(3))


def targets(report: Report, sizes: list[int]) -> dict:
    largest = label(max(sizes))
    at = {(row.stage, row.size): row for row in report.rows}
    out: dict = {}
    e2e = at.get(("dmalint", largest))
    if e2e:
        out["end_to_end_events_per_s"] = {"value": round(e2e.events_per_s), "target": TARGETS["end_to_end_events_per_s"],
                                          "aim": TARGETS["end_to_end_aim_events_per_s"],
                                          "fraction_of_target": round(e2e.events_per_s / TARGETS["end_to_end_events_per_s"], 4),
                                          "size": largest}
    compared = [row.size for row in report.rows if row.stage == "reference"]
    paired = at.get(("dmalint", compared[-1])) if compared else None
    if paired is not None:  # at the largest size both ran
        out["x_reference"] = {"value": round(paired.x_reference or 0, 3), "target": TARGETS["x_reference"], "size": paired.size}
    parse = at.get(("parse", largest))
    if parse:
        out["parse_lines_per_s"] = {"value": round(parse.lines_per_s), "target": TARGETS["parse_lines_per_s"],
                                    "x_floor": round(parse.lines_per_s / at[("floor", largest)].lines_per_s, 4),
                                    "fraction_of_target": round(parse.lines_per_s / TARGETS["parse_lines_per_s"], 4),
                                    "size": largest}
    dmalint = [at[("dmalint", label(size))] for size in sorted(sizes) if ("dmalint", label(size)) in at]
    if len(dmalint) >= 2:
        first, last = dmalint[0], dmalint[-1]
        per_event = {row.size: round(1e6 * row.seconds / row.events, 2) for row in dmalint}
        out["peak_rss_mb"] = {"by_size": {row.size: round(row.peak_rss_mb or 0, 1) for row in dmalint},
                              "growth": round((last.peak_rss_mb or 0) / max(1e-9, first.peak_rss_mb or 0), 3),
                              "target_at_10M_mb": TARGETS["peak_rss_mb_at_10M"]}
        out["microseconds_per_event"] = {"by_size": per_event,
                                         "change": round(per_event[last.size] / per_event[first.size] - 1, 3),
                                         "target_within": TARGETS["linearity"],
                                         "note": "dmalint end to end, start-up included: small sizes pay the start-up"}
        if report.startup_seconds is not None:
            warm = {row.size: round(1e6 * max(0.0, row.seconds - report.startup_seconds) / row.events, 2) for row in dmalint}
            out["microseconds_per_event_after_startup"] = {
                "by_size": warm, "change": round(warm[last.size] / max(1e-9, warm[first.size]) - 1, 3),
                "note": "dmalint's time less the start-up measured on a 2-event trace (itself noisy)"}
    return out


def print_table(report: Report) -> None:
    header = (f"{'stage':<10} {'size':>5} {'events':>11} {'seconds':>9} {'events/s':>11} {'lines/s':>11} {'MB/s':>8} "
              f"{'peak RSS':>9} {'x ref':>7} {'x floor':>8}  check")
    print(header)
    print("-" * len(header))
    for row in report.rows:
        rss = f"{row.peak_rss_mb:7.0f}MB" if row.peak_rss_mb is not None else "        -"
        check = {None: "", True: "ok", False: "WRONG"}[row.correct]
        print(f"{row.stage:<10} {row.size:>5} {row.events:>11,} {row.seconds:>9.2f} {row.events_per_s:>11,.0f} "
              f"{row.lines_per_s:>11,.0f} {row.mb_per_s:>8.2f} {rss:>9} {'n/a' if row.x_reference is None else format(row.x_reference, '.3f'):>7} {row.x_floor:>8.4f}  {check}")


def print_targets(report: Report) -> None:
    t = report.targets
    print()
    if "end_to_end_events_per_s" in t:
        e = t["end_to_end_events_per_s"]
        print(f"end to end at {e['size']}: {e['value']:,} events/s; target {e['target']:,} (aim {e['aim']:,}): "
              f"{e['fraction_of_target']:.1%} of it")
        r = t.get("x_reference")
        if r is None:  # --reference-up-to below every size: no reference ran
            print("ratio to the reference: not measured (the reference pipeline ran at no size of this run)")
        else:
            print(f"ratio to the reference at {r['size']}: {r['value']:.2f}x; target {r['target']:.0f}x")
    if "parse_lines_per_s" in t:
        p = t["parse_lines_per_s"]
        print(f"parsing at {p['size']}: {p['value']:,} lines/s ({p['x_floor']:.4f} of the floor); target {p['target']:,}: "
              f"{p['fraction_of_target']:.1%} of it")
    if "peak_rss_mb" in t:
        m = t["peak_rss_mb"]
        sizes = ", ".join(f"{size} {mb:.0f} MB" for size, mb in m["by_size"].items())
        print(f"peak RSS of dmalint: {sizes} (x{m['growth']:.2f} from the smallest to the largest); target flat, "
              f"under {m['target_at_10M_mb']} MB at 10M")
    if "microseconds_per_event" in t:
        u = t["microseconds_per_event"]
        sizes = ", ".join(f"{size} {us:.1f}" for size, us in u["by_size"].items())
        print(f"microseconds per event (dmalint): {sizes} ({u['change']:+.1%} from the smallest to the largest); "
              f"target within {u['target_within']:.0%}")
    if "microseconds_per_event_after_startup" in t:
        u = t["microseconds_per_event_after_startup"]
        sizes = ", ".join(f"{size} {us:.1f}" for size, us in u["by_size"].items())
        print(f"  less the start-up: {sizes} ({u['change']:+.1%})")
    if report.startup_seconds is not None:
        print(f"dmalint start-up (a 2-event trace): {report.startup_seconds:.2f} s, included in its end-to-end times")


def run_jobs(args: argparse.Namespace, directory: Path, progress: Progress, report: Report) -> None:
    help_text = subprocess.run([*dmalint_command(), "check", "--help"], capture_output=True, text=True).stdout
    if "--jobs" not in help_text:
        message = "skipped --jobs: this dmalint has no `check --jobs` option yet"
        progress.log(message)
        report.jobs = {"skipped": message}
        return
    folder = directory / f"jobs-{args.kind}-seed{args.seed}-{args.jobs_traces}x{args.jobs_events}"
    folder.mkdir(parents=True, exist_ok=True)
    manifests = []
    for index in range(args.jobs_traces):
        path = folder / f"trace-{index:03d}.trace"
        if path.exists() and expected_path(path).exists():
            data = json.loads(expected_path(path).read_text())
            if data.get("generator") == VERSION and path.stat().st_size == data.get("bytes"):
                manifests.append(Manifest(**data))
                continue
        manifests.append(generate(path, args.jobs_events, seed=args.seed * 1000 + index, kind=args.kind))
    total_events = sum(m.events for m in manifests)
    total_bytes = sum(m.bytes for m in manifests)
    runs = {}
    load_before = [round(x, 2) for x in os.getloadavg()]
    for jobs in (1, 2):
        progress.log(f"dmalint check --jobs {jobs} on {len(manifests)} traces ({total_events:,} events)...")
        child = run_child([*dmalint_command(), "check", "--format", "json", "--jobs", str(jobs), str(folder)])
        runs[jobs] = child
    expected = {m.path: m.findings for m in manifests}
    problems = []
    reports = {}
    for jobs, child in runs.items():
        try:
            reports[jobs] = json.loads(child.stdout)
        except ValueError:
            problems.append(f"--jobs {jobs} wrote no JSON report (exit status {child.status})")
    if len(reports) == 2:
        if runs[1].stdout != runs[2].stdout:
            problems.append("the reports of --jobs 1 and --jobs 2 differ")
        found: dict[str, Counter] = {}
        for finding in reports[1]["findings"]:
            found.setdefault(str(Path(finding["path"]).resolve()), Counter())[finding["code"]] += 1
        for path, counts in expected.items():
            if dict(sorted(found.get(str(Path(path).resolve()), Counter()).items())) != counts:
                problems.append(f"{path}: findings differ from the injected counts")
                break
    speedup = runs[1].seconds / runs[2].seconds
    report.jobs = {
        "traces": len(manifests), "events": total_events, "bytes": total_bytes,
        "seconds_jobs_1": round(runs[1].seconds, 2), "seconds_jobs_2": round(runs[2].seconds, 2),
        "cpu_seconds_jobs_1": round(runs[1].cpu_seconds, 2), "cpu_seconds_jobs_2": round(runs[2].cpu_seconds, 2),
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb_jobs_1": round(runs[1].peak_rss_mb, 1), "peak_rss_mb_jobs_2": round(runs[2].peak_rss_mb, 1),
        "speedup": round(speedup, 3), "target": TARGETS["jobs_speedup_2"], "cpus": os.cpu_count(),
        "identical_output": runs[1].stdout == runs[2].stdout, "correct": not problems, "problems": problems,
    }
    if problems:
        report.ok = False
    print(f"--jobs on {len(manifests)} traces ({total_events:,} events, {total_bytes / 1e6:.0f} MB), {os.cpu_count()} CPUs: "
          f"--jobs 1 {runs[1].seconds:.2f} s ({runs[1].cpu_seconds:.0f} s CPU), --jobs 2 {runs[2].seconds:.2f} s "
          f"({runs[2].cpu_seconds:.0f} s CPU): {speedup:.2f}x (target "
          f"{TARGETS['jobs_speedup_2']}x); reports identical: {runs[1].stdout == runs[2].stdout}; "
          + ("findings right" if not problems else "PROBLEMS: " + "; ".join(problems)))


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item in SIZES:
            sizes.append(SIZES[item])
        else:
            scale = {"k": 1_000, "M": 1_000_000}.get(item[-1], 1)
            sizes.append(int(float(item[:-1] if scale > 1 else item) * scale))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated event counts (default 10k,100k,1M; 10k,100k,1M,10M with --full)")
    parser.add_argument("--full", action="store_true", help="add 10M events")
    parser.add_argument("--reference-up-to", metavar="SIZE",
                        help="run the reference pipeline only up to this size (at 10M it takes most of an hour); larger "
                             "sizes are compared with its rate at the largest size it ran")
    parser.add_argument("--kind", default="mixed", choices=("storport", "wdm", "mixed"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="write the table and targets as JSON")
    parser.add_argument("--keep", metavar="DIR", help="generate traces into DIR and keep them (reused when present)")
    parser.add_argument("--jobs", action="store_true", help="the --jobs experiment instead of the sizes")
    parser.add_argument("--jobs-traces", type=int, default=50)
    parser.add_argument("--jobs-events", type=int, default=10_000)
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0

    sizes = parse_sizes(args.sizes) if args.sizes else [10_000, 100_000, 1_000_000]
    if args.full and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    report = Report(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        machine={"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                 "processor": platform.processor() or platform.machine(),
                 "load_average": [round(x, 2) for x in os.getloadavg()]},
        kind=args.kind, seed=args.seed, command=["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
    )
    temporary = None
    if args.keep:
        directory = Path(args.keep)
        directory.mkdir(parents=True, exist_ok=True)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="dmalint-bench-")
        directory = Path(temporary.name)
    progress = Progress(sys.stderr.isatty())
    try:
        if args.jobs:
            run_jobs(args, directory, progress, report)
        else:
            report.startup_seconds = round(startup(directory), 3)
            reference_limit = parse_sizes(args.reference_up_to)[0] if args.reference_up_to else None
            for size in sorted(sizes):
                manifest = trace_for(directory, size, args.seed, args.kind, progress, report)
                with_reference = reference_limit is None or size <= reference_limit
                report.rows += measure(manifest, label(size), progress, report, with_reference)
            report.targets = targets(report, sizes)
    finally:
        progress.done()
        if temporary is not None:
            temporary.cleanup()
    report.machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if report.rows:
        print(f"dmalint benchmark, {report.date}, {report.machine['cpus']} CPUs, load {report.machine['load_average']}; "
              f"{args.kind} traces, seed {args.seed} (shared, noisy machine: compare ratios)")
        print_table(report)
        print_targets(report)
        for note in report.notes:
            print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if not report.ok:
        print("FAILED: some answer differs from the injected violations", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
