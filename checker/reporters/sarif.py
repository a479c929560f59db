"""The SARIF 2.1.0 report, as GitHub code scanning reads it.

One run: `tool.driver` with the rules the results refer to (their docs as help), one result a
finding (suppressed findings too, with `suppressions`; a consequence folded under its root
at level `note`, with the root as a related location and in `properties.consequenceOf`), the related events as
`relatedLocations` and as a `codeFlows` thread flow that ends at the finding, and one
invocation whose notifications say what could not be read or checked. Paths are relative to
`context.root` (`%SRCROOT%`) where they lie under it. GitHub's limits (results per run, thread
flow locations per result) are kept by cutting deterministically, and the cut is told.
"""

from __future__ import annotations

import json as _json
import os
import shlex
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from .. import __version__
from ..engine.run import RunResult
from ..findings import Finding
from ..language.codes import SYNTAX_ERROR
from ..language.rulebook import Rule
from .context import ReportContext
from .explain import rule_markdown

__all__ = [
    "FINGERPRINT_KEY",
    "INFORMATION_URI",
    "MAX_RESULTS",
    "MAX_THREAD_FLOW_LOCATIONS",
    "SARIF_SCHEMA",
    "SARIF_VERSION",
    "SRCROOT",
    "render",
    "to_document",
]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/dmalint/"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "dmalintFingerprint/v1"

MAX_RESULTS = 25_000
"""GitHub rejects a run with more results: beyond it the least severe are left out."""
MAX_THREAD_FLOW_LOCATIONS = 1_000
"""GitHub shows no more locations of a thread flow: beyond it only the last ones are kept."""
MAX_DESCRIPTION = 1_024
"""GitHub's limit on a rule's short and full description."""

_PRECISION = {"stable": "very-high", "preview": "medium", "deprecated": "low", "removed": "low"}
_PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}
_SUPPRESSION_KIND = {"inline": "inSource", "baseline": "external"}


@dataclass(frozen=True, slots=True)
class _Entry:
    """One result to be: a finding, and how it was suppressed if it was (`kind`, `justification`)."""

    finding: Finding
    suppression: Any = None


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    _json.dump(to_document(result, context), stream, indent=2)
    stream.write("\n")


def to_document(result: RunResult, context: ReportContext) -> dict[str, Any]:
    """The whole SARIF log of a run, as plain JSON values."""
    places = _Places(context.root)
    notes: list[dict[str, Any]] = []
    entries = _entries(result)
    kept = _keep_most_severe(entries, MAX_RESULTS)
    if len(kept) < len(entries):
        notes.append(_cut_results_note(entries, kept))
    rules = _referenced_rules(context, [entry.finding for entry in kept], result)
    index = {rule.code: i for i, rule in enumerate(rules)}
    flows_cut = 0
    results = []
    for entry in kept:
        sarif_result, cut = _result(entry, index, places, context)
        results.append(sarif_result)
        flows_cut += cut
    if flows_cut:
        notes.append({
            "level": "note",
            "message": {"text": f"the code flows of {flows_cut:,} result(s) had more than {MAX_THREAD_FLOW_LOCATIONS:,} "
                                f"locations, GitHub's display limit: each keeps its last {MAX_THREAD_FLOW_LOCATIONS:,}, "
                                "ending at the finding"},
        })
    invocation: dict[str, Any] = {
        "commandLine": shlex.join(["dmalint", *context.argv]),
        "arguments": list(context.argv),
        "executionSuccessful": context.exit_code != 2,
        "exitCode": context.exit_code,
    }
    notifications = _file_notifications(result, index, places) + notes
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "dmalint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(rule) for rule in rules],
            }
        },
        "invocations": [invocation],
        "originalUriBaseIds": {SRCROOT: {"uri": places.root_uri}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


# --- where things are ---------------------------------------------------------------------


class _Places:
    """Turns a finding's path into an artifact location: relative to the root under `%SRCROOT%`
    where the path lies under it, an absolute file URI where it does not."""

    def __init__(self, root: str) -> None:
        self.root = Path(os.path.abspath(root))
        uri = self.root.as_uri()
        self.root_uri = uri if uri.endswith("/") else uri + "/"

    def artifact(self, path: str) -> dict[str, Any]:
        if path.startswith("<"):  # <stdin>: no file to point at
            return {"uri": quote(path)}
        absolute = Path(os.path.normpath(self.root / path))
        try:
            relative = absolute.relative_to(self.root)
        except ValueError:
            return {"uri": absolute.as_uri()}
        return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}

    def location(self, path: str, line: int, column: int = 1, end_column: int = 1, message: str | None = None) -> dict[str, Any]:
        physical: dict[str, Any] = {"artifactLocation": self.artifact(path)}
        if line >= 1:
            region = {"startLine": line, "startColumn": max(column, 1)}
            if end_column > column:
                region["endColumn"] = end_column
            physical["region"] = region
        location: dict[str, Any] = {"physicalLocation": physical}
        if message is not None:
            location["message"] = {"text": message}
        return location

    def at(self, source_location: Any, message: str | None = None) -> dict[str, Any]:
        loc = source_location
        return self.location(loc.path, loc.line, loc.column, loc.end_column, message)


