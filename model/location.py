"""Where a record stands in its trace."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SourceLocation"]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A span on one line of a trace file.

    Lines and columns are 1-based and `end_column` is the column just after the span, as
    Lark and SARIF count them, so no reporter has to convert.
    """

    path: str
    line: int
    column: int = 1
    end_column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"
