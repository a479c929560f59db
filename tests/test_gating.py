"""Gating a CI pipeline: --fail-on, inline suppressions, baselines, configuration, several outputs."""

from __future__ import annotations

import json

import pytest

from checker import cli

LEAK = "cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, Tag=0x41414141) -> 0x5000\n"
DOUBLE_FREE = (
    "cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, Tag=0x41414141) -> 0x6000\n"
    "cpu=0 irql=PASSIVE call ExFreePoolWithTag(P=0x6000, Tag=0x41414141)\n"
    "{comment}cpu=0 irql=PASSIVE call ExFreePoolWithTag(P=0x6000, Tag=0x41414141)\n"
)


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configuration file above a temporary directory
    return tmp_path


def write(path, text):
    path.write_text("@dmatrace 1\n" + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("fail_on, status", [(None, 0), ("warning", 1), ("note", 1), ("error", 0), ("never", 0)])
def test_fail_on_sets_the_severity_that_fails(capsys, workdir, fail_on, status):
    trace = write(workdir / "leak.trace", LEAK)  # one POOL005 warning
    flags = [] if fail_on is None else ["--fail-on", fail_on]
    assert run(capsys, "check", *flags, trace)[0] == status


def test_fail_on_never_passes_errors_but_not_a_failed_run(capsys, workdir):
    trace = write(workdir / "df.trace", DOUBLE_FREE.format(comment=""))
    assert run(capsys, "check", "--fail-on", "never", trace)[0] == 0
    assert run(capsys, "check", "--fail-on", "never", workdir / "missing.trace")[0] == 2


def test_an_inline_suppression_hides_a_finding_and_keeps_its_reason(capsys, workdir):
    trace = write(workdir / "df.trace", DOUBLE_FREE.format(comment="# dmalint: ignore[POOL001] the harness frees twice on purpose\n"))
    status, out, _ = run(capsys, "check", "--format", "json", trace)
    report = json.loads(out)
    assert status == 0 and report["findings"] == []
    (hidden,) = report["suppressed"]
    assert hidden["code"] == "POOL001" and hidden["line"] == 5
    assert hidden["suppression"] == {"kind": "inline", "justification": "the harness frees twice on purpose"}
    assert report["summary"]["suppressed"] == 1


def test_a_suppression_by_name_or_family_works_and_one_that_hides_nothing_is_reported(capsys, workdir):
    for names in ("pool-double-free", "POOL", "SGL003,POOL001"):
        trace = write(workdir / "df.trace", DOUBLE_FREE.format(comment=f"# dmalint: ignore[{names}] known\n"))
        status, out, _ = run(capsys, "check", "--fail-on", "warning", trace)
        assert status == 0, (names, out)
    trace = write(workdir / "df.trace", DOUBLE_FREE.format(comment="") + "# dmalint: ignore[POOL001] stale\n" + LEAK.replace("0x5000", "0x7000"))
    status, out, _ = run(capsys, "check", "--select", "TRACE006", trace)
    assert "TRACE006 [warning] suppression ignore[POOL001] hides nothing: no POOL001 finding on line 6: remove it" in out


@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])  # text and jsonl alone stream; pruning still follows
def test_baseline_round_trip_survives_inserted_lines_and_lists_what_is_gone(capsys, workdir, fmt):
    trace = write(workdir / "t.trace", DOUBLE_FREE.format(comment="") + LEAK)
    baseline = workdir / "baseline.json"
    status, _, err = run(capsys, "check", "--write-baseline", baseline, trace)
    assert status == 0 and "wrote 2 finding(s)" in err
    assert {row["code"] for row in json.loads(baseline.read_text())["findings"]} == {"POOL001", "POOL005"}

    # lines inserted above: the same findings, hidden by the baseline
    write(trace, "# a new comment\ncpu=1 irql=PASSIVE call KeGetCurrentIrql()\n" + DOUBLE_FREE.format(comment="") + LEAK)
    status, out, _ = run(capsys, "check", "--format", "json", "--baseline", baseline, "--fail-on", "note", trace)
    report = json.loads(out)
    assert status == 0 and report["findings"] == []
    assert sorted(s["code"] for s in report["suppressed"]) == ["POOL001", "POOL005"]
    assert {s["suppression"]["kind"] for s in report["suppressed"]} == {"baseline"}

    # the double free is fixed and a new violation appears: only the new one is reported
    fixed = DOUBLE_FREE.format(comment="").splitlines(keepends=True)[:2]
    write(trace, "".join(fixed) + LEAK + "cpu=0 irql=PASSIVE call ExFreePool(P=0x9999)\n")
    status, out, _ = run(capsys, "check", "--baseline", baseline, trace)
    assert status == 1 and "POOL002" in out and "POOL001 [error]" not in out
    assert "1 entry no longer occur" in out and "POOL001 ExFreePoolWithTag frees block 0x6000 twice" in out

    status, out, err = run(capsys, "check", "--format", fmt, "--baseline", baseline, "--prune-baseline", trace)
    assert "pruned 1 stale entry" in err and status == 1 and "POOL002" in out
    assert [row["code"] for row in json.loads(baseline.read_text())["findings"]] == ["POOL005"]