# --- rules ----------------------------------------------------------------------------------


def _referenced_rules(context: ReportContext, findings: list[Finding], result: RunResult) -> list[Rule]:
    """The rules the results and notifications name, by code (as ruff does: not the whole catalogue)."""
    codes = {finding.code for finding in findings}
    if any(file.unparsed_lines for file in result.files):
        codes.add(SYNTAX_ERROR)
    return [rule for rule in context.rulebook if rule.code in codes]


def _descriptor(rule: Rule) -> dict[str, Any]:
    doc = rule.doc
    markdown = rule_markdown(rule)
    descriptor: dict[str, Any] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": _clip(rule.summary)},
        "fullDescription": {"text": _clip(_paragraph(doc.get("why")) or rule.summary)},
        "help": {"text": markdown, "markdown": markdown},
    }
    references = [str(ref) for ref in doc.get("references", ()) if str(ref).startswith("https://")]
    if references:
        descriptor["helpUri"] = references[0]
    descriptor["defaultConfiguration"] = {"level": str(rule.severity)}
    descriptor["properties"] = {
        "tags": ["dma", rule.family.lower()],
        "precision": _PRECISION.get(str(doc.get("status", "stable")), "medium"),
        "problem.severity": _PROBLEM_SEVERITY[str(rule.severity)],
    }
    return descriptor


def _paragraph(text: Any) -> str:
    return " ".join(str(text or "").split())


def _clip(text: str, limit: int = MAX_DESCRIPTION) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


# --- results --------------------------------------------------------------------------------


def _entries(result: RunResult) -> list[_Entry]:
    """Every finding, reported and suppressed, in report order (path, line, column, code)."""
    entries = [_Entry(finding) for finding in result.findings]
    entries += [_Entry(hidden.finding, hidden) for file in result.files for hidden in getattr(file, "suppressed", None) or ()]
    return sorted(entries, key=lambda entry: (entry.finding.sort_key, entry.suppression is not None))


def _keep_most_severe(entries: list[_Entry], limit: int) -> list[_Entry]:
    """At most `limit` entries, in their order: reported before suppressed, then the most
    severe, then the first in report order."""
    if len(entries) <= limit:
        return entries
    ranked = sorted(
        range(len(entries)),
        key=lambda i: (entries[i].suppression is not None, -entries[i].finding.severity.rank, i),
    )
    return [entries[i] for i in sorted(ranked[:limit])]


def _cut_results_note(entries: list[_Entry], kept: list[_Entry]) -> dict[str, Any]:
    left_out = len(entries) - len(kept)
    return {
        "level": "warning",
        "message": {"text": f"{len(entries):,} findings but GitHub code scanning takes at most {MAX_RESULTS:,} results "
                            f"a run: {left_out:,} left out (suppressed ones first, then the least severe, then the "
                            "last in path and line order); the text and JSON reports have them all"},
    }


