"""One-line helpers for dmalint's tests: parse a line, check a trace, assert findings."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

from checker.engine.run import RunResult, TraceCheck, check_sources
from checker.errors import TraceSyntaxError
from checker.findings import Finding
from checker.language.rulebook import builtin_rulebook
from checker.reading.parser import LineParser
from checker.reading.reader import TraceSource, read_stream

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TRACES = ROOT / "traces"

_parser = LineParser("test.trace")


def parse_line(text: str, line: int = 1):
    """The record on one line (raises TraceSyntaxError)."""
    return _parser.parse(text, line)


def syntax_error(text: str) -> TraceSyntaxError:
    """The error a line gives; fails the test if it parses."""
    try:
        record = _parser.parse(text, 1)
    except TraceSyntaxError as error:
        return error
    raise AssertionError(f"expected a syntax error, got {record!r}")


def trace(text: str) -> bytes:
    """A trace's bytes from an indented triple-quoted string."""
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


def read_all(data: bytes, path: str = "test.trace") -> list:
    """Every item the reader yields for these bytes."""
    return list(read_stream(io.BytesIO(data), path))


def check_bytes(data: bytes, path: str = "test.trace") -> list[Finding]:
    """The findings of one trace given as bytes, through the same per-trace path as the CLI
    (engine, inline suppressions); suppressed findings are not among them."""
    check = TraceCheck(path, builtin_rulebook())
    for item in read_stream(io.BytesIO(data), path):
        check.feed(item)
    return sorted(check.finish().findings, key=lambda f: f.sort_key)


def assert_findings(text: str, *codes: str) -> list[Finding]:
    """The trace gives exactly these finding codes (in line order); none means clean."""
    findings = check_bytes(trace(text))
    assert [f.code for f in findings] == list(codes), [f"{f.location}: {f.code} {f.message}" for f in findings]
    return findings


def check_files(*paths: Path) -> RunResult:
    return check_sources([TraceSource(str(p), p) for p in paths], builtin_rulebook())


def format_examples(path: Path, text: str | None = None) -> list[str]:
    """The example lines of a format page (or of `text`, a part of it): indented code lines,
    without the schematic ones."""
    lines = []
    for line in (path.read_text(encoding="utf-8") if text is None else text).splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            code = line[4:]
            if re.match(r"\[(WPP )?prefix\]|@directive ", code):
                continue  # the Shape section's schematic lines, not examples
            lines.append(code)
    return lines
