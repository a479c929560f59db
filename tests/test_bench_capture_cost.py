"""bench/capture_cost.py: a tiny run builds the three variants, runs them under wine and gives
well-formed, positive figures (no timing is asserted). Skips when mingw or wine is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.capture_cost import INSTALL, LINES, VARIANTS, missing

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    missing() is not None, reason=f"capture kit bench needs mingw and wine: {missing()}; install: {INSTALL}"
)


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("capture-cost") / "figures.json"
    proc = subprocess.run([sys.executable, "bench/capture_cost.py", "--iterations", "50", "--rounds", "2",
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_every_run_is_well_formed(figures):
    data, _ = figures
    assert data["iterations"] == 50 and data["rounds"] == 2
    assert sorted(r["variant"] for r in data["runs"]) == sorted(list(VARIANTS) * 2)
    for run in data["runs"]:
        assert run["iterations"] == 50 and run["qpf"] > 0
        assert set(run["ops"]) == set(LINES)
        for name, op in run["ops"].items():
            assert op["ns_per_op"] > 0 and op["ns_per_call"] > 0 and "failed" not in op
            assert op["lines"] == (0 if run["variant"] == "unwrapped" else LINES[name])
            assert (op["bytes"] > 0) == (run["variant"] == "callback")


def test_summary_figures_are_positive(figures):
    data, stdout = figures
    for variant in VARIANTS:
        for name in [*LINES, "all"]:
            row = data["summary"][variant][name]
            assert row["ns_per_op"] > 0 and row["ns_per_call"] > 0 and row["x_unwrapped"] > 0
            if variant != "unwrapped":
                assert row["lines"] > 0 and row["ns_per_line_added"] is not None
            assert any(line.split()[:2] == [name, variant] for line in stdout.splitlines())
    assert "WRONG" not in stdout


def test_sample_lines_are_dmatrace(figures, tmp_path):
    data, _ = figures
    samples = data["samples"]
    assert [s["name"] for s in samples] == [n for n in LINES for _ in range(LINES[n])]
    texts = [s["text"] for s in samples]
    for needle in ("call ExAllocatePoolWithTag(", "call KeReleaseSpinLock(", "call GetDmaAlignment(",
                   "enter BuildScatterGatherList(", "callback AdapterListControl(", "call PutScatterGatherList("):
        assert any(needle in t for t in texts), needle
    trace = tmp_path / "samples.trace"
    trace.write_text('@driver name="driver.sys"\n' + "\n".join(texts) + "\n")
    proc = subprocess.run([sys.executable, "-m", "checker", "check", str(trace), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    report = json.loads(proc.stdout)
    assert report["files"][0]["unparsed_lines"] == 0
