"""Parse speed of dmalint's reader on a large trace, against the floor of reading lines.

    python bench/parse_speed.py [--lines 100000]

Builds a trace of about N lines by repeating the event lines of the bundled traces (so the
line mix is that of realistic captures), then times, in one process and one run:
  floor   reading the file line by line and decoding, nothing else;
  reader  dmalint's reader (Lark LALR with the inline Transformer) yielding records;
  check   the whole per-file pipeline: reader, model replay and rules (FileCheck).
Prints lines/s for each and the ratio to the floor, plus peak RSS. The machines are shared and
noisy: compare ratios from the same run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.engine import FileCheck  # noqa: E402
from checker.errors import TraceSyntaxError  # noqa: E402
from checker.reader import Diagnostic, read_stream  # noqa: E402
from checker.rulebook import builtin_rulebook  # noqa: E402


def build_trace(lines: int, path: Path) -> int:
    body = []
    for trace in sorted((ROOT / "traces").glob("*.trace")):
        body += [line for line in trace.read_text().splitlines() if line and not line.startswith(("#", "@"))]
    written = 0
    with path.open("w") as out:
        out.write("@dmatrace 1\n@target arch=x64\n")
        while written < lines:
            for line in body:
                out.write(line + "\n")
                written += 1
                if written >= lines:
                    break
    return written


def timed(label: str, lines: int, action) -> float:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    rate = lines / seconds
    print(f"{label:8} {seconds:8.2f} s  {rate:12,.0f} lines/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.trace"
        lines = build_trace(args.lines, path)
        size = path.stat().st_size
        print(f"trace: {lines:,} lines, {size / 1e6:.1f} MB ({size / lines:.0f} bytes/line)")

        def floor() -> None:
            with path.open("rb") as stream:
                for raw in stream:
                    raw.decode("utf-8")

        def reader() -> None:
            with path.open("rb") as stream:
                for _ in read_stream(stream, str(path)):
                    pass

        def check() -> None:
            run = FileCheck(str(path), builtin_rulebook())
            with path.open("rb") as stream:
                for item in read_stream(stream, str(path)):
                    if isinstance(item, TraceSyntaxError):
                        run.unparsed(item)
                    elif not isinstance(item, Diagnostic):
                        run.feed(item)
            run.finish()

        reader()  # warm up: build the parser once, as a real run does at start
        floor_rate = timed("floor", lines, floor)
        reader_rate = timed("reader", lines, reader)
        check_rate = timed("check", lines, check)
        print(f"reader at {reader_rate / floor_rate:.4f} of the floor ({floor_rate / reader_rate:,.0f}x slower)")
        print(f"check  at {check_rate / floor_rate:.4f} of the floor ({floor_rate / check_rate:,.0f}x slower)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
