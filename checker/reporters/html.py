"""The HTML compliance report: one self-contained page (inline CSS and SVG, no scripts, nothing
fetched) for a reviewer who has never run dmalint.

It gives a verdict per trace (compliant, not compliant, not checked), counts by rule and
severity, each finding with the trace lines around it and its related events, a timeline
picture per trace (IRQL per CPU, object lifetimes, findings marked; drawn when the run
recorded timelines: `RunOptions(recorder=TimelineRecorder)`), and the documentation of every rule that
fired. Rendered with Jinja2, autoescaping on: text from traces and rules is never markup.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import jinja2

from .. import __version__
from ..engine.run import FileResult, RunResult
from ..findings import Finding, Severity
from ..language.rulebook import Rule
from .context import ReportContext
from .excerpts import CONTEXT_LINES, ExcerptLine, excerpt, read_lines
from .report_paths import shown_path, trace_file
from .summary import summary_counts
from .timeline import Timeline
from .timeline_picture import FindingMark, Picture, lay_out

__all__ = ["MAX_FINDINGS_SHOWN", "render", "render_page"]

MAX_FINDINGS_SHOWN = 500  # per trace, in full; the counts always cover every finding
TEMPLATES = Path(__file__).parent / "templates"
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.NOTE)


@dataclass(frozen=True, slots=True)
class RelatedView:
    where: str
    message: str
    line: ExcerptLine | None


@dataclass(frozen=True, slots=True)
class FindingView:
    anchor: str
    code: str
    name: str
    severity: str
    message: str
    where: str
    line: int
    excerpt: tuple[ExcerptLine, ...]
    related: tuple[RelatedView, ...]
    rule_anchor: str
    consequence_of: str = ""  # "SGL012 at line 27" for a consequence folded under its root
    root_anchor: str = ""


@dataclass(frozen=True, slots=True)
class TraceView:
    anchor: str
    path: str
    verdict: str  # compliant | not-compliant | not-checked
    verdict_label: str
    reason: str
    events: int
    unparsed_lines: int
    counts: dict[str, int]
    findings: tuple[FindingView, ...]
    findings_total: int
    findings_not_shown: int
    warnings: tuple[str, ...]
    suppressed: tuple[str, ...]
    picture: Picture | None
    no_picture_reason: str
    source_missing: bool


@dataclass(frozen=True, slots=True)
class RuleRow:
    code: str
    name: str
    severity: str
    summary: str
    anchor: str
    count: int
    traces: tuple[tuple[str, str, int], ...]  # (path, anchor, count)


@dataclass(frozen=True, slots=True)
class RuleDoc:
    code: str
    name: str
    severity: str
    family: str
    anchor: str
    summary: str
    why: str
    contract: str
    example: str
    use_instead: str
    references: tuple[tuple[str, bool], ...]  # (text, is a web link)
    see_also: tuple[str, ...]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _rule_anchor(code: str) -> str:
    return f"rule-{code.lower()}"


def _verdict(file: FileResult, threshold: Severity) -> tuple[str, str, str]:
    """(css key, label, why) for one trace."""
    roots = [f for f in file.findings if f.consequence_of is None]  # consequences fold under these
    failing = [f for f in roots if f.severity.rank >= threshold.rank]
    if file.error is not None:
        return "not-checked", "Not checked", f"the trace could not be read: {file.error.message}"
    if failing:
        what = "finding" if len(failing) == 1 else "findings"
        level = "error" if threshold is Severity.ERROR else f"{threshold} or higher"
        return "not-compliant", "Not compliant", f"{len(failing):,} {what} at {level} severity"
    if not file.complete:
        return "not-checked", "Not checked", "the run stopped at its error limit before the end of this trace"
    others = len(roots)
    if others:
        return "compliant", "Compliant", f"no contract violation; {others:,} lesser finding{'' if others == 1 else 's'} to review"
    return "compliant", "Compliant", "no findings"


def _shown_findings(file: FileResult) -> list[Finding]:
    return sorted(file.findings, key=lambda f: f.sort_key)[:MAX_FINDINGS_SHOWN]


def _lines_wanted(findings: list[Finding]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for finding in findings:
        loc = finding.location
        wanted.setdefault(loc.path, set()).update(range(max(1, loc.line - CONTEXT_LINES), loc.line + CONTEXT_LINES + 1))
        for related in finding.related:
            wanted.setdefault(related.location.path, set()).add(related.location.line)
    return wanted


def _trace_view(index: int, file: FileResult, threshold: Severity, root: str) -> TraceView:
    anchor = f"trace-{index}"
    shown = _shown_findings(file)
    sources: dict[str, dict[int, str]] = {}
    missing = False
    for path, numbers in _lines_wanted(shown).items():
        found = trace_file(path, root)
        sources[path] = read_lines(found, numbers) if found is not None else {}
        missing = missing or found is None
    views = []
    anchors = {finding.fingerprint: f"{anchor}-finding-{number}" for number, finding in enumerate(shown, start=1)}
    for number, finding in enumerate(shown, start=1):
        loc = finding.location
        lines = sources.get(loc.path, {})
        related = tuple(
            RelatedView(
                f"{shown_path(r.location.path, root)}:{r.location.line}:{r.location.column}",
                r.message,
                next(iter(excerpt(sources.get(r.location.path, {}), r.location.line, context=0, target=False)), None),
            )
            for r in finding.related
        )
        views.append(FindingView(
            anchor=f"{anchor}-finding-{number}",
            code=finding.code,
            name=finding.name,
            severity=str(finding.severity),
            message=finding.message,
            where=f"{shown_path(loc.path, root)}:{loc.line}:{loc.column}",
            line=loc.line,
            excerpt=excerpt(lines, loc.line, loc.column, loc.end_column),
            related=related,
            rule_anchor=_rule_anchor(finding.code),
            consequence_of="" if (folded := finding.consequence_of) is None else f"{folded.code} at line {folded.location.line}",
            root_anchor="" if folded is None else anchors.get(folded.fingerprint, ""),
        ))
    verdict, label, reason = _verdict(file, threshold)
    counts = Counter(str(f.severity) for f in file.findings if f.consequence_of is None)
    marks = [
        FindingMark(f.location.line, str(f.severity), f.code, view.anchor, f.message,
                    tuple(r.location.line for r in f.related if r.location.path == f.location.path))
        for f, view in zip(shown, views, strict=True)
    ]
    picture, no_picture = _picture(file, marks)
    suppressed = tuple(
        f"{shown_path(s.finding.location.path, root)}:{s.finding.location.line}: {s.finding.code} {s.finding.message}"
        f" ({s.kind}{': ' + s.justification if s.justification else ''})"
        for s in getattr(file, "suppressed", ())
    )
    return TraceView(
        anchor=anchor,
        path=shown_path(file.path, root),
        verdict=verdict,
        verdict_label=label,
        reason=reason,
        events=file.events,
        unparsed_lines=file.unparsed_lines,
        counts={str(s): counts.get(str(s), 0) for s in SEVERITIES},
        findings=tuple(views),
        findings_total=len(file.findings),
        findings_not_shown=len(file.findings) - len(shown),
        warnings=tuple(f"line {w.location.line}: {w.message}" for w in file.warnings),
        suppressed=suppressed,
        picture=picture,
        no_picture_reason=no_picture,
        source_missing=bool(shown) and missing,
    )


def _picture(file: FileResult, marks: list[FindingMark]) -> tuple[Picture | None, str]:
    timeline = file.timeline
    if not isinstance(timeline, Timeline):
        if file.error is not None or not file.complete:
            return None, "No timeline: the trace was not checked to its end."
        return None, "No timeline: this run did not record one."
    if not timeline.lanes and not timeline.lifetimes:
        return None, "No timeline: the trace has no events on a CPU."
    return lay_out(timeline, marks), ""


def _rule_rows(result: RunResult, context: ReportContext, traces: list[TraceView]) -> list[RuleRow]:
    per_rule: dict[str, Counter[int]] = {}
    for index, file in enumerate(result.files):
        for finding in file.findings:
            if finding.consequence_of is not None:
                continue
            per_rule.setdefault(finding.code, Counter())[index] += 1
    severity_of = {f.code: str(f.severity) for f in result.findings}
    rows = []
    for code in sorted(per_rule, key=lambda c: (-max(Severity(severity_of[c]).rank, 0), c)):
        rule = context.rulebook.get(code)
        by_trace = per_rule[code]
        rows.append(RuleRow(
            code=code,
            name=rule.name if rule else "",
            severity=severity_of[code],
            summary=rule.summary if rule else "",
            anchor=_rule_anchor(code),
            count=sum(by_trace.values()),
            traces=tuple((traces[i].path, traces[i].anchor, n) for i, n in sorted(by_trace.items())),
        ))
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _rule_doc(rule: Rule) -> RuleDoc:
    doc = rule.doc
    references = []
    if doc.get("bugcheck"):
        references.append((f"Driver Verifier: {doc['bugcheck']}", False))
    for item in doc.get("references") or ():
        text = _text(item)
        references.append((text, text.startswith(("https://", "http://"))))
    return RuleDoc(
        code=rule.code,
        name=rule.name,
        severity=str(rule.severity),
        family=rule.family.upper(),
        anchor=_rule_anchor(rule.code),
        summary=_text(rule.summary),
        why=_text(doc.get("why")),
        contract=_text(doc.get("contract")),
        example=_text(doc.get("example")),
        use_instead=_text(doc.get("use_instead")),
        references=tuple(references),
        see_also=tuple(f"Static Driver Verifier: {_text(name)}" for name in doc.get("see_also") or ()),
    )


def render_page(result: RunResult, context: ReportContext) -> str:
    """The whole page as a string."""
    threshold = context.fail_on or Severity.ERROR
    traces = [_trace_view(index, file, threshold, context.root) for index, file in enumerate(result.files, start=1)]
    rule_rows = _rule_rows(result, context, traces)
    docs = [_rule_doc(rule) for row in rule_rows if (rule := context.rulebook.get(row.code)) is not None]
    verdicts = Counter(trace.verdict for trace in traces)
    template = _environment().get_template("report.html.j2")
    return template.render(
        version=__version__,
        argv=" ".join(("dmalint", *context.argv)) if context.argv else "",
        summary=summary_counts(result),
        stopped_early=result.stopped_early,
        threshold=str(threshold),
        traces=traces,
        verdicts={key: verdicts.get(key, 0) for key in ("compliant", "not-compliant", "not-checked")},
        rule_rows=rule_rows,
        rule_docs=docs,
        max_shown=MAX_FINDINGS_SHOWN,
        families=sorted({rule.family.upper() for rule in context.rulebook}),
    )


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    stream.write(render_page(result, context))
