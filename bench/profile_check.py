"""Where dmalint's time goes on one trace: reader, model and rules under cProfile.

    python bench/profile_check.py TRACE [--top 15] [--sort tottime|cumtime]

Runs the trace through the same per-trace path as `dmalint check` (reader, the model's
replay, the rules, inline suppressions; no reporter) with the rules loaded before the clock.
First the stages' CPU seconds without the profiler: reading and parsing alone, the model
alone on the parsed records, the rules and engine as the rest of a check of those records;
then the top entries of a cProfile run of the whole. bench/README.md keeps the tables of its runs
before and after the speed work. Generate a trace with
`python bench/generate.py --events 100000 --seed 1 --kind mixed --out t.trace`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from checker.engine.run import TraceCheck  # noqa: E402
from checker.errors import TraceSyntaxError  # noqa: E402
from checker.language.rulebook import builtin_rulebook  # noqa: E402
from checker.reading.reader import Diagnostic, read_stream  # noqa: E402
from model.machine import Machine  # noqa: E402


def _records(path: Path) -> list:
    with path.open("rb") as stream:
        return list(read_stream(stream, str(path)))


def _parse(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in read_stream(stream, str(path)))


def _model(records: list) -> None:
    machine = Machine()
    for record in records:
        if not isinstance(record, (TraceSyntaxError, Diagnostic)):
            machine.apply(record)


def _check(records: list, path: Path) -> int:
    check = TraceCheck(str(path), builtin_rulebook())
    for record in records:
        check.feed(record)
    return check.finish().total


def _whole(path: Path) -> int:
    check = TraceCheck(str(path), builtin_rulebook())
    with path.open("rb") as stream:
        for item in read_stream(stream, str(path)):
            check.feed(item)
    return check.finish().total


def _seconds(function, *arguments) -> tuple[float, object]:
    start = time.process_time()
    value = function(*arguments)
    return time.process_time() - start, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--sort", choices=("tottime", "cumtime"), default="tottime")
    args = parser.parse_args(argv)
    builtin_rulebook()  # loaded before any clock
    parse, lines = _seconds(_parse, args.trace)
    records = _records(args.trace)
    events = sum(1 for record in records if hasattr(record, "verb"))
    model, _ = _seconds(_model, records)
    checked, findings = _seconds(_check, records, args.trace)
    del records
    print(f"{args.trace}: {lines:,} items, {events:,} events, {findings:,} findings (CPU seconds, no profiler)")
    for name, seconds in (("read and parse", parse), ("model", model), ("rules and engine", checked - model),
                          ("whole", parse + checked)):
        print(f"  {name:<18}{seconds:8.2f} s {seconds / max(events, 1) * 1e6:8.1f} µs/event {events / seconds if seconds else 0:>10,.0f} events/s")
    profiler = cProfile.Profile()
    profiler.runcall(_whole, args.trace)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(args.sort).print_stats(args.top)
    text = out.getvalue()
    print(text[text.index("   ncalls"):].rstrip().replace(str(ROOT) + "/", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
