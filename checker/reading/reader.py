"""Reading a trace line by line: bytes in, records (and per-line problems) out.

Nothing here holds more than a block of lines (64 KiB, or one longer line): a trace of any
length streams through in constant memory. A line that does not parse is yielded as a
`TraceSyntaxError` value and reading goes on; a problem with the whole file (not UTF-8,
unsupported version, no events) is raised as an `InputError`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Union

from model.events import Comment, Directive, Event, UnknownDirective, VersionDirective
from model.location import SourceLocation

from ..errors import EmptyTraceError, NotUtf8Error, TraceNotFoundError, TraceSyntaxError, UnsupportedVersionError
from .etl import capture_lines, stream_is_etl
from .fastpath import FALLBACK as _FALLBACK
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
    """Every record of the trace in order, with syntax errors and warnings in line order.

    An ETL capture (recognised by its first bytes, whatever its name) is read as the text
    `checker.reading.etl.capture_lines` makes of it, so its line numbers are that text's."""
    stream = source.open()
    try:
        if source.path is not None and stream_is_etl(stream):
            stream.close()
            yield from _read_lines(_capture_blocks(source.path, source.display), source.display)
            return
        yield from read_stream(stream, source.display)
    finally:
        if source.path is not None:
            stream.close()


def read_stream(stream: BinaryIO, path: str) -> Iterator[Item]:
    """Every record of a binary stream of dmatrace text; `path` names it in locations."""
    return _read_lines(_text_blocks(stream, path), path)


def _read_lines(blocks: Iterator[list[str]], path: str) -> Iterator[Item]:
    """Every record of the trace whose decoded lines come in `blocks`.

    Per line there is only the parser's fast path (one call) and what a record needs said
    about it."""
    parser = LineParser(path)
    fast = parser.fast_parse or _not_sure  # the fast path alone: the record, or FALLBACK
    fallback = _FALLBACK
    transformer = parser.transformer  # its list of warnings is empty for most lines
    warned: set[str] = set()
    events = False
    errors = 0
    number = 0
    for lines in blocks:
        for text in lines:
            number += 1
            record = fast(text, number)  # None for a blank line
            if record is fallback:
                if not text or text.isspace():
                    continue
                try:
                    record = parser.parse_with_lark(text, number)
                except TraceSyntaxError as error:
                    errors += 1
                    yield error
                    continue
                if isinstance(record, Directive):  # the fast path reads no directive
                    yield from _directive(record, warned)
            if transformer.warnings:
                yield from _diagnostics(parser.take_warnings(), warned, path, number)
            if record is None:
                continue
            if not events:
                events = isinstance(record, Event)
            yield record
    if not events and not errors:
        raise EmptyTraceError("the trace has no events: nothing was checked", SourceLocation(path, 0))


def _text_blocks(stream: BinaryIO, path: str) -> Iterator[list[str]]:
    """The stream's lines, decoded, a block at a time; bytes that are not UTF-8 end it with a
    `NotUtf8Error` after the whole lines before them."""
    number = 0
    for offset, block in _blocks(stream, path):
        decoded, problem = _decode(block)
        lines = _lines(decoded)
        number += len(lines)
        yield lines
        if problem is not None:
            raise _not_utf8(block, problem, offset, number + 1, path)


_CAPTURE_BLOCK = 4096  # lines of a capture's text handed on at a time


def _capture_blocks(path: Path, display: str) -> Iterator[list[str]]:
    """The text of an ETL capture, a block of lines at a time."""
    lines = capture_lines(path, display=display)
    while block := list(islice(lines, _CAPTURE_BLOCK)):
        yield block


_BLOCK_SIZE = 1 << 16  # bytes asked for at a time


def _not_sure(text: str, line: int) -> object:
    """The fast path's answer when it is off: Lark reads every line."""
    return _FALLBACK


def _blocks(stream: BinaryIO, path: str) -> Iterator[tuple[int, bytes]]:
    """(offset in the stream, block) for each block of whole lines; the first block without
    its UTF-8 byte order mark. UTF-16 text is an error."""
    offset = 0
    for block in _whole_lines(stream):
        start = offset
        offset += len(block)
        if start == 0:
            if block.startswith(_UTF16_BOMS):
                raise NotUtf8Error(
                    "the trace is UTF-16 text; dmalint reads UTF-8 (convert it, e.g. with "
                    "PowerShell: Get-Content IN -Encoding Unicode | Set-Content OUT -Encoding utf8)",
                    SourceLocation(path, 1, 1, 2),
                    0,
                )
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
                start = len(_BOM)
        yield start, block


def _whole_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes in blocks of whole lines, each ending with LF but maybe the last.

    `read1`, where the stream has it, returns what one read of the file or pipe gives, so
    records still come out while a capture is being written."""
    read = getattr(stream, "read1", stream.read)
    pieces: list[bytes] = []  # the start of a line that is not whole yet
    while True:
        chunk = read(_BLOCK_SIZE)
        if not chunk:
            break
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            pieces.append(chunk)
            continue
        yield b"".join([*pieces, chunk[:cut]]) if pieces else chunk[:cut]
        pieces = [chunk[cut:]] if cut < len(chunk) else []
    if pieces:
        yield b"".join(pieces)


def _decode(block: bytes) -> tuple[str, UnicodeDecodeError | None]:
    """The block as text; if it is not all UTF-8, the text of the lines before the first bad
    one, and the problem (UTF-8 never has an LF inside a character, so lines decode alone
    as they decode together)."""
    try:
        return block.decode("utf-8"), None
    except UnicodeDecodeError as problem:
        return block[: block.rfind(b"\n", 0, problem.start) + 1].decode("utf-8"), problem


def _lines(text: str) -> list[str]:
    """Decoded whole lines, without their LF or CRLF (a CR alone stays: Lark reports it)."""
    if "\r" in text:  # a one-character search is the quick one
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()  # what follows the last LF
    return lines


def _not_utf8(block: bytes, problem: UnicodeDecodeError, offset: int, line: int, path: str) -> NotUtf8Error:
    """The error for the first byte of `block` that is not UTF-8; `offset` is the block's in
    the stream (BOM included) and `line` the bad byte's line number."""
    start = block.rfind(b"\n", 0, problem.start) + 1
    column = len(block[start : problem.start].decode("utf-8", "replace")) + 1
    byte_offset = offset + problem.start
    return NotUtf8Error(
        f"not UTF-8 text: byte 0x{block[problem.start]:02x} at byte offset {byte_offset} cannot be decoded "
        "(save the trace as UTF-8)",
        SourceLocation(path, line, column, column + 1),
        byte_offset,
    )


def _directive(record: Directive, warned: set[str]) -> Iterator[Diagnostic]:
    """What a directive needs said: an unknown one once; a version this dmalint does not read
    is an error."""
    if isinstance(record, VersionDirective):
        if record.version not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            raise UnsupportedVersionError(
                f"@dmatrace {record.version} is not a version this dmalint reads (it reads {supported})",
                record.location,
            )
    elif isinstance(record, UnknownDirective) and record.directive not in warned:
        warned.add(record.directive)
        yield Diagnostic(
            record.location,
            f"unknown directive @{record.directive}: kept as metadata, not understood "
            "(version 1 knows @dmatrace, @target, @driver, @memory, @adapter)",
        )


def _diagnostics(warnings: list[tuple[int, str]], warned: set[str], path: str, line: int) -> Iterator[Diagnostic]:
    """The warnings of one line not given before."""
    for column, message in warnings:
        if message not in warned:
            warned.add(message)
            yield Diagnostic(SourceLocation(path, line, column, column + 1), message)
