"""Reading a trace line by line: bytes in, records (and per-line problems) out.

Nothing here holds more than one line: a trace of any length streams through in constant
memory. A line that does not parse is yielded as a `TraceSyntaxError` value and reading
goes on; a problem with the whole file (not UTF-8, unsupported version, no events) is
raised as an `InputError`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

from model.events import Comment, Directive, Event, UnknownDirective, VersionDirective
from model.location import SourceLocation

from .errors import EmptyTraceError, NotUtf8Error, TraceNotFoundError, TraceSyntaxError, UnsupportedVersionError
from .parser import LineParser

__all__ = ["Diagnostic", "Item", "SUPPORTED_VERSIONS", "TraceSource", "read_stream", "read_trace"]

SUPPORTED_VERSIONS = (1,)
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True, slots=True)
class TraceSource:
    """A trace to read: a file, or standard input when `path` is None."""

    display: str
    path: Path | None = None

    @classmethod
    def stdin(cls) -> TraceSource:
        return cls("<stdin>", None)

    def open(self) -> BinaryIO:
        if self.path is None:
            return sys.stdin.buffer
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise TraceNotFoundError("no such file", SourceLocation(self.display, 0)) from None
        except IsADirectoryError:
            raise TraceNotFoundError("is a directory, not a trace", SourceLocation(self.display, 0)) from None
        except OSError as error:
            raise TraceNotFoundError(f"cannot read: {error.strerror}", SourceLocation(self.display, 0)) from None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """Something worth saying about the trace that is not a finding: a warning."""

    location: SourceLocation
    message: str
    severity: str = "warning"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"


Item = Union[Event, Directive, Comment, TraceSyntaxError, Diagnostic]


def read_trace(source: TraceSource) -> Iterator[Item]:
    """Every record of the trace in order, with syntax errors and warnings in line order."""
    stream = source.open()
    try:
        yield from read_stream(stream, source.display)
    finally:
        if source.path is not None:
            stream.close()


def read_stream(stream: BinaryIO, path: str) -> Iterator[Item]:
    """Every record of a binary stream of dmatrace text; `path` names it in locations."""
    parser = LineParser(path)
    warned: set[str] = set()
    events = 0
    errors = 0
    offset = 0
    for number, raw in enumerate(stream, start=1):
        line_offset = offset
        offset += len(raw)
        if number == 1:
            if raw.startswith(_UTF16_BOMS):
                raise NotUtf8Error(
                    "the trace is UTF-16 text; dmalint reads UTF-8 (convert it, e.g. with "
                    "PowerShell: Get-Content IN -Encoding Unicode | Set-Content OUT -Encoding utf8)",
                    SourceLocation(path, 1, 1, 2),
                    0,
                )
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
                line_offset += len(_BOM)
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            column = len(raw[: error.start].decode("utf-8", "replace")) + 1
            bad = raw[error.start]
            byte_offset = line_offset + error.start
            raise NotUtf8Error(
                f"not UTF-8 text: byte 0x{bad:02x} at byte offset {byte_offset} cannot be decoded "
                "(save the trace as UTF-8)",
                SourceLocation(path, number, column, column + 1),
                byte_offset,
            ) from None
        if not text or text.isspace():
            continue
        try:
            record = parser.parse(text, number)
        except TraceSyntaxError as error:
            errors += 1
            yield error
            continue
        for column, message in parser.take_warnings():
            if message not in warned:
                warned.add(message)
                yield Diagnostic(SourceLocation(path, number, column, column + 1), message)
        if record is None:
            continue
        if isinstance(record, Event):
            events += 1
        elif isinstance(record, VersionDirective):
            if record.version not in SUPPORTED_VERSIONS:
                supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
                raise UnsupportedVersionError(
                    f"@dmatrace {record.version} is not a version this dmalint reads (it reads {supported})",
                    record.location,
                )
        elif isinstance(record, UnknownDirective):
            if record.directive not in warned:
                warned.add(record.directive)
                yield Diagnostic(
                    record.location,
                    f"unknown directive @{record.directive}: kept as metadata, not understood "
                    "(version 1 knows @dmatrace, @target, @driver, @memory, @adapter)",
                )
        yield record
    if events == 0 and errors == 0:
        raise EmptyTraceError("the trace has no events: nothing was checked", SourceLocation(path, 0))
