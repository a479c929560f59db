"""Golden reports: the text and JSON output for a fixed trace, byte for byte.

Regenerate after an intended change with `DMALINT_UPDATE_GOLDEN=1 ./scripts/test -k golden`
and review the diff.
"""

import os

import pytest

from checker import __version__, cli

from .helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif"])
@pytest.mark.parametrize("name", ["typos", "violations"])
def test_report_matches_golden(name, fmt, capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    status = cli.main(["check", "--no-color", "--format", fmt, f"{name}.trace"])
    out, err = capsys.readouterr()
    assert status == 1
    report = out.replace(__version__, "VERSION")
    report = report.replace(FIXTURES.as_uri() + "/", "file:///ROOT/")  # SARIF's %SRCROOT%: no absolute path
    golden = GOLDEN / f"{name}.{fmt}"
    stderr_golden = GOLDEN / f"{name}.stderr"
    if os.environ.get("DMALINT_UPDATE_GOLDEN"):
        golden.write_text(report)
        stderr_golden.write_text(err)
    assert report == golden.read_text()
    assert err == stderr_golden.read_text()
