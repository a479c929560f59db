"""Compiler-style messages for problems found while reading: the line, a caret, what fits."""

from __future__ import annotations

from ..errors import TraceSyntaxError

__all__ = ["caret_excerpt", "format_syntax_error"]

_WIDTH = 160
_CONTEXT = 70


def caret_excerpt(text: str, column: int, indent: str = "    ") -> list[str]:
    """The line (tabs shown as spaces, long lines cut around the column) and a caret under it."""
    shown = text.replace("\t", " ")
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