def _result(entry: _Entry, index: Mapping[str, int], places: _Places, context: ReportContext) -> tuple[dict[str, Any], int]:
    """A finding as a SARIF result, and 1 when its code flow was cut to the limit."""
    finding = entry.finding
    out: dict[str, Any] = {"ruleId": finding.code}
    if finding.code in index:
        out["ruleIndex"] = index[finding.code]
    out["level"] = str(finding.severity)
    out["message"] = {"text": finding.message}
    out["locations"] = [places.at(finding.location)]
    if finding.related:
        out["relatedLocations"] = [
            {"id": i, **places.at(related.location, related.message)} for i, related in enumerate(finding.related, start=1)
        ]
    if finding.fingerprint:
        out["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
    root = finding.consequence_of
    if root is not None:  # folded: a note that links to its root, which carries the level
        out["level"] = "note"
        out["message"] = {"text": f"[consequence of {root.code} at line {root.location.line}] {finding.message}"}
        related = out.setdefault("relatedLocations", [])
        related.append({"id": len(related) + 1, **places.at(root.location, f"{root.code}: the root finding")})
        out["properties"] = {"consequenceOf": {"ruleId": root.code, "fingerprint": root.fingerprint},
                             "severity": str(finding.severity)}
    cut = 0
    if finding.related:
        flow, cut = _code_flow(finding, places, context)
        out["codeFlows"] = [flow]
    if entry.suppression is not None:
        suppression: dict[str, Any] = {"kind": _SUPPRESSION_KIND.get(entry.suppression.kind, "external")}
        if entry.suppression.justification:
            suppression["justification"] = entry.suppression.justification
        out["suppressions"] = [suppression]
    return out, cut


def _code_flow(finding: Finding, places: _Places, context: ReportContext) -> tuple[dict[str, Any], int]:
    """A thread flow per CPU: the related events that CPU ran, in line order, then (on its CPU)
    the finding's own event. Each step's state is the CPU's IRQL there; the finding's step adds
    the finding's facts. Events too far back for the engine to name their CPU form one more
    thread flow of their own."""
    facts = _state(finding, context)
    steps = [(related.location, related.message, related.cpu, related.irql, False)
             for related in sorted(finding.related, key=lambda related: (related.location.line, related.location.column))]
    steps.append((finding.location, finding.message, finding.cpu, finding.irql, True))
    total = len(steps)
    steps = steps[-MAX_THREAD_FLOW_LOCATIONS:]
    by_cpu: dict[int | None, list[dict[str, Any]]] = {}
    for location, message, cpu, irql, last in steps:
        state: dict[str, dict[str, str]] = {}
        if cpu is not None:
            state["CPU"] = {"text": str(cpu)}  # upper case: a rule's own value names are lower case
        if irql is not None:
            state["IRQL"] = {"text": irql}
        if last:
            state.update(facts)
        step: dict[str, Any] = {"location": places.at(location, message)}
        if state:
            step["state"] = state
        step["importance"] = "essential" if last else "important"
        by_cpu.setdefault(cpu, []).append(step)
    flows = []
    for cpu in sorted(by_cpu, key=lambda cpu: (cpu is None, cpu or 0)):
        flow: dict[str, Any] = {"id": f"cpu{cpu}" if cpu is not None else "cpu-unknown",
                                "message": {"text": f"CPU {cpu}" if cpu is not None else "CPU not known"},
                                "locations": by_cpu[cpu]}
        flows.append(flow)
    if total > len(steps):
        flows[-1]["message"] = {"text": f"{flows[-1]['message']['text']}: the last {len(steps):,} of {total:,} events"}
    return {"threadFlows": flows}, int(total > len(steps))


def _state(finding: Finding, context: ReportContext) -> dict[str, dict[str, str]]:
    """The finding's facts as SARIF state, each written as the rule's message writes it
    (`{list:#x}` gives 0xb000)."""
    rule = context.rulebook.rules.get(finding.code)
    specs = _format_specs(rule) if rule is not None else {}
    return {name: {"text": _fact_text(value, specs.get(name, ""))} for name, value in finding.facts.items()}


def _format_specs(rule: Rule) -> dict[str, str]:
    """The format spec each value name has in the rule's message templates."""
    specs: dict[str, str] = {}
    for template in _templates(rule.doc):
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError:
            continue
        for _, field, spec, _ in parsed:
            if field and spec and field not in specs:
                specs[field] = spec
    return specs


def _templates(node: Any, key: str | None = None) -> Iterable[str]:
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name != "tests":
                yield from _templates(value, name)
    elif isinstance(node, list):
        for item in node:
            yield from _templates(item, key)
    elif isinstance(node, str) and key == "message":
        yield node


def _fact_text(value: Any, spec: str) -> str:
    """A fact as text, the way rule messages show values."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int) and spec:
        try:
            return format(value, spec)
        except ValueError:
            return str(value)
    if isinstance(value, Mapping) and "line" in value:
        return f"line {value['line']}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fact_text(item, "") for item in value)
    return str(value)


# --- what the run met besides findings ---------------------------------------------------------


def _file_notifications(result: RunResult, index: Mapping[str, int], places: _Places) -> list[dict[str, Any]]:
    """For each trace in turn: why it could not be checked, its warnings and unparsed lines in
    line order, and whether the run stopped before its end; then baseline entries that matched
    nothing."""
    notes: list[dict[str, Any]] = []
    for file in result.files:
        if file.error is not None:
            where = file.error.location
            notes.append({
                "level": "error",
                "message": {"text": f"not checked: {file.error.message}"},
                "locations": [places.at(where) if where is not None and where.line >= 1 else places.location(file.path, 0)],
            })
        events: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for warning in file.warnings:
            loc = warning.location
            level = warning.severity if warning.severity in ("error", "warning", "note") else "warning"
            events.append(((loc.line, loc.column), {
                "level": level,
                "message": {"text": warning.message},
                "locations": [places.at(loc)],
            }))
        unparsed = [f for f in file.findings if f.code == SYNTAX_ERROR]
        unparsed += [s.finding for s in getattr(file, "suppressed", None) or () if s.finding.code == SYNTAX_ERROR]
        for finding in unparsed:
            loc = finding.location
            note: dict[str, Any] = {
                "level": "error",
                "message": {"text": f"line not parsed: {finding.message}"},
                "locations": [places.at(loc)],
            }
            rule = {"id": SYNTAX_ERROR, "index": index[SYNTAX_ERROR]} if SYNTAX_ERROR in index else {"id": SYNTAX_ERROR}
            note["associatedRule"] = rule
            events.append(((loc.line, loc.column), note))
        notes += [note for _, note in sorted(events, key=lambda event: event[0])]
        if file.error is None and not file.complete:
            notes.append({
                "level": "warning",
                "message": {"text": "not checked to its end: the run stopped at the limit of unparsed lines (--max-errors)"},
                "locations": [places.location(file.path, 0)],
            })
    for stale in getattr(result, "stale_baseline", None) or ():
        notes.append({"level": "note", "message": {"text": f"baseline entry {stale} matched no finding"}})
    return notes
