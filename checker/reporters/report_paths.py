"""How reports name a trace: relative to the report's root where the trace is under it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shown_path", "trace_file"]


def shown_path(path: str, root: str) -> str:
    """`path` relative to `root` when it lies under it (with `/` separators), else as given.
    Names that are not files (`<stdin>`) are kept as they are."""
    if path.startswith("<") or not root:
        return path
    candidate = Path(path)
    absolute = candidate if candidate.is_absolute() else Path(os.path.abspath(Path(root) / candidate))
    try:
        relative = absolute.relative_to(os.path.abspath(root))
    except ValueError:
        return path
    return relative.as_posix() if str(relative) != "." else path


def trace_file(path: str, root: str) -> Path | None:
    """The file a finding's path names, if it is one that exists (not standard input)."""
    if path.startswith("<"):
        return None
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(root or ".") / candidate
    return candidate if candidate.is_file() else None
