"""The numbers a run ends with, shared by every reporter."""

from __future__ import annotations

from ..engine.run import RunResult
from ..findings import Severity

__all__ = ["summary_counts", "summary_line"]


def summary_counts(result: RunResult) -> dict[str, int]:
    files = result.files
    return {
        "rules": result.rules,
        "files": len(files),
        "files_checked": sum(1 for f in files if f.checked),
        "files_not_checked": sum(1 for f in files if not f.checked),
        "events": sum(f.events for f in files),
        "findings": sum(f.total for f in files),
        "consequences": sum(f.consequences for f in files),
        "errors": result.count(Severity.ERROR),
        "warnings": result.count(Severity.WARNING),
        "notes": result.count(Severity.NOTE),
        "unparsed_lines": sum(f.unparsed_lines for f in files),
        "suppressed": sum(len(f.suppressed) for f in files),
    }


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary_line(result: RunResult) -> str:
    """One line: files, events, findings by severity, unparsed lines, what was not checked."""
    c = summary_counts(result)
    checked = f"{_plural(c['files_checked'], 'file')} checked against {_plural(c['rules'], 'rule')}"
    parts = [f"{checked}, {_plural(c['events'], 'event')}"]
    by_severity = ", ".join(
        _plural(c[key], name) for key, name in (("errors", "error"), ("warnings", "warning"), ("notes", "note")) if c[key]
    )
    findings = _plural(c["findings"], "finding")
    parts.append(f"{findings} ({by_severity})" if by_severity else findings)
    if c["consequences"]:
        parts.append(f"{_plural(c['consequences'], 'consequence')} folded")
    parts.append(_plural(c["unparsed_lines"], "unparsed line"))
    if c["suppressed"]:
        parts.append(f"{c['suppressed']:,} suppressed")
    line = ": ".join([parts[0], ", ".join(parts[1:])])
    if c["files_not_checked"]:
        line += f"; {_plural(c['files_not_checked'], 'file')} NOT checked"
        if result.stopped_early:
            line += " (stopped at the error limit)"
    return line
