"""A whole run: every trace through reader, model and rules, into one result for reporters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from model.events import Event

from .engine import FileCheck
from .errors import InputError, TraceSyntaxError
from .findings import Finding, Severity
from .reader import Diagnostic, TraceSource, read_trace
from .rulebook import Rulebook

__all__ = ["FileResult", "RunOptions", "RunResult", "check_sources"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How far to go: stop after `max_errors` unparsed lines in the whole run (None: never)."""

    max_errors: int | None = None
    selection: frozenset[str] | None = None  # codes to report; None: every rule
    timeline: bool = False  # record each trace's Timeline (IRQL per CPU, object lifetimes) for the HTML report


@dataclass(slots=True)
class FileResult:
    """What checking one trace gave. `error` is set when the trace could not be checked;
    `complete` is False when the run stopped before the end of the trace."""

    path: str
    events: int = 0
    unparsed_lines: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    error: InputError | None = None
    complete: bool = True
    timeline: Any = None  # a checker.timeline.Timeline when RunOptions.timeline asked for one

    @property
    def checked(self) -> bool:
        return self.error is None and self.complete


@dataclass(slots=True)
class RunResult:
    """Every trace's result, in the order the traces were given."""

    files: list[FileResult] = field(default_factory=list)
    stopped_early: bool = False
    rules: int = 0

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for result in self.files for f in result.findings), key=lambda f: f.sort_key)

    @property
    def failed(self) -> bool:
        """True when some trace could not be checked at all (exit status 2)."""
        return any(result.error is not None for result in self.files)

    def count(self, severity: Severity) -> int:
        return sum(1 for result in self.files for f in result.findings if f.severity is severity)


Listener = Callable[[TraceSyntaxError | Diagnostic | InputError], None]


def check_sources(
    sources: Iterable[TraceSource | InputError],
    rulebook: Rulebook,
    options: RunOptions = RunOptions(),
    listener: Listener | None = None,
) -> RunResult:
    """Check each source in turn. `listener` hears each syntax error, warning and input
    error as it happens, so a terminal can show them while a long trace is still read."""
    result = RunResult(rules=len(rulebook) if options.selection is None else len(options.selection))
    keep = (lambda finding: True) if options.selection is None else (lambda finding: finding.code in options.selection)
    errors_left = options.max_errors
    for source in sources:
        if isinstance(source, InputError):
            result.files.append(FileResult(path=source.location.path if source.location else "?", error=source))
            if listener:
                listener(source)
            continue
        file_result = FileResult(path=source.display)
        result.files.append(file_result)
        if result.stopped_early:
            file_result.complete = False
            continue
        recorder = None
        if options.timeline:
            from .timeline import TimelineRecorder

            recorder = TimelineRecorder(source.display)
        check = FileCheck(source.display, rulebook, options.selection, observer=recorder)
        try:
            for item in read_trace(source):
                if isinstance(item, TraceSyntaxError):
                    file_result.unparsed_lines += 1
                    file_result.findings.append(check.unparsed(item))
                    if listener:
                        listener(item)
                    if errors_left is not None:
                        errors_left -= 1
                        if errors_left <= 0:
                            result.stopped_early = True
                            file_result.complete = False
                            break
                elif isinstance(item, Diagnostic):
                    file_result.warnings.append(item)
                    if listener:
                        listener(item)
                else:
                    if isinstance(item, Event):
                        file_result.events += 1
                    file_result.findings.extend(f for f in check.feed(item) if keep(f))
            else:
                file_result.findings.extend(f for f in check.finish() if keep(f))
            if recorder is not None:
                file_result.timeline = recorder.timeline()
        except InputError as error:
            file_result.error = error
            if listener:
                listener(error)
    return result
