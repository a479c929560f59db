"""bench/generate.py: generated traces are clean under every rule except the violations it
injects, whose counts it reports exactly; its state stays bounded; it is deterministic."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from bench.generate import END_LEAK, INJECTIONS, KINDS, expected_path, generate, load_manifest, write_trace

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3)
EVENTS = 2500
EVERY = 4  # often enough that every kind of injection occurs in a small trace


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> tuple[dict, dict]:
    """Several seeds of each kind (and a larger WDM trace, for refused builds), checked by
    `python -m checker check DIR --format json` in one run: (manifests, findings by path)."""
    folder = tmp_path_factory.mktemp("generated")
    manifests = {}
    for kind in KINDS:
        for seed in SEEDS:
            manifest = generate(folder / f"{kind}-{seed}.trace", EVENTS, seed=seed, kind=kind, every=EVERY)
            manifests[Path(manifest.path).name] = manifest
    manifest = generate(folder / "wdm-large.trace", 25_000, seed=7, kind="wdm", every=50)
    manifests[Path(manifest.path).name] = manifest
    run = subprocess.run([sys.executable, "-m", "checker", "check", str(folder), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)
    found: dict[str, Counter] = {name: Counter() for name in manifests}
    for finding in report["findings"]:
        found[Path(finding["path"]).name][finding["code"]] += 1
    files = {Path(file["path"]).name: file for file in report["files"]}
    return manifests, {"found": found, "files": files, "stderr": run.stderr}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_findings_are_exactly_the_injected_ones(checked, kind, seed):
    manifests, result = checked
    name = f"{kind}-{seed}.trace"
    manifest = manifests[name]
    assert dict(result["found"][name]) == manifest.findings
    file = result["files"][name]
    assert file["checked"] and file["unparsed_lines"] == 0 and not file["warnings"]
    assert file["events"] == manifest.events >= EVENTS


@pytest.mark.slow
def test_refused_builds_and_a_larger_trace_are_clean_too(checked):
    manifests, result = checked
    manifest = manifests["wdm-large.trace"]
    assert manifest.refused > 0  # builds the HAL refuses (too many pages for the 32-bit card) draw nothing
    assert dict(result["found"]["wdm-large.trace"]) == manifest.findings
    assert result["files"]["wdm-large.trace"]["events"] == manifest.events


@pytest.mark.slow
def test_every_injection_kind_is_counted(checked):
    manifests, _ = checked
    for kind, families in (("storport", ("storport",)), ("wdm", ("wdm",)), ("mixed", ("storport", "wdm"))):
        codes = set().union(*(manifests[f"{kind}-{seed}.trace"].findings for seed in SEEDS))
        for family in families:
            assert set(INJECTIONS[family]) <= codes, (kind, family)
        assert set(END_LEAK) <= codes
    manifest = manifests["storport-1.trace"]
    injected = (manifest.requests - 1) // EVERY  # the last request is the one left unfreed at the end
    assert sum(manifest.findings.values()) == injected + sum(END_LEAK.values())


def test_the_manifest_is_written_next_to_the_trace(tmp_path):
    manifest = generate(tmp_path / "a.trace", 500, seed=5, kind="mixed")
    assert expected_path(tmp_path / "a.trace") == tmp_path / "a.trace.expected.json"
    assert load_manifest(tmp_path / "a.trace") == manifest
    text = (tmp_path / "a.trace").read_text()
    assert manifest.bytes == len(text.encode()) and manifest.lines == text.count("\n")
    assert not (tmp_path / "b.trace.expected.json").exists()
    generate(tmp_path / "b.trace", 500, sidecar=False)
    assert not (tmp_path / "b.trace.expected.json").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_line_mix_of_real_captures(kind):
    out = io.StringIO()
    manifest = write_trace(out, 4000, seed=2, kind=kind, style="fields", every=10)
    text = out.getvalue()
    events = [line for line in text.splitlines() if line and not line.startswith(("#", "@"))]
    assert len(events) == manifest.events
    verbs = Counter(re.search(r"irql=\S+ (\w+)", line).group(1) for line in events)
    assert set(verbs) == {"call", "enter", "leave", "callback", "done", "mem", "dma", "mdl", "sgl"}
    assert verbs["call"] > verbs["mdl"] > 0 and verbs["dma"] > verbs["sgl"]
    for shape in (" mem read ", " mem write ", " dma read ", " dma write ", " fill=0x", "    # ", "\n# --- "):
        assert shape in text, shape
    cpus = {int(cpu) for cpu in re.findall(r" cpu=(\d+) ", text)}
    assert cpus == {0, 1, 2, 3}
    if kind != "storport":
        assert " data=" in text and " tid=0x" in text and "call KeAcquireSpinLock(" in text
    if kind != "wdm":
        assert "callback HwStorStartIo(" in text and "SpinLock=InterruptLock" in text
    if kind == "wdm":
        assert re.search(r"sgl \S+ \[[^]]*0x7f[89a-f][0-9a-f]{5}:", text)  # pages above 4 GiB through map registers


def test_wpp_prefixes_on_some_traces_context_fields_on_others():
    wpp, fields = io.StringIO(), io.StringIO()
    assert write_trace(wpp, 300, seed=1, kind="storport", style="wpp").style == "wpp"
    assert write_trace(fields, 300, seed=1, kind="storport", style="fields").style == "fields"
    event = re.compile(r"^\[[0-3]\][0-9A-F]{4}\.[0-9A-F]{4}::11/21/2026-\d\d:\d\d:\d\d\.\d{6} \[nvmemini\] irql=\w+ \w+ ")
    lines = [line for line in wpp.getvalue().splitlines() if line and line[0] not in "#@"]
    assert lines and all(event.match(line) for line in lines)
    assert all(line.startswith("t=") for line in fields.getvalue().splitlines() if line and line[0] not in "#@")
    styles = {generate_style(seed, kind) for seed in range(4) for kind in KINDS}
    assert styles == {"wpp", "fields"}


def generate_style(seed: int, kind: str) -> str:
    return write_trace(io.StringIO(), 10, seed=seed, kind=kind).style


def test_deterministic_by_seed():
    first, again, other = io.StringIO(), io.StringIO(), io.StringIO()
    write_trace(first, 2000, seed=9, kind="mixed")
    write_trace(again, 2000, seed=9, kind="mixed")
    write_trace(other, 2000, seed=10, kind="mixed", style=write_trace(io.StringIO(), 1, seed=9, kind="mixed").style)
    assert first.getvalue() == again.getvalue()
    assert first.getvalue() != other.getvalue()


def test_state_stays_bounded_while_generating():
    """Ten times the events take about the same memory: lines stream out, requests and
    addresses come from bounded pools."""

    class Sink(io.TextIOBase):
        def write(self, text: str) -> int:
            return len(text)

    peaks = []
    for events in (10_000, 100_000):
        tracemalloc.start()
        manifest = write_trace(Sink(), events, seed=3, kind="mixed")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert manifest.events >= events
    assert peaks[1] < peaks[0] * 1.3 + 200_000, peaks


@pytest.mark.slow
def test_the_command_line(tmp_path):
    out = tmp_path / "cli.trace"
    run = subprocess.run([sys.executable, "bench/generate.py", "--events", "300", "--seed", "4", "--kind", "wdm", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    manifest = load_manifest(out)
    assert manifest.kind == "wdm" and manifest.seed == 4 and manifest.events >= 300
    assert f"{manifest.events:,} events" in run.stderr
