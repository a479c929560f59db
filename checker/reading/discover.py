"""Turning the command line's paths into the traces to check."""

from __future__ import annotations

from pathlib import Path

from model.location import SourceLocation

from ..errors import InputError, NoTracesError, TraceNotFoundError
from .reader import TraceSource

__all__ = ["TRACE_SUFFIXES", "discover"]

TRACE_SUFFIXES = (".trace", ".etl")  # dmatrace text, and the capture kit's ETW logs


def discover(paths: list[str]) -> list[TraceSource | InputError]:
    """Each path's traces in command-line order; a directory gives its `*.trace` and `*.etl`
    files, recursively and sorted. A path that gives nothing is an `InputError` in its place."""
    found: list[TraceSource | InputError] = []
    seen: set[Path] = set()
    for text in paths:
        if text == "-":
            found.append(TraceSource.stdin())
            continue
        path = Path(text)
        where = SourceLocation(text, 0)
        if path.is_dir():
            traces = sorted(p for p in path.rglob("*") if p.suffix in TRACE_SUFFIXES and p.is_file())
            if not traces:
                found.append(NoTracesError("no *.trace or *.etl files in this directory", where))
            for trace in traces:
                if trace.resolve() not in seen:
                    seen.add(trace.resolve())
                    found.append(TraceSource(str(trace), trace))
        elif path.exists():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(TraceSource(text, path))
        else:
            found.append(TraceNotFoundError("no such file or directory", where))
    return found
