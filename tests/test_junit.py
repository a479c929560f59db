"""The JUnit XML report, read back with junitparser as a CI test viewer would read it."""

from __future__ import annotations

import io
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped

from checker import cli
from checker.engine.run import FileResult, RunOptions, RunResult, check_sources
from checker.findings import Finding, Severity
from checker.language.rulebook import builtin_rulebook
from checker.reading.discover import discover
from checker.reporters import FORMATS, ReportContext
from checker.reporters.junit import render
from model.location import SourceLocation

from .helpers import ROOT, TRACES, trace

FIXTURES = ROOT / "tests" / "fixtures"


def _report(paths: list[str], root: Path, options: RunOptions | None = None) -> tuple[str, object]:
    rulebook = builtin_rulebook()
    result = check_sources(discover(paths), rulebook, options or RunOptions())
    stream = io.StringIO()
    render(result, stream, ReportContext(rulebook, root=str(root)))
    return stream.getvalue(), result


def _parse(text: str) -> JUnitXml:
    return JUnitXml.fromstring(text.encode("utf-8"))


def _results(case, kind) -> list:
    return [entry for entry in case.result if isinstance(entry, kind)]


def test_registered_as_a_format():
    assert FORMATS["junit"] is render


def test_one_suite_per_trace_one_case_per_rule_one_failure_per_finding():
    text, result = _report([str(FIXTURES / "violations.trace"), str(FIXTURES / "typos.trace")], ROOT)
    xml = _parse(text)
    rules = len(builtin_rulebook())
    suites = list(xml)
    assert [s.name for s in suites] == ["tests/fixtures/violations.trace", "tests/fixtures/typos.trace"]
    for suite, file in zip(suites, result.files, strict=True):
        cases = list(suite)
        assert len(cases) == rules == suite.tests
        assert len({(c.classname, c.name) for c in cases}) == rules
        failures = [f for c in cases for f in _results(c, Failure)]
        assert len(failures) == len(file.findings) == suite.failures > 0
        assert suite.errors == 0 and suite.skipped == 0
        assert sum(1 for c in cases if c.is_passed) == rules - len({f.code for f in file.findings})
    assert xml.tests == 2 * rules
    assert xml.failures == len(result.findings) == 9


def test_failure_carries_message_code_location_and_related_events():
    text, result = _report([str(FIXTURES / "violations.trace")], FIXTURES)
    suite = next(iter(_parse(text)))
    assert suite.name == "violations.trace"
    case = next(c for c in suite if c.name == "SGL002 sgl-double-put")
    assert case.classname == "dmalint.sgl"
    (failure,) = _results(case, Failure)
    finding = next(f for f in result.findings if f.code == "SGL002")
    assert failure.message == finding.message
    assert failure.type == "SGL002"
    lines = failure.text.splitlines()
    assert lines[0].startswith("violations.trace:10:1: error: SGL002 ")
    assert lines[1:] == ["  violations.trace:6:1: note: sg list 0xb000 built here", "  violations.trace:9:1: note: first put here"]
    # a rule the trace keeps is a passing test: it was checked
    clean = next(c for c in suite if c.name.startswith("POOL009 "))
    assert clean.is_passed and clean.classname == "dmalint.pool"


def test_clean_traces_pass_every_case():
    text, _ = _report([str(TRACES / "wdm-busmaster-clean.trace"), str(TRACES / "storport-miniport-clean.trace")], ROOT)
    xml = _parse(text)
    assert xml.failures == xml.errors == xml.skipped == 0
    assert all(case.is_passed for suite in xml for case in suite)
    assert [s.name for s in xml] == ["traces/wdm-busmaster-clean.trace", "traces/storport-miniport-clean.trace"]


def test_a_trace_that_cannot_be_checked_is_an_error_on_every_case(tmp_path):
    (tmp_path / "latin1.trace").write_bytes(b"@dmatrace 1\ncall KeGetCurrentIrql() # caf\xe9\n")
    (tmp_path / "ok.trace").write_bytes(trace("""
        @dmatrace 1
        cpu=0 irql=PASSIVE call KeGetCurrentIrql()
    """))
    text, result = _report([str(tmp_path)], tmp_path)
    assert result.files[0].error is not None and result.files[1].error is None
    bad, good = _parse(text)
    assert bad.name == "latin1.trace" and good.name == "ok.trace"
    assert bad.errors == bad.tests == len(builtin_rulebook())
    for case in bad:
        (error,) = _results(case, Error)
        assert error.type == "NotUtf8Error"
        assert "not checked" in error.message and "UTF-8" in error.message
    assert good.errors == 0 and all(case.is_passed for case in good)


def test_a_trace_not_checked_to_its_end_skips_the_rules_that_found_nothing(tmp_path):
    (tmp_path / "a.trace").write_text("@dmatrace 1\ncal B()\ncall KeGetCurrentIrql()\n")
    (tmp_path / "b.trace").write_text("@dmatrace 1\ncall KeGetCurrentIrql()\n")
    text, result = _report([str(tmp_path)], tmp_path, RunOptions(max_errors=1))
    first, second = _parse(text)
    rules = len(builtin_rulebook())
    assert first.failures == 1 and first.skipped == rules - 1
    (syntax,) = [c for c in first if c.is_failure]
    assert syntax.name == "TRACE001 trace-syntax-error" and not _results(syntax, Skipped)
    assert second.skipped == second.tests == rules and second.failures == 0


def test_text_is_escaped_and_kept_valid_xml(tmp_path):
    (tmp_path / "weird.trace").write_bytes(b'@dmatrace 1\ncpu=0 irql=PASSIVE call <script>&"x"(A=1)\ncpu=0 call \x01bad(\n')
    text, result = _report([str(tmp_path / "weird.trace")], tmp_path)
    assert "<script>" not in text and "&lt;script&gt;&amp;" in text and "\x01" not in text
    xml = _parse(text)  # parses: nothing XML 1.0 forbids got through
    failures = [f for suite in xml for case in suite for f in _results(case, Failure)]
    assert len(failures) == len(result.findings) == 2
    assert failures[0].message == "unexpected '<script>&\"x\"(A=1)'"
    assert "U+0001" in failures[1].message
    assert "<script>" in failures[0].text


def test_output_is_deterministic():
    first, _ = _report([str(TRACES)], ROOT)
    second, _ = _report([str(TRACES)], ROOT)
    assert first == second
    assert "timestamp" not in first and "hostname" not in first
    assert first.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="dmalint"')


def test_cli_writes_junit(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    status = cli.main(["check", "--format", "junit", "violations.trace"])
    out, _ = capsys.readouterr()
    assert status == 1
    xml = _parse(out)
    assert xml.failures == 6 and [s.name for s in xml] == ["violations.trace"]


def test_characters_xml_forbids_are_written_visibly():
    rulebook = builtin_rulebook()
    finding = Finding("POOL001", "pool-double-free", Severity.ERROR, "bad \x01 byte <b>", SourceLocation("x.trace", 3, 1, 2))
    result = RunResult(files=[FileResult("x.trace", events=1, findings=[finding])], rules=len(rulebook))
    stream = io.StringIO()
    render(result, stream, ReportContext(rulebook, root="."))
    (failure,) = [f for suite in _parse(stream.getvalue()) for case in suite for f in _results(case, Failure)]
    assert failure.message == "bad \\x01 byte <b>"
    assert failure.text == "x.trace:3:1: error: POOL001 bad \\x01 byte <b>"
