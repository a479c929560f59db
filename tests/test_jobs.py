"""`dmalint check --jobs N`: traces checked in parallel processes, the same report as one job."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from checker.engine.run import check_sources
from checker.language.rulebook import builtin_rulebook
from checker.reading.reader import TraceSource

from .helpers import TRACES


def dmalint(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "checker", *map(str, argv)], capture_output=True, text=True, cwd=cwd)


def test_jobs_give_the_same_report_in_the_same_order(tmp_path):
    for index, name in enumerate(sorted(p.name for p in TRACES.glob("*.trace")) * 2):
        shutil.copy(TRACES / name, tmp_path / f"{index:02d}-{name}")
    (tmp_path / "05-typo.trace").write_text("@dmatrace 1\ncpu=0 irql=PASSIVE cal KeGetCurrentIrql()\n")
    (tmp_path / "06-latin1.trace").write_bytes(b"@dmatrace 1\ncall B(X=\"caf\xe9\")\n")
    one = dmalint("check", "--format", "json", ".", cwd=tmp_path)
    two = dmalint("check", "--format", "json", "--jobs", "2", ".", cwd=tmp_path)
    three = dmalint("check", "--jobs", "3", "--output-format", "sarif:r.sarif", ".", cwd=tmp_path)
    assert one.returncode == two.returncode == 2  # the latin-1 trace cannot be checked
    assert one.stdout == two.stdout and one.stderr == two.stderr
    assert "TRACE001" in one.stdout and "not UTF-8" in one.stderr and "SGL003" in one.stdout
    assert three.returncode == 2 and (tmp_path / "r.sarif").is_file()


def test_an_error_limit_spans_traces_so_it_checks_in_order(tmp_path):
    for index in range(3):
        (tmp_path / f"{index}.trace").write_text("@dmatrace 1\ncal A()\ncal B()\n")
    one = dmalint("check", "--max-errors", "3", ".", cwd=tmp_path)
    two = dmalint("check", "--max-errors", "3", "--jobs", "2", ".", cwd=tmp_path)
    assert one.stdout == two.stdout and "2 files NOT checked (stopped at the error limit)" in one.stdout


def _loading_rules_is_an_error():
    raise AssertionError("a forked worker loaded the rules again")


@pytest.mark.skipif(sys.platform == "win32", reason="workers are spawned on Windows, and load the rules")
def test_forked_workers_inherit_the_rules_instead_of_loading_them(tmp_path):
    for index in range(3):
        shutil.copy(TRACES / "format-example.trace", tmp_path / f"{index}.trace")
    sources = [TraceSource(str(path), path) for path in sorted(tmp_path.glob("*.trace"))]
    result = check_sources(sources, builtin_rulebook(), jobs=2, load_rules=_loading_rules_is_an_error)
    assert [sorted(f.code for f in file.findings) for file in result.files] == [["POOL001", "POOL009", "SGL003"]] * 3
