"""`dmalint check`: exit codes, messages, formats, and never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checker import cli
from checker.language.rulebook import builtin_rulebook

from .helpers import TRACES

CLEAN = (
    "@dmatrace 1\n"
    "t=0.1 cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, Tag=0x41414141) -> 0xffffb00000001000\n"
    "t=0.2 cpu=0 irql=PASSIVE call ExFreePoolWithTag(P=0xffffb00000001000, Tag=0x41414141)\n"
)
TYPO = "@dmatrace 1\nt=0.1 cpu=0 call KeGetCurrentIrql()\nt=0.2 cpu=0 cal B()\nt=0.3 cpu=0 call KeGetCurrentIrql(X=1\n"


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def tree(tmp_path):
    def write(name, content):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


def test_clean_trace_exits_0(capsys, tree):
    status, out, err = run(capsys, "check", str(tree("ok.trace", CLEAN)))
    assert status == 0
    assert out.strip() == f"1 file checked against {len(builtin_rulebook())} rules, 2 events: 0 findings, 0 unparsed lines"
    assert err == ""


def test_typo_reports_caret_and_trace001_and_exits_1(capsys, tree):
    path = tree("typo.trace", TYPO)
    status, out, err = run(capsys, "check", str(path))
    assert status == 1
    assert out.splitlines() == [
        f"{path}:3:13: TRACE001 [error] unknown verb 'cal'; did you mean 'call'?",
        f"{path}:4:38: TRACE001 [error] missing ')' to close the argument list",
        f"1 file checked against {len(builtin_rulebook())} rules, 1 event: 2 findings (2 errors), 2 unparsed lines",
    ]
    assert f"{path}:3:13: error: unknown verb 'cal'; did you mean 'call'?" in err
    assert "    t=0.2 cpu=0 cal B()\n                ^\n" in err
    assert "expected one of: ')', ','" in err
    assert "Traceback" not in out + err


def test_findings_come_trace_by_trace_in_the_order_given_then_by_line(capsys, tree):
    b = tree("b.trace", TYPO)
    a = tree("a.trace", TYPO)
    status, out, _ = run(capsys, "check", "-q", str(b), str(a))
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(b), str(b), str(a), str(a)]
    assert [int(line.split(":")[1]) for line in lines] == [3, 4, 3, 4]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.trace", b"", "the trace has no events: nothing was checked"),
        ("comments.trace", b"# only a comment\n@dmatrace 1\n", "the trace has no events"),
        ("latin1.trace", b"call A()\ncall B(X=\"caf\xe9\")\n", "2:14: error: not UTF-8 text: byte 0xe9 at byte offset 22"),
        ("utf16.trace", "call KeGetCurrentIrql()\n".encode("utf-16"), "the trace is UTF-16 text"),
        ("v2.trace", b"@dmatrace 2\ncall KeGetCurrentIrql()\n", "1:1: error: @dmatrace 2 is not a version this dmalint reads"),
    ],
)
def test_a_trace_that_cannot_be_checked_exits_2_with_one_line(capsys, tree, name, content, message):
    path = tree(name, content)
    status, out, err = run(capsys, "check", str(path))
    assert status == 2
    assert err.count("\n") == 1 and message in err and str(path) in err
    assert "NOT checked" in out


def test_missing_file_and_empty_directory_exit_2(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    status, out, err = run(capsys, "check", str(tmp_path / "nope.trace"), str(tmp_path / "empty"))
    assert status == 2
    assert f"dmalint: {tmp_path / 'nope.trace'}: error: no such file or directory" in err
    assert f"dmalint: {tmp_path / 'empty'}: error: no *.trace or *.etl files in this directory" in err


def test_one_bad_file_does_not_stop_the_others(capsys, tree):
    good = tree("good.trace", TYPO)
    status, out, _ = run(capsys, "check", str(good), str(good.parent / "missing.trace"))
    assert status == 2  # the run failed, but the readable trace was still checked
    assert out.count("TRACE001") == 2


def test_directory_is_searched_recursively_in_sorted_order(capsys, tree):
    tree("d/z.trace", TYPO)
    tree("d/sub/a.trace", TYPO)
    tree("d/notes.txt", "not a trace")
    status, out, _ = run(capsys, "check", "--format", "json", str(tree("d/z.trace", TYPO).parent))
    document = json.loads(out)
    assert [Path(f["path"]).name for f in document["files"]] == ["a.trace", "z.trace"]


def test_json_report(capsys, tree):
    path = tree("typo.trace", TYPO)
    status, out, _ = run(capsys, "check", "--format", "json", str(path))
    assert status == 1
    document = json.loads(out)
    assert document["version"] == 1 and document["tool"]["name"] == "dmalint"
    assert document["files"] == [
        {"path": str(path), "events": 1, "unparsed_lines": 2, "checked": True, "error": None, "warnings": []}
    ]
    finding = document["findings"][0]
    assert {k: finding[k] for k in ("code", "name", "severity", "path", "line", "column", "end_column")} == {
        "code": "TRACE001",
        "name": "trace-syntax-error",
        "severity": "error",
        "path": str(path),
        "line": 3,
        "column": 13,
        "end_column": 16,
    }
    assert finding["related"] == [] and finding["facts"]["text"] == "t=0.2 cpu=0 cal B()"
    assert len(finding["fingerprint"]) == 16
    summary = document["summary"]
    assert (summary["files"], summary["events"], summary["findings"], summary["errors"], summary["unparsed_lines"]) == (1, 1, 2, 2, 2)


def test_json_marks_a_file_that_could_not_be_checked(capsys, tree):
    status, out, _ = run(capsys, "check", "--format", "json", str(tree("e.trace", b"")))
    file = json.loads(out)["files"][0]
    assert status == 2 and file["checked"] is False and "no events" in file["error"]


def test_warnings_go_to_stderr_and_json(capsys, tree):
    path = tree("w.trace", "@vendor x=1\n@vendor y=2\ncall IoFreeMdl(Mdll=0x1)\n")
    status, out, err = run(capsys, "check", "--format", "json", str(path))
    assert status == 0
    assert err.count("unknown directive @vendor") == 1  # warned once
    assert "IoFreeMdl has no parameter 'Mdll' (documented: Mdl)" in err
    assert len(json.loads(out)["files"][0]["warnings"]) == 2


def test_quiet_prints_findings_only(capsys, tree):
    status, out, err = run(capsys, "check", "-q", str(tree("t.trace", TYPO)))
    assert status == 1 and err == ""
    assert len(out.splitlines()) == 2 and "unparsed" not in out


@pytest.mark.parametrize("flags, findings", [(["--max-errors", "1"], 1), (["--stop-on-first-error"], 1), (["--max-errors", "5"], 2)])
def test_stopping_early_is_never_clean(capsys, tree, flags, findings):
    first = tree("a.trace", TYPO)
    second = tree("b.trace", TYPO)
    status, out, _ = run(capsys, "check", *flags, str(first), str(second))
    assert status == 1
    if findings == 1:
        assert out.count("TRACE001") == 1
        assert "2 files NOT checked (stopped at the error limit)" in out
    else:
        assert out.count("TRACE001") == 4


def test_output_file_is_written_and_inputs_are_never_overwritten(capsys, tree, tmp_path):
    path = tree("t.trace", TYPO)
    report = tmp_path / "report.json"
    status, out, _ = run(capsys, "check", "--format", "json", "-o", str(report), str(path))
    assert status == 1 and out == "" and json.loads(report.read_text())["summary"]["findings"] == 2
    before = path.read_bytes()
    status, _, err = run(capsys, "check", "-o", str(path), str(path))
    assert status == 2 and "refusing to overwrite" in err and path.read_bytes() == before
    status, _, err = run(capsys, "check", "-o", str(tmp_path / "no" / "dir.txt"), str(path))
    assert status == 2 and "does not exist" in err


def test_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TYPO.encode())))
    status, out, _ = run(capsys, "check", "-")
    assert status == 1 and out.startswith("<stdin>:3:13: TRACE001")


def test_bad_options_exit_2(capsys, tree):
    path = str(tree("t.trace", CLEAN))
    assert cli.main([]) == 2
    for argv in (["check"], ["check", "--format", "xml", path], ["check", "--max-errors", "0", path], ["frobnicate"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2


def test_internal_error_asks_for_a_bug_report_without_traceback(capsys, tree, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(cli, "check_sources", explode)
    path = str(tree("t.trace", CLEAN))
    status, out, err = run(capsys, "check", path)
    assert status == 2
    assert "internal error: RuntimeError: model exploded" in err and "bug in dmalint" in err
    assert "Traceback" not in err and "--debug" in err
    status, out, err = run(capsys, "--debug", "check", path)
    assert status == 2 and "Traceback (most recent call last)" in err


def _console(*argv, **kwargs):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "dmalint"), *argv], capture_output=True, text=True, env=env, **kwargs)


def test_console_script_runs_the_bundled_traces():
    result = _console("check", str(TRACES))
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "files checked" in result.stdout


def test_console_script_version():
    result = _console("--version")
    assert result.returncode == 0 and result.stdout.startswith("dmalint ")


@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])
def test_a_reader_that_goes_away_ends_the_run_quietly(tmp_path, fmt):
    trace = tmp_path / "frees.trace"
    trace.write_text("@dmatrace 1\n" + "".join(f"cpu=0 irql=PASSIVE call ExFreePool(P={0x1000 + i:#x})\n" for i in range(20000)))
    command = [str(Path(sys.executable).parent / "dmalint"), "check", "--format", fmt, str(trace)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.read(10)
        process.stdout.close()  # as `| head -c 10` does
        err = process.stderr.read().decode()
    assert process.returncode in (1, 2) and err == ""  # findings (1), or the report cut short (2); nothing to say
