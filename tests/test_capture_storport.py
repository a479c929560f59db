"""The capture kit's StorPort part (capture/dmalint_storport.*): the sample miniport compiled
with mingw, run under wine against a fake port driver (tests/capture/fake_storport.c on top of
the fake kernel), its traces checked by dmalint. Skips when the cross toolchain or wine is
missing (the same requirements, and the same helpers, as tests/test_capture_kit.py)."""

from __future__ import annotations

import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.capture_cost import GCC, INSTALL, missing

from .capture_support import CAPTURE, FLAGS, GUID_BYTES, HARNESS, Kit, dump_records

SAMPLE = CAPTURE / "samples" / "storport_miniport.c"
COMMON = [CAPTURE / "dmalint_storport.c", HARNESS / "fake_kernel.c", HARNESS / "fake_storport.c",
          HARNESS / "harness_storport.c"]
SOURCES = [SAMPLE, *COMMON]
PLANTS = ["SGL001", "SGL002", "SGL003", "POOL001", "IRQL001", "LOCK003"]
BUILD = re.compile(r"enter StorPortBuildScatterGatherList\(.*CurrentVa=(\w+),.*ScatterGatherBuffer=(\w+),")
CALLBACK = "-DDMALINT_SINK_CALLBACK"

pytestmark = pytest.mark.skipif(
    missing() is not None, reason=f"capture kit needs mingw and wine: {missing()}; install: {INSTALL}"
)


class Capture:
    """One run of the harness: its exit status, lines and dmalint's JSON report."""

    def __init__(self, kit: Kit, name: str, scenario: str = "clean") -> None:
        self.rc, text = kit.run(kit.exes[name], scenario)
        self.lines = text.splitlines()
        self.report = kit.check(text, f"{name}-{scenario}")
        self.findings = self.report["findings"]

    def line(self, number: int) -> str:
        return self.lines[number - 1]

    def planted_build(self) -> tuple[str, str, int]:
        """CurrentVa and list pointer of the last build (the request the harness tags for the plants), its line."""
        number = max(i for i, x in enumerate(self.lines, 1) if BUILD.search(x))
        current_va, sgl = BUILD.search(self.line(number)).groups()
        return current_va, sgl, number


