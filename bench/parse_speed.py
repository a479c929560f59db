"""Parse speed of dmalint's reader on a large trace, against the floor of reading lines.

    python bench/parse_speed.py [--lines 100000] [--trace FILE] [--lark-lines 20000] [--no-fast] [--no-check]

Builds a trace of about N lines by repeating the event lines of the bundled traces (so the
line mix is that of realistic captures), or takes --trace (e.g. one from bench/generate.py),
then times, in one process and one run:
  floor   reading the file line by line and decoding, nothing else;
  reader  dmalint's reader yielding records, with the parser's fast path (checker/reading/fastpath.py);
  lark    the same reader with the fast path off: Lark LALR with the inline Transformer, on
          the first --lark-lines lines (it is slow; lines/s is what compares);
  check   the whole per-file pipeline: reader, model replay and rules (FileCheck).
Prints lines/s for each, the ratio to the floor, the reader's speed-up over Lark alone and the
share of event lines the fast path reads itself, plus peak RSS. --no-fast times the reader and
check with the fast path off. The machines are shared and noisy: compare ratios from the same
run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.engine.filecheck import FileCheck  # noqa: E402
from checker.errors import TraceSyntaxError  # noqa: E402
from checker.language.rulebook import builtin_rulebook  # noqa: E402
from checker.reading import fastpath, parser  # noqa: E402
from checker.reading.reader import Diagnostic, read_stream  # noqa: E402

TARGET = 250_000  # lines/s, parsing alone (issue 7)


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


def head(source: Path, lines: int, path: Path) -> int:
    """The first `lines` lines of `source` as a trace of its own."""
    with source.open("rb") as stream, path.open("wb") as out:
        written = 0
        for raw in itertools.islice(stream, lines):
            out.write(raw)
            written += 1
    return written


def timed(label: str, lines: int, action) -> float:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    rate = lines / seconds
    print(f"{label:8} {seconds:8.2f} s  {rate:12,.0f} lines/s")
    return rate


def fast_share(path: Path) -> tuple[int, int]:
    """(event lines the fast path reads itself, event lines)."""
    line_parser = parser.LineParser(str(path), fast=True)
    handled = events = 0
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            text = line.rstrip("\n")
            if not text.strip() or text.lstrip().startswith(("#", "@")):
                continue
            events += 1
            if line_parser.fast_parse(text, number) is not fastpath.FALLBACK:
                handled += 1
            line_parser.take_warnings()
    return handled, events


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--lines", type=int, default=100_000)
    arguments.add_argument("--trace", type=Path, help="time this trace instead of the bundled mix")
    arguments.add_argument("--lark-lines", type=int, default=20_000, help="lines timed with Lark alone (0: skip)")
    arguments.add_argument("--no-fast", action="store_true", help="reader and check with the fast path off")
    arguments.add_argument("--no-check", action="store_true", help="skip the whole-pipeline timing")
    args = arguments.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.trace is not None:
            path = args.trace
            with path.open("rb") as stream:
                lines = sum(1 for _ in stream)
        else:
            path = Path(tmp) / "big.trace"
            lines = build_trace(args.lines, path)
        size = path.stat().st_size
        print(f"trace: {path.name if args.trace else 'bundled mix'}, {lines:,} lines, {size / 1e6:.1f} MB ({size / lines:.0f} bytes/line)")
        parser.FAST_PATH = not args.no_fast
        print(f"fast path: {'on' if parser.FAST_PATH and fastpath.AVAILABLE else 'off'}")

        def floor() -> None:
            with path.open("rb") as stream:
                for raw in stream:
                    raw.decode("utf-8")

        def reader(trace: Path = path) -> None:
            with trace.open("rb") as stream:
                for _ in read_stream(stream, str(trace)):
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
        lark_rate = None
        if args.lark_lines and not args.no_fast:
            lark_path = Path(tmp) / "lark.trace"
            lark_lines = head(path, args.lark_lines, lark_path)
            parser.FAST_PATH = False
            try:
                lark_rate = timed("lark", lark_lines, lambda: reader(lark_path))
            finally:
                parser.FAST_PATH = True
        check_rate = None if args.no_check else timed("check", lines, check)
        print(f"reader at {reader_rate / floor_rate:.4f} of the floor ({floor_rate / reader_rate:,.1f}x slower)", end="")
        print(f"; {reader_rate / TARGET:.2f} of the {TARGET:,} lines/s target")
        if lark_rate is not None:
            print(f"lark   at {lark_rate / floor_rate:.4f} of the floor ({floor_rate / lark_rate:,.0f}x slower)")
            print(f"reader {reader_rate / lark_rate:.1f}x the speed of Lark alone")
        if check_rate is not None:
            print(f"check  at {check_rate / floor_rate:.4f} of the floor ({floor_rate / check_rate:,.0f}x slower)")
        if not args.no_fast:
            handled, events = fast_share(path)
            print(f"fast path read {handled:,} of {events:,} event lines ({handled / max(events, 1):.2%}), Lark the rest")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
