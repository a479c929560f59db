"""Compiler-style messages for problems found while reading: the line, a caret, what fits."""

from __future__ import annotations

from ..errors import TraceSyntaxError

__all__ = ["caret_excerpt", "format_syntax_error"]

_WIDTH = 160
_CONTEXT = 70


def _printable(text: str) -> str:
    """One visible character per character: tabs as spaces, other control characters as U+FFFD."""
    return "".join(" " if c == "\t" else "\ufffd" if c < " " or c == "\x7f" else c for c in text)


def caret_excerpt(text: str, column: int, indent: str = "    ") -> list[str]:
    """The line (control characters made visible, long lines cut around the column) and a
    caret under the column."""
    shown = _printable(text)
    caret = max(column - 1, 0)
    if len(shown) > _WIDTH:
        start = max(caret - _CONTEXT, 0)
        end = min(caret + _CONTEXT, len(shown))
        prefix = "..." if start > 0 else ""
        suffix = "..." if end < len(shown) else ""
        caret = caret - start + len(prefix)
        shown = prefix + shown[start:end] + suffix
    return [f"{indent}{shown}", f"{indent}{' ' * caret}^"]


def format_syntax_error(error: TraceSyntaxError) -> str:
    """`FILE:LINE:COL: error: <what>`, the line with a caret, and `expected one of: ...`."""
    lines = [str(error), *caret_excerpt(error.text, error.location.column)]
    if error.expected:
        lines.append(f"    expected one of: {', '.join(error.expected)}")
    return "\n".join(lines)
