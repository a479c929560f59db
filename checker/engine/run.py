"""A whole run: every trace through reader, model and rules, into one result for reporters."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from model.events import Event, Record

from ..errors import InputError, TraceSyntaxError
from ..findings import Finding, Severity, Suppressed
from ..gating.baseline import Baseline, BaselineEntry
from ..gating.suppression import InlineSuppressions
from ..language.rulebook import Rulebook
from ..reading.reader import Diagnostic, TraceSource, read_trace
from .filecheck import FileCheck
from .folding import Folder

__all__ = ["FileResult", "RunOptions", "RunResult", "TraceCheck", "check_sources"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: stop after `max_errors` unparsed lines in the whole run (None: never);
    `selection` the codes to report (None: every rule); `severities` overrides of a rule's
    severity by code; `baseline` the fingerprints of findings to hide as already known
    (`--baseline`); `recorder` to make, for each trace (by its path), an observer of every
    record's Effects whose `timeline()` goes into `FileResult.timeline` (the HTML report's
    TimelineRecorder: a picklable callable, for `--jobs`); `sink`
    to stream the findings: each is handed to it as found (in the order found, trace after
    trace) and not kept, only counted, so a run's memory does not grow with its findings;
    `fold` to fold consequences under their root finding (`--no-fold` turns it off)."""

    max_errors: int | None = None
    selection: frozenset[str] | None = None
    severities: Mapping[str, Severity] = field(default_factory=dict)
    baseline: Baseline | None = None
    recorder: Callable[[str], Any] | None = None
    sink: Callable[[Finding], None] | None = None
    fold: bool = True


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
    suppressed: list[Suppressed] = field(default_factory=list)  # findings hidden inline or by the baseline
    timeline: Any = None  # what RunOptions.recorder's observer recorded (the HTML report's Timeline)
    counts: dict[Severity, int] = field(default_factory=dict)  # findings by severity, streamed ones too
    consequences: int = 0  # findings folded under their root (in `findings` too, but not in `counts`)

    @property
    def total(self) -> int:
        """How many findings the trace gave (kept in `findings`, or streamed to a sink), not
        counting the consequences folded under them."""
        return sum(self.counts.values())

    @property
    def checked(self) -> bool:
        return self.error is None and self.complete


@dataclass(slots=True)
class RunResult:
    """Every trace's result, in the order the traces were given."""

    files: list[FileResult] = field(default_factory=list)
    stopped_early: bool = False
    rules: int = 0
    stale_baseline: list[BaselineEntry] = field(default_factory=list)  # entries of checked traces no finding matched

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for result in self.files for f in result.findings), key=lambda f: f.sort_key)

    @property
    def failed(self) -> bool:
        """True when some trace could not be checked at all (exit status 2)."""
        return any(result.error is not None for result in self.files)

    def count(self, severity: Severity) -> int:
        return sum(result.counts.get(severity, 0) for result in self.files)


Listener = Callable[[TraceSyntaxError | Diagnostic | InputError], None]


class TraceCheck:
    """One trace through the engine and the user's gates: severity overrides, the selection,
    inline suppressions and the baseline. `feed` each item the reader yields, then `finish`."""

    def __init__(self, path: str, rulebook: Rulebook, options: RunOptions = RunOptions(), observer: Any = None) -> None:
        self.options = options
        self.engine = FileCheck(path, rulebook, options.selection, observer=observer)
        self.inline = InlineSuppressions(path, rulebook)
        self.result = FileResult(path=path)
        self.folder = Folder(rulebook.folds if options.fold else {})
        self._hidden: dict[str, Suppressed] = {}  # suppressed findings by fingerprint: their consequences go too

    def feed(self, item: Record | TraceSyntaxError | Diagnostic) -> None:
        result = self.result
        if isinstance(item, Event):  # most items: the short way
            result.events += 1
            if self.inline.pending:
                self.inline.see(item)
            found = self.engine.feed(item)
            if found:
                self._report(found)
        elif isinstance(item, TraceSyntaxError):
            result.unparsed_lines += 1
            self._report([self.engine.unparsed(item)])
        elif isinstance(item, Diagnostic):
            result.warnings.append(item)
        else:  # a directive or a comment (an inline suppression, perhaps)
            self.inline.see(item)
            found = self.engine.feed(item)
            if found:
                self._report(found)

    def finish(self) -> FileResult:
        self._report(self.engine.finish())
        self._report(self.inline.unused(), inline=False)
        return self.result

    def _report(self, findings: list[Finding], inline: bool = True) -> None:
        options = self.options
        if options.severities:
            findings = [replace(f, severity=options.severities[f.code]) if f.code in options.severities else f for f in findings]
        if options.selection is not None:
            findings = [f for f in findings if f.code in options.selection]
        if findings:
            findings = self.folder.fold(findings)
        hidden: list[Suppressed] = []
        if inline:
            findings, hidden = self.inline.split(findings)
        baseline = options.baseline
        if baseline is not None and baseline.entries:
            known = [f for f in findings if f.fingerprint in baseline.entries]
            if known:
                findings = [f for f in findings if f.fingerprint not in baseline.entries]
                hidden.extend(Suppressed(f, "baseline", baseline.justification) for f in known)
        if hidden:
            self._hidden.update((s.finding.fingerprint, s) for s in hidden if s.finding.consequence_of is None)
        if self._hidden and any(f.consequence_of is not None for f in findings):
            findings = self._under_hidden_roots(findings, hidden)
        if hidden:
            self.result.suppressed.extend(hidden)
        counts = self.result.counts
        for finding in findings:
            if finding.consequence_of is not None:
                self.result.consequences += 1
            else:
                counts[finding.severity] = counts.get(finding.severity, 0) + 1
        if options.sink is None:
            self.result.findings.extend(findings)
        else:
            for finding in findings:
                options.sink(finding)


    def _under_hidden_roots(self, findings: list[Finding], hidden: list[Suppressed]) -> list[Finding]:
        """A consequence of a suppressed finding is suppressed with it, for the same reason."""
        shown = []
        for finding in findings:
            root = finding.consequence_of
            suppressed = self._hidden.get(root.fingerprint) if root is not None else None
            if suppressed is None:
                shown.append(finding)
            else:
                hidden.append(Suppressed(finding, suppressed.kind, suppressed.justification))
        return shown


