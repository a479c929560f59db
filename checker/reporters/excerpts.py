"""Trace lines around a finding, read back from the trace file when the report is written.

A trace can be millions of lines long: `read_lines` streams the file once and keeps only the
lines asked for, so memory follows the number of lines shown, not the trace's length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DmalintError
from ..reading.etl import capture_lines, stream_is_etl

__all__ = ["CONTEXT_LINES", "ExcerptLine", "excerpt", "read_lines"]

CONTEXT_LINES = 2
_WIDTH = 400  # characters of a line shown at most (the rest is in the trace)
_FAR = 100  # a marked column further right than this shifts the excerpt left ...
_LEAD = 40  # ... to show this many characters before it
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ExcerptLine:
    """One trace line as shown: `before`, `marked` (the finding's columns) and `after` are the
    line's text cut in three; `target` is True on the finding's own line."""

    number: int
    before: str
    marked: str
    after: str
    target: bool


def _printable(text: str) -> str:
    """One visible character per character: control characters other than tab as U+FFFD."""
    return "".join("\ufffd" if (c < " " and c != "\t") or c == "\x7f" else c for c in text)


def read_lines(path: Path, wanted: Iterable[int]) -> dict[int, str]:
    """The text of the `wanted` line numbers (1-based) of a file, read in one pass that stops
    after the last one. Undecodable bytes become U+FFFD; a missing file gives {}. An ETL
    capture's lines are those of the text dmalint checked (`checker.reading.etl.capture_lines`)."""
    numbers = set(wanted)
    if not numbers:
        return {}
    last = max(numbers)
    found: dict[int, str] = {}
    try:
        with path.open("rb") as stream:
            if stream_is_etl(stream):
                lines: Iterable[str] = capture_lines(path, display=str(path))
            else:
                lines = (raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace") for raw in stream)
            for number, text in enumerate(lines, start=1):
                if number in numbers:
                    found[number] = text.removeprefix(_BOM) if number == 1 else text
                if number >= last:
                    break
    except (OSError, DmalintError):
        return {}
    return found


def _shown(text: str, start: int, end: int, shift: int) -> tuple[str, str, str]:
    """`text` cut at [start, end) for display: control characters made visible, the first
    `shift` characters replaced by an ellipsis (so a far column is in view, every line of an
    excerpt shifted alike), and cut after `_WIDTH` more characters."""
    text = _printable(text)
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    head = ""
    if shift and len(text) > shift:
        head, text, start, end = "\u2026", text[shift:], max(0, start - shift), max(0, end - shift)
    limit = max(_WIDTH, end)
    tail = "\u2026" if len(text) > limit else ""
    text = text[:limit]
    return head + text[:start], text[start:end], text[end:] + tail


def excerpt(lines: dict[int, str], line: int, column: int = 1, end_column: int = 1,
            context: int = CONTEXT_LINES, target: bool = True) -> tuple[ExcerptLine, ...]:
    """Lines `line - context` to `line + context` that `lines` holds. On the finding's own
    line (flagged as the target unless `target` is False) a span that starts inside the line
    (a bad token) is marked; a span from column 1 is the whole event and left unmarked."""
    start, end = column - 1, end_column - 1
    mark = column > 1 and end > start
    shift = start - _LEAD if mark and start > _FAR else 0
    shown = []
    for number in range(max(1, line - context), line + context + 1):
        text = lines.get(number)
        if text is None:
            continue
        if number == line and mark:
            shown.append(ExcerptLine(number, *_shown(text, start, end, shift), target=target))
        else:
            before, _, after = _shown(text, len(text), len(text), shift)
            shown.append(ExcerptLine(number, before, "", after, target=target and number == line))
    return tuple(shown)