def test_a_bad_baseline_is_refused_with_its_location(capsys, workdir):
    trace = write(workdir / "t.trace", LEAK)
    bad = workdir / "bad.json"
    bad.write_text('{"version": 1,\n "findings": [}\n')
    status, _, err = run(capsys, "check", "--baseline", bad, trace)
    assert status == 2 and f"{bad}:2:" in err and "not a dmalint baseline" in err
    status, _, err = run(capsys, "check", "--baseline", workdir / "none.json", trace)
    assert status == 2 and "no such file" in err


def test_configuration_in_pyproject(capsys, workdir):
    trace = write(workdir / "t.trace", DOUBLE_FREE.format(comment="") + LEAK)
    (workdir / "pyproject.toml").write_text(
        '[project]\nname = "driver-tests"\n\n[tool.dmalint]\nignore = ["POOL005"]\nfail-on = "warning"\n'
        '[tool.dmalint.severity]\nPOOL001 = "warning"\n'
    )
    status, out, _ = run(capsys, "check", trace)
    assert status == 1  # POOL001, now a warning, still fails at fail-on warning
    assert "POOL001 [warning]" in out and "POOL005" not in out
    assert run(capsys, "check", "--fail-on", "error", trace)[0] == 0  # the command line wins
    status, out, _ = run(capsys, "check", "--isolated", trace)
    assert "POOL005 [warning]" in out and "POOL001 [error]" in out


def test_dmalint_toml_and_an_unknown_key_named_with_its_line(capsys, workdir):
    trace = write(workdir / "t.trace", LEAK)
    (workdir / "dmalint.toml").write_text('select = ["POOL"]\n\nfial-on = "warning"\n')
    status, _, err = run(capsys, "check", trace)
    assert status == 2 and f"{workdir / 'dmalint.toml'}:3: unknown key 'fial-on'" in err
    (workdir / "dmalint.toml").write_text('[severity]\nPOOL999 = "note"\n')
    status, _, err = run(capsys, "check", trace)
    assert status == 2 and "severity.POOL999: no rule is called POOL999" in err
    (workdir / "dmalint.toml").write_text('fail-on = "sometimes"\n')
    status, _, err = run(capsys, "check", trace)
    assert status == 2 and ":1: fail-on must be one of error, warning, note, never" in err


def test_several_outputs_in_one_run(capsys, workdir):
    trace = write(workdir / "t.trace", DOUBLE_FREE.format(comment=""))
    status, out, _ = run(capsys, "check", "--output-format", f"json:{workdir / 'r.json'}", trace)
    assert status == 1 and "POOL001 [error]" in out  # the terminal text as well
    assert json.loads((workdir / "r.json").read_text())["findings"][0]["code"] == "POOL001"
    status, _, err = run(capsys, "check", "--output-format", "yaml:r.yaml", trace)
    assert status == 2 and "give FORMAT:FILE" in err
    status, _, err = run(capsys, "check", "--output-format", f"json:{trace}", trace)
    assert status == 2 and "refusing to overwrite" in err


def test_the_configuration_example_in_docs_ci_md_is_valid(tmp_path):
    import re

    from checker.gating.config import load_config

    from .helpers import ROOT

    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.DOTALL).group(1)
    (tmp_path / "pyproject.toml").write_text(example)
    config = load_config(tmp_path / "pyproject.toml")
    assert config.fail_on == "warning" and config.severity == {"POOL005": "error"} and config.ignore == ("POOL009",)
    assert config.baseline == tmp_path / "dmalint-baseline.json" and config.rules == (tmp_path / "dmalint-rules",)


