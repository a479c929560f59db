"""The code passes the project's ruff configuration (pyproject.toml [tool.ruff])."""

import shutil
import subprocess
import sys

import pytest

from .helpers import ROOT


def test_ruff_is_clean():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode:
        pytest.skip("ruff is not installed (it comes with the test extras)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "checker", "model", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