class Runs(dict):
    """Capture by name (the clean build, each plant, `notramp`), and the kit that ran them."""

    kit: Kit


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    kit = Kit(tmp_path_factory.mktemp("capture-storport"))
    samples = {"clean": (CALLBACK,), **{p: (CALLBACK, f"-DPLANT_{p}") for p in PLANTS}}
    sinks = {"callback": (CALLBACK,), "etw": ()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        common = {sink: [pool.submit(kit.compile, source, *d) for source in COMMON] for sink, d in sinks.items()}
        drivers = {name: pool.submit(kit.compile, SAMPLE, *d) for name, d in samples.items()}
        drivers["etw"] = pool.submit(kit.compile, SAMPLE)
        common = {sink: [f.result() for f in fs] for sink, fs in common.items()}
        links = {name: pool.submit(kit.link, f"storport-{name}", [f.result(), *common["etw" if name == "etw" else "callback"]])
                 for name, f in drivers.items()}
        kit.exes = {name: f.result() for name, f in links.items()}
        out = Runs(clean=Capture(kit, "clean"))  # the first run makes the wine prefix: alone
        futures = {name: pool.submit(Capture, kit, name) for name in PLANTS}
        futures["notramp"] = pool.submit(Capture, kit, "clean", "notramp")
        out.update({name: f.result() for name, f in futures.items()})
    out.kit = kit
    return out


def _summary(findings: list[dict]) -> list[tuple]:
    return [(f["code"], f["line"], f["message"]) for f in findings]


def test_every_storport_file_compiles_with_werror():
    variants = [[]] + [[f"-DPLANT_{p}"] for p in PLANTS] + [["-DDMALINT_SINK_DBGPRINT"], [CALLBACK]]
    jobs = [(source, extra) for source in SOURCES for extra in variants
            if not extra or source in (SAMPLE, CAPTURE / "dmalint_storport.c")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(pool.map(lambda job: subprocess.run(
            [GCC, "-fsyntax-only", *FLAGS, f"-I{CAPTURE}", f"-I{HARNESS}", *job[1], str(job[0])],
            capture_output=True, text=True), jobs))
    for (source, extra), proc in zip(jobs, procs, strict=True):
        assert proc.returncode == 0, (source.name, extra, proc.stderr)


def test_clean_miniport_checks_clean(runs):
    clean = runs["clean"]
    assert clean.rc == 0, f"harness exit {clean.rc} (3: pool left allocated)"
    assert clean.report["files"][0]["unparsed_lines"] == 0
    assert clean.report["files"][0]["warnings"] == []
    assert clean.findings == [], _summary(clean.findings)
    assert clean.lines[0] == '@driver name="driver.sys"'
    # one seq number a record, directives included (they take one but do not show it)
    for number, line in enumerate(clean.lines, 1):
        assert line.startswith("@") or line.startswith(f"seq={number} "), (number, line)
    for verb in ("callback HwStorFindAdapter(", "callback HwStorPassiveInitializeRoutine(", "callback HwStorBuildIo(",
                 "call StorPortAllocateContiguousMemorySpecifyCacheNode(", "callback AdapterListControl(",
                 "leave StorPortBuildScatterGatherList -> STOR_STATUS_SUCCESS", "done HwStorStartIo -> TRUE",
                 "callback HwStorDpcRoutine(", "call StorPortAcquireSpinLock(DeviceExtension=",
                 "call StorPortFreeContiguousMemorySpecifyCache("):
        assert any(verb in x for x in clean.lines), verb
    assert any(re.search(r" sgl \w+ \[0x\w+:0x\w+, ", x) for x in clean.lines)  # a list of several elements


def test_no_line_has_an_irql_field(runs):
    for name, run in runs.items():
        assert not [x for x in run.lines if " irql=" in x], name


def test_adapter_directive_is_written_once(runs):
    for name, run in runs.items():
        directives = [x for x in run.lines if x.startswith("@adapter")]
        assert directives == ["@adapter storport dma64=TRUE scatter_gather=TRUE maximum_length=0x20000 map_registers=0x21"], name
        first_build = next(i for i, x in enumerate(run.lines) if "enter StorPortBuildScatterGatherList(" in x)
        assert run.lines.index(directives[0]) < first_build


@pytest.mark.parametrize("plant", [p for p in PLANTS if p != "SGL001"])
def test_planted_variant_gives_exactly_its_finding(runs, plant):
    run = runs[plant]
    current_va, sgl, _ = run.planted_build()
    stage = f"{int(current_va, 16) - 0x100:#x}"  # the staging block: a 0x100-byte header, then the payload
    code, text = {
        "SGL002": ("SGL002", f"call StorPortPutScatterGatherList\\(HwDeviceExtension=\\w+, ScatterGatherList={sgl}, "),
        "SGL003": ("SGL003", f"mem read {current_va} 0x4000$"),
        "POOL001": ("POOL001", f"call StorPortFreePool\\(HwDeviceExtension=\\w+, BufferPointer={stage}\\)$"),
        # StorPort's own code for a StorPort DDI at the wrong level, in HwStorPassiveInitializeRoutine
        "IRQL001": ("IRQL004", r"enter StorPortBuildScatterGatherList\(.*Length=0x1000, "),
        "LOCK003": ("LOCK003", r"done HwStorDpcRoutine$"),
    }[plant]
    assert [f["code"] for f in run.findings] == [code], _summary(run.findings)
    assert run.report["files"][0]["warnings"] == []
    assert re.search(text, run.line(run.findings[0]["line"])), run.line(run.findings[0]["line"])
    if plant == "IRQL001":
        assert run.findings[0]["irql"] == "PASSIVE_LEVEL"
        assert any("callback HwStorPassiveInitializeRoutine(" in x for x in run.lines[: run.findings[0]["line"]])
        assert "leave StorPortBuildScatterGatherList -> STOR_STATUS_INVALID_IRQL" in run.line(run.findings[0]["line"] + 1)


def test_list_never_put(runs):
    """SGL001 is an end-of-trace finding (reported at the last event; its related location is
    the planted build). What the unput list keeps (its staging block, SG buffer and MDL) cannot
    be freed without SGL009/SGL012, so it stays allocated: those leaks (MDL002, POOL005 x2) fold
    under SGL001 as its consequences, and the planted bug gives exactly one finding."""
    run = runs["SGL001"]
    _, sgl, built = run.planted_build()
    roots = [f for f in run.findings if f["consequence_of"] is None]
    assert [f["code"] for f in roots] == ["SGL001"], _summary(run.findings)
    never_put = roots[0]
    assert [r["line"] for r in never_put["related"]] == [built]
    assert f"sg list {sgl} " in never_put["message"]
    leaks = [f for f in run.findings if f is not never_put]
    assert sorted(f["code"] for f in leaks) == ["MDL002", "POOL005", "POOL005"], _summary(run.findings)
    request = max(i for i, x in enumerate(run.lines, 1) if "callback HwStorBuildIo(" in x)
    for leak in leaks:  # allocated for the planted request, and folded under its never-put list
        assert leak["consequence_of"]["fingerprint"] == never_put["fingerprint"]
        assert request < leak["related"][0]["line"] < built, _summary([leak])
    assert run.report["summary"]["findings"] == 1 and run.report["summary"]["consequences"] == 3


def test_no_memory_for_the_trampoline_is_a_lost_record(runs):
    run = runs["notramp"]
    lost = [x for x in run.lines if " lost records=" in x]
    assert len(lost) == 1 and " lost records=3 " in lost[0]  # callback, sgl and done
    assert lost[0].endswith('reason="no memory for an execution-routine trampoline: the routine\'s run is not logged"')
    assert [f["code"] for f in run.findings] == ["TRACE007"], _summary(run.findings)
    assert run.rc == 0  # the build went through all the same, and nothing was left allocated


def test_tracelogging_capture_checks_clean(runs, tmp_path):
    """The default sink: StorPortInitialize registers the provider, the unload routine the
    kit puts in front of StorPort's unregisters it (the fake closes its dump there)."""
    dump = tmp_path / "capture.dump"
    rc, _ = runs.kit.run(runs.kit.exes["etw"], "clean", {"DMALINT_ETW_DUMP": str(dump)})
    assert rc == 0
    lines = []
    for guid, _, descs in dump_records(dump.read_bytes()):
        assert guid == GUID_BYTES
        seq, text = struct.unpack("<Q", descs[2][1])[0], descs[4][1].decode("utf-8")
        assert text.startswith("@") or text.startswith(f"seq={seq} ")
        assert seq == len(lines) + 1
        lines.append(text)
    assert len(lines) == len(runs["clean"].lines)
    report = runs.kit.check("\n".join(lines) + "\n", "storport-etw")
    assert report["findings"] == [] and report["files"][0]["warnings"] == []