def test_jsonl_streams_the_findings_the_json_report_has(capsys, workdir):
    (workdir / "a.trace").write_text("@dmatrace 1\n" + LEAK + DOUBLE_FREE.format(comment="") + DOUBLE_FREE.replace("0x6000", "0x7000").format(
        comment="# dmalint: ignore[POOL001] known\n"))
    (workdir / "b.trace").write_text("@dmatrace 1\ncpu=0 irql=PASSIVE cal X()\n")
    status, out, _ = run(capsys, "check", ".", "--format", "json")
    document = json.loads(out)
    status_lines, lines_out, _ = run(capsys, "check", ".", "--format", "jsonl", "--jobs", "2")
    lines = [json.loads(line) for line in lines_out.splitlines()]
    assert status == status_lines == 1
    kinds = [line.pop("type") for line in lines]
    assert kinds == ["finding"] * len(document["findings"]) + ["file", "file", "suppressed", "summary"]
    assert sorted(map(json.dumps, lines[: len(document["findings"])])) == sorted(map(json.dumps, document["findings"]))
    assert lines[-4:-2] == document["files"] and lines[-2] == document["suppressed"][0]
    summary = lines[-1]
    assert {k: summary[k] for k in document["summary"]} == document["summary"]
    assert summary["findings"] == len(document["findings"]) == 3  # POOL005, POOL001, TRACE001 (0x7000: freed, the repeat suppressed)


def test_a_streamed_run_keeps_no_finding_only_counts(workdir):
    from checker.engine.run import RunOptions, check_sources
    from checker.language.rulebook import builtin_rulebook
    from checker.reading.reader import TraceSource

    frees = "".join(f"cpu=0 irql=PASSIVE call ExFreePool(P={0x1000 + index:#x})\n" for index in range(2000))
    (workdir / "frees.trace").write_text("@dmatrace 1\n" + frees)
    seen = []
    result = check_sources([TraceSource("frees.trace", workdir / "frees.trace")], builtin_rulebook(),
                           RunOptions(sink=seen.append))
    assert result.files[0].findings == [] and len(seen) == result.files[0].total == 2000
    assert [f.location.line for f in seen] == sorted(f.location.line for f in seen)
    assert result.count(seen[0].severity) == 2000


def test_the_text_report_alone_streams_and_reads_as_when_written_at_the_end(capsys, workdir, monkeypatch):
    from checker.reporters.text import TextReport

    (workdir / "a.trace").write_text("@dmatrace 1\n" + LEAK + DOUBLE_FREE.format(comment="") + DOUBLE_FREE.replace("0x6000", "0x7000").format(
        comment="# dmalint: ignore[POOL001] known\n"))
    (workdir / "b.trace").write_text("@dmatrace 1\ncpu=0 irql=PASSIVE cal X()\n")
    (workdir / "c.trace").write_bytes(b"@dmatrace 1\ncpu=0 irql=PASSIVE call X(A=\"\xe9\")\n")  # not UTF-8: not checked
    kept = []
    finish = TextReport.finish
    monkeypatch.setattr(TextReport, "finish", lambda self, result: (kept.append(sum(len(f.findings) for f in result.files)),
                                                                     finish(self, result)))
    status, streamed, _ = run(capsys, "check", ".", "--no-color")
    assert kept == [0]  # written as found, not kept
    status_jobs, streamed_jobs, _ = run(capsys, "check", ".", "--no-color", "--jobs", "2")
    assert kept == [0, 0]
    status_end, at_the_end, _ = run(capsys, "check", ".", "--no-color", "--output-format", f"json:{workdir / 'r.json'}")
    assert kept[2] > 0  # another report wanted the findings: kept, then written
    assert status == status_jobs == status_end == 2  # c.trace could not be checked
    assert streamed == streamed_jobs == at_the_end
    lines = streamed.splitlines()
    codes = [line.split()[1] for line in lines if line.startswith(("a.trace", "b.trace")) and ": note:" not in line]
    assert codes == ["POOL001", "POOL005", "TRACE001"]  # by trace, then as found: the leak at the end of a.trace
    assert "c.trace: not checked" in streamed and lines[-1].startswith("2 files checked")
    run(capsys, "check", ".", "--no-color", "--output", workdir / "report.txt")
    assert (workdir / "report.txt").read_text(encoding="utf-8") == streamed
