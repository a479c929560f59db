"""The JSON report, version 1 (documented in the README; keys are only ever added)."""

from __future__ import annotations

import json as _json
from typing import Any, TextIO

from .. import __version__
from ..engine.run import FileResult, RunResult
from ..findings import Finding, Root
from ..gating.baseline import BaselineEntry
from .context import ReportContext
from .summary import summary_counts

__all__ = ["SCHEMA_VERSION", "file_entry", "finding_entry", "render", "root_entry", "stale_entry", "to_document"]

SCHEMA_VERSION = 1


def finding_entry(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": str(finding.severity),
        "message": finding.message,
        "path": loc.path,
        "line": loc.line,
        "column": loc.column,
        "end_column": loc.end_column,
        "related": [
            {"path": r.location.path, "line": r.location.line, "column": r.location.column, "message": r.message,
             "cpu": r.cpu, "irql": r.irql}
            for r in finding.related
        ],
        "cpu": finding.cpu,
        "irql": finding.irql,
        "facts": dict(finding.facts),
        "fingerprint": finding.fingerprint,
        "consequence_of": None if finding.consequence_of is None else root_entry(finding.consequence_of),
    }


def root_entry(root: Root) -> dict[str, Any]:
    """The root finding a consequence folds under: its code, place and fingerprint."""
    return {"code": root.code, "path": root.location.path, "line": root.location.line,
            "column": root.location.column, "fingerprint": root.fingerprint}


def file_entry(file: FileResult) -> dict[str, Any]:
    return {
        "path": file.path,
        "events": file.events,
        "unparsed_lines": file.unparsed_lines,
        "checked": file.checked,
        "error": None if file.error is None else file.error.message,
        "warnings": [{"line": w.location.line, "column": w.location.column, "message": w.message} for w in file.warnings],
    }


def stale_entry(entry: BaselineEntry) -> dict[str, Any]:
    return {"fingerprint": entry.fingerprint, "code": entry.code, "path": entry.path, "message": entry.message}


def to_document(result: RunResult) -> dict[str, Any]:
    """The report as JSON-ready data. Findings hidden by an inline suppression or the baseline
    are in `suppressed` with their reason, not in `findings`; `stale_baseline` lists baseline
    entries no finding matched any more."""
    files = [file_entry(file) for file in result.files]
    return {
        "version": SCHEMA_VERSION,
        "tool": {"name": "dmalint", "version": __version__},
        "files": files,
        "findings": [finding_entry(f) for f in result.findings],
        "suppressed": [
            {**finding_entry(s.finding), "suppression": {"kind": s.kind, "justification": s.justification}}
            for s in sorted((s for file in result.files for s in file.suppressed), key=lambda s: s.finding.sort_key)
        ],
        "stale_baseline": [stale_entry(e) for e in result.stale_baseline],
        "summary": {**summary_counts(result), "stopped_early": result.stopped_early},
    }


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    _json.dump(to_document(result), stream, indent=2, default=str)
    stream.write("\n")
