"""The JUnit XML report, for CI test viewers (Jenkins, GitLab, Azure DevOps, GitHub actions).

One `testsuite` per trace (named by its path), one `testcase` per enabled rule in it
(classname `dmalint.<family>`, name `CODE name`), so a rule the trace keeps is a passing test
and a reviewer sees everything that was checked. Each finding is a `failure` of its rule's
testcase (`message` the finding's message, `type` its code, text `path:line:col` and the
related events, then the consequences folded under it); the `failures` counts are counts of
findings, consequences not included.

A trace that could not be checked (unreadable, not UTF-8, ...) puts an `error` on every one of
its testcases rather than one on the testsuite: `error` directly under `testsuite` is not in
the JUnit schema and Jenkins, GitLab and Azure DevOps drop it, so the trace would look clean;
errors on the testcases are shown by every viewer, counted in the totals, and keep each rule's
history continuous across runs. A trace the run did not check to its end (`--max-errors`)
marks the rules that found nothing in it `skipped`, since they were not checked to the end.

The output is deterministic: no timestamps, no host names, `time="0"`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from .. import __version__
from ..engine.run import FileResult, RunResult
from ..findings import Finding
from ..language.rulebook import Rule, Rulebook
from .context import ReportContext
from .report_paths import shown_path

__all__ = ["enabled_rules", "render", "to_element"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ALWAYS_ON = "TRACE001"


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters it forbids are written as `\\xNN`."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def enabled_rules(rulebook: Rulebook, context: ReportContext) -> list[Rule]:
    """The rules the run checked: the rulebook, narrowed to `context.selection` when the
    context carries one (`--select`/`--ignore`; TRACE001 and TRACE007 are always on)."""
    selection = getattr(context, "selection", None)
    if selection is None:
        return list(rulebook)
    return [rule for rule in rulebook if rule.code in selection or rule.code == ALWAYS_ON]


def _case_names(rule: Rule | None, code: str, finding: Finding | None) -> tuple[str, str]:
    if rule is not None:
        return f"dmalint.{rule.family.lower()}", f"{rule.code} {rule.name}"
    family = re.sub(r"\d+$", "", code).lower() or "rules"
    return f"dmalint.{family}", f"{code} {finding.name if finding else ''}".rstrip()


def _failure_text(finding: Finding, root: str, consequences: list[Finding] = ()) -> str:  # type: ignore[assignment]
    loc = finding.location
    lines = [f"{shown_path(loc.path, root)}:{loc.line}:{loc.column}: {finding.severity}: {finding.code} {finding.message}"]
    for related in finding.related:
        at = related.location
        lines.append(f"  {shown_path(at.path, root)}:{at.line}:{at.column}: note: {related.message}")
    for consequence in consequences:
        at = consequence.location
        lines.append(f"  {shown_path(at.path, root)}:{at.line}:{at.column}: note: consequence: "
                     f"{consequence.code} {consequence.message}")
    return "\n".join(lines)


def _counts(element: ET.Element, tests: int, failures: int, errors: int, skipped: int) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", str(errors))
    element.set("skipped", str(skipped))
    element.set("time", "0")


def _suite(file: FileResult, rules: list[Rule], context: ReportContext) -> tuple[ET.Element, tuple[int, int, int, int]]:
    root = context.root
    suite = ET.Element("testsuite", {"name": _xml_text(shown_path(file.path, root))})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("dmalint.version", __version__),
        ("events", file.events),
        ("unparsed_lines", file.unparsed_lines),
        ("checked", "true" if file.checked else "false"),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})

    by_code: dict[str, list[Finding]] = {}
    folded: dict[str, list[Finding]] = {}  # consequences by their root's fingerprint: told in the root's failure
    for finding in sorted(file.findings, key=lambda f: f.sort_key):
        if finding.consequence_of is not None:
            folded.setdefault(finding.consequence_of.fingerprint, []).append(finding)
        else:
            by_code.setdefault(finding.code, []).append(finding)
    known = {rule.code: rule for rule in rules}
    codes = sorted(set(known) | set(by_code))

    failures = errors = skipped = 0
    for code in codes:
        rule = known.get(code)
        found = by_code.get(code, [])
        classname, name = _case_names(rule, code, found[0] if found else None)
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _xml_text(name), "time": "0"})
        for finding in found:
            failure = ET.SubElement(case, "failure", {"message": _xml_text(finding.message), "type": finding.code})
            failure.text = _xml_text(_failure_text(finding, root, folded.get(finding.fingerprint, [])))
            failures += 1
        if file.error is not None:
            error = ET.SubElement(case, "error", {"message": _xml_text(f"trace not checked: {file.error.message}"),
                                                  "type": type(file.error).__name__})
            error.text = _xml_text(str(file.error))
            errors += 1
        elif not file.complete and not found:
            ET.SubElement(case, "skipped", {"message": "not checked to the end of the trace: the run stopped at the error limit"})
            skipped += 1

    if file.warnings:
        system_err = ET.SubElement(suite, "system-err")
        system_err.text = _xml_text("\n".join(
            f"{shown_path(file.path, root)}:{w.location.line}:{w.location.column}: warning: {w.message}" for w in file.warnings
        ))
    counts = (len(codes), failures, errors, skipped)
    _counts(suite, *counts)
    return suite, counts


def to_element(result: RunResult, context: ReportContext) -> ET.Element:
    """The report as an ElementTree `testsuites` element."""
    rules = enabled_rules(context.rulebook, context)
    suites = ET.Element("testsuites", {"name": "dmalint"})
    totals = [0, 0, 0, 0]
    for file in result.files:
        suite, counts = _suite(file, rules, context)
        suites.append(suite)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    _counts(suites, *totals)
    return suites


def render(result: RunResult, stream: TextIO, context: ReportContext) -> None:
    element = to_element(result, context)
    ET.indent(element, space="  ")
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(element, encoding="unicode"))
    stream.write("\n")
