"""An installed wheel works outside the checkout: grammar and rules ship as package data."""

import os
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

from .helpers import ROOT, TRACES

pytestmark = pytest.mark.slow


def test_wheel_installs_and_checks_a_trace_from_anywhere(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("dmalint-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "checker/_data/grammar/dmatrace.lark" in names
    assert "checker/_data/rules/ddi-signatures.yaml" in names
    assert "checker/_data/rules/trace/trace-syntax-error.yaml" in names
    assert "checker/reporters/templates/report.html.j2" in names  # the HTML report's templates

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(TRACES / "wdm-busmaster-clean.trace", elsewhere / "a.trace")
    (elsewhere / "typo.trace").write_text("call KeGetCurrentIrql()\ncal B()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    dmalint = str(env_dir / "bin" / "dmalint")
    clean = subprocess.run([dmalint, "check", "a.trace"], cwd=elsewhere, capture_output=True, text=True, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 file checked against" in clean.stdout
    typo = subprocess.run([dmalint, "check", "typo.trace"], cwd=elsewhere, capture_output=True, text=True, env=env)
    assert typo.returncode == 1 and "TRACE001" in typo.stdout and "Traceback" not in typo.stderr
    html = subprocess.run([dmalint, "check", "--format", "html", "-o", "report.html", "a.trace"], cwd=elsewhere,
                          capture_output=True, text=True, env=env)
    assert html.returncode == 0, html.stderr
    assert "Compliant" in (elsewhere / "report.html").read_text(encoding="utf-8")
    where = subprocess.run(
        [str(python), "-c", "import checker.resources as r; print(r.grammar_path())"], cwd=elsewhere, capture_output=True, text=True
    )
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout
