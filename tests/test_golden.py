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


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_report_matches_golden(fmt, capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    status = cli.main(["check", "--no-color", "--format", fmt, "typos.trace"])
    out, err = capsys.readouterr()
    assert status == 1
    report = out.replace(__version__, "VERSION")
    golden = GOLDEN / f"typos.{fmt}"
    stderr_golden = GOLDEN / "typos.stderr"
    if os.environ.get("DMALINT_UPDATE_GOLDEN"):
        golden.write_text(report)
        stderr_golden.write_text(err)
    assert report == golden.read_text()
    assert err == stderr_golden.read_text()
