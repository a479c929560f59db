"""JSON Lines: one JSON object a line, the findings first, written as they are found.

    {"type": "finding", "code": "SGL003", ...}      one a finding, as in the JSON report
    {"type": "file", "path": "a.trace", ...}        one a trace, after every finding
    {"type": "summary", "rules": 56, ...}           the last line

With `--format jsonl` as the only report, `dmalint check` streams: each finding is written
when the engine finds it and then forgotten, so a trace with millions of findings runs in the
memory of one. Findings come trace after trace in the order they were found (by line within
a trace, end-of-trace findings last); `sort -t: ...` is not needed to read them, and `jq -c
'select(.type == "finding")'` picks them out. A consumer tells a complete report by its
`summary` line.
"""

from __future__ import annotations

import json as _json
from typing import Any, TextIO

from .. import __version__
from ..engine.run import RunResult
from ..findings import Finding
from .context import ReportContext
from .json import SCHEMA_VERSION, file_entry, finding_entry, stale_entry
from .summary import summary_counts

__all__ = ["JsonLines", "render"]


class JsonLines:
    """A JSON Lines report written as the run goes: `finding` for each finding as it is
    found, then `finish` with the run's result."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def _line(self, kind: str, data: dict[str, Any]) -> None:
        self.stream.write(_json.dumps({"type": kind, **data}, default=str, separators=(",", ":")))
        self.stream.write("\n")

    def finding(self, finding: Finding) -> None:
        self._line("finding", finding_entry(finding))

    def finish(self, result: RunResult) -> None:
        for file in result.files:
            self._line("file", file_entry(file))
        for file in result.files:
            for suppressed in file.suppressed:
                self._line("suppressed", {**finding_entry(suppressed.finding),
                                          "suppression": {"kind": suppressed.kind, "justification": suppressed.justification}})
        for entry in result.stale_baseline:
            self._line("stale_baseline", stale_entry(entry))
        self._line("summary", {"version": SCHEMA_VERSION, "tool": {"name": "dmalint", "version": __version__},
                               **summary_counts(result), "stopped_early": result.stopped_early})
        self.stream.flush()


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    """The same report from a finished run (when findings were kept: another report wanted them)."""
    lines = JsonLines(stream)
    for file in result.files:
        for finding in file.findings:
            lines.finding(finding)
    lines.finish(result)
