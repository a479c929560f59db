"""The text report: `path:line:col: CODE [severity] message`, each related event indented
below it as `path:line:col: note: ...` (as compilers show where a declaration was), then a
summary line. A consequence (checker/engine/folding.py) is one indented note naming its root:
`path:line:col: note: CODE [severity, consequence of ROOT at line N] message`.

Findings come trace after trace, in the order the trace gave them (by line; what is found only
at the end of a trace, such as a leak, last), as a compiler reports what it meets. So the
report reads the same whether it was written as the run went (`dmalint check` with the text
report alone: each finding printed when found, none kept) or from a finished run."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.text import Text

from ..engine.run import RunResult
from ..findings import Finding, Severity
from .context import ReportContext
from .summary import summary_line

__all__ = ["TextReport", "render"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


class TextReport:
    """A text report written as the run goes: `finding` for each finding as it is found, then
    `finish` with the run's result (what was not checked, stale baseline entries, the summary)."""

    def __init__(self, stream: TextIO, context: ReportContext) -> None:
        self.context = context
        self.console = Console(
            file=stream,
            color_system="standard" if context.color else None,
            force_terminal=context.color,
            highlight=False,
            soft_wrap=True,
            emoji=False,
            markup=False,
        )

    def finding(self, finding: Finding) -> None:
        loc = finding.location
        if finding.consequence_of is not None:
            self._consequence(finding)
            return
        line = Text()
        line.append(f"{loc.path}:{loc.line}:{loc.column}:", style="bold")
        line.append(" ")
        line.append(finding.code, style=_STYLE[finding.severity])
        line.append(f" [{finding.severity}] ")
        line.append(finding.message)
        self.console.print(line)
        for related in finding.related:
            at = related.location
            note = Text("  ")
            note.append(f"{at.path}:{at.line}:{at.column}:", style="bold")
            note.append(" note: ", style="cyan")
            note.append(related.message)
            self.console.print(note)

    def _consequence(self, finding: Finding) -> None:
        """A consequence, one note line naming its root (found before it, or with it)."""
        loc, root = finding.location, finding.consequence_of
        assert root is not None
        line = Text("  ")
        line.append(f"{loc.path}:{loc.line}:{loc.column}:", style="bold")
        line.append(" note: ", style="cyan")
        line.append(f"{finding.code} [{finding.severity}, consequence of {root.code} at line {root.location.line}] ")
        line.append(finding.message)
        self.console.print(line)

    def finish(self, result: RunResult) -> None:
        console = self.console
        if not self.context.quiet:
            if result.stale_baseline:
                where = self.context.baseline or "the baseline"
                count = len(result.stale_baseline)
                console.print(Text(f"{where}: {count} entr{'y' if count == 1 else 'ies'} "
                                   "no longer occur (remove them with --prune-baseline):", style="yellow"))
                for entry in result.stale_baseline:
                    console.print(Text(f"  {entry.path}: {entry.code} {entry.message}"))
            for file in result.files:
                if file.error is not None:
                    console.print(Text(f"{file.path}: not checked: {file.error.message}", style="bold red"))
            console.print(Text(summary_line(result), style="bold"))
        console.file.flush()


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    """The same report from a finished run (when findings were kept: another report wanted them)."""
    report = TextReport(stream, context)
    for file in result.files:
        for finding in file.findings:
            report.finding(finding)
    report.finish(result)