def check_sources(
    sources: Iterable[TraceSource | InputError],
    rulebook: Rulebook,
    options: RunOptions = RunOptions(),
    listener: Listener | None = None,
    jobs: int = 1,
    load_rules: Callable[[], Rulebook] | None = None,
) -> RunResult:
    """Check each source in turn. `listener` hears each syntax error, warning and input
    error as it happens, so a terminal can show them while a long trace is still read.

    With `jobs` > 1, traces are checked in that many processes (each loads the rules with
    `load_rules`, a picklable callable); results, and what the listener hears, come in the
    order of `sources`, exactly as with one job. A run with an error limit (`max_errors`)
    checks in order in this process, since the limit spans traces."""
    result = RunResult(rules=len(rulebook) if options.selection is None else len(options.selection))
    sources = list(sources)
    parallel = jobs > 1 and options.max_errors is None and load_rules is not None and _files(sources) > 1
    if parallel:
        sink = options.sink  # a worker keeps its trace's findings; they are streamed from here
        for file_result, heard in _in_processes(sources, replace(options, sink=None), jobs, load_rules, rulebook):  # type: ignore[arg-type]
            if sink is not None:
                for finding in file_result.findings:
                    sink(finding)
                file_result.findings = []
            result.files.append(file_result)
            for item in heard if listener else ():
                listener(item)  # type: ignore[misc]
    else:
        errors_left = [options.max_errors]
        for source in sources:
            if result.stopped_early and not isinstance(source, InputError):
                result.files.append(FileResult(path=source.display, complete=False))
                continue
            file_result, _ = _check_one(source, rulebook, options, listener, errors_left)
            result.files.append(file_result)
            if errors_left[0] is not None and errors_left[0] <= 0 and file_result.error is None and not file_result.complete:
                result.stopped_early = True
    if options.baseline is not None:
        seen = {f.fingerprint for file in result.files for f in (*file.findings, *(s.finding for s in file.suppressed))}
        result.stale_baseline = options.baseline.stale(seen, {file.path for file in result.files if file.checked})
    return result


def _files(sources: list) -> int:
    return sum(1 for source in sources if isinstance(source, TraceSource))


def _check_one(
    source: TraceSource | InputError,
    rulebook: Rulebook,
    options: RunOptions,
    listener: Listener | None,
    errors_left: list[int | None],
) -> tuple[FileResult, list]:
    """One trace's result; `errors_left` (a one-item list) counts down the run's error limit."""
    if isinstance(source, InputError):
        if listener:
            listener(source)
        return FileResult(path=source.location.path if source.location else "?", error=source), []
    recorder = options.recorder(source.display) if options.recorder is not None else None
    check = TraceCheck(source.display, rulebook, options, observer=recorder)
    file_result = check.result
    try:
        for item in read_trace(source):
            check.feed(item)
            if listener and isinstance(item, (TraceSyntaxError, Diagnostic)):
                listener(item)
            if isinstance(item, TraceSyntaxError) and errors_left[0] is not None:
                errors_left[0] -= 1
                if errors_left[0] <= 0:
                    file_result.complete = False
                    break
        else:
            check.finish()
            if recorder is not None:
                file_result.timeline = recorder.timeline()
    except InputError as error:
        file_result.error = error
        if listener:
            listener(error)
    return file_result, []


_WORKER_RULES: dict[str, Rulebook] = {}


def _worker(task: tuple[TraceSource | InputError, RunOptions, Callable[[], Rulebook]]) -> tuple[FileResult, list]:
    """Check one trace in a worker process; what a listener would hear is returned, in order."""
    source, options, load_rules = task
    key = repr(load_rules)  # a fresh copy of the callable arrives with each task
    rulebook = _WORKER_RULES.get(key)
    if rulebook is None:
        rulebook = _WORKER_RULES[key] = load_rules()
    heard: list = []
    file_result, _ = _check_one(source, rulebook, options, heard.append, [None])
    return file_result, heard


def _in_processes(sources: list, options: RunOptions, jobs: int, load_rules: Callable[[], Rulebook],
                  rulebook: Rulebook) -> Iterator[tuple]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn" if sys.platform == "win32" else "fork")
    if context.get_start_method() == "fork":
        _WORKER_RULES[repr(load_rules)] = rulebook  # forked workers inherit the loaded rules
    with ProcessPoolExecutor(max_workers=min(jobs, _files(sources)), mp_context=context) as pool:
        yield from pool.map(_worker, [(source, options, load_rules) for source in sources], chunksize=1)
