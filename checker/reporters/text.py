"""The text report: `path:line:col: CODE [severity] message`, each related event indented
below it as `path:line:col: note: ...` (as compilers show where a declaration was), then a
summary line."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.text import Text

from ..findings import Severity
from ..run import RunResult
from .context import ReportContext
from .summary import summary_line

__all__ = ["render"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    color, quiet = context.color, context.quiet
    console = Console(
        file=stream,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        markup=False,
    )
    for finding in result.findings:
        loc = finding.location
        line = Text()
        line.append(f"{loc.path}:{loc.line}:{loc.column}:", style="bold")
        line.append(" ")
        line.append(finding.code, style=_STYLE[finding.severity])
        line.append(f" [{finding.severity}] ")
        line.append(finding.message)
        console.print(line)
        for related in finding.related:
            at = related.location
            note = Text("  ")
            note.append(f"{at.path}:{at.line}:{at.column}:", style="bold")
            note.append(" note: ", style="cyan")
            note.append(related.message)
            console.print(note)
    if not quiet:
        if result.stale_baseline:
            where = context.baseline or "the baseline"
            console.print(Text(f"{where}: {len(result.stale_baseline)} entr{'y' if len(result.stale_baseline) == 1 else 'ies'} "
                               "no longer occur (remove them with --prune-baseline):", style="yellow"))
            for entry in result.stale_baseline:
                console.print(Text(f"  {entry.path}: {entry.code} {entry.message}"))
        for file in result.files:
            if file.error is not None:
                console.print(Text(f"{file.path}: not checked: {file.error.message}", style="bold red"))
        console.print(Text(summary_line(result), style="bold"))
