"""The capture kit (capture/): compiled with mingw, run under wine against a fake kernel,
its traces checked by dmalint. Skips when the cross toolchain or wine is missing."""

from __future__ import annotations

import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.capture_cost import GCC, INSTALL, find_wine, missing

from .capture_support import CAPTURE, FLAGS, GUID_BYTES, HARNESS, Kit, dmalint_check, dump_records

PLANTS = ["SGL001", "SGL002", "SGL003", "POOL001", "IRQL001", "LOCK003"]

pytestmark = pytest.mark.skipif(
    missing() is not None, reason=f"capture kit needs mingw and wine: {missing()}; install: {INSTALL}"
)

SCENARIOS = ["clean", "v1", "v2", "v3", "fail", "defer", "notramp", "longline"]


@pytest.fixture(scope="session")
def kit(tmp_path_factory):
    k = Kit(tmp_path_factory.mktemp("capture-kit"))
    # one wine server for the session: each run then starts in a tenth of a second, not half a second
    server = Path(find_wine()).with_name("wineserver")
    server = str(server) if server.exists() else "wineserver"
    subprocess.run([server, "-p"], env=k.env, capture_output=True)
    callback = "-DDMALINT_SINK_CALLBACK"
    sinks = {"callback": (callback,), "etw": ()}  # the kit, the fake kernel and the harness, per sink
    samples = {"clean": (), **{p: (f"-DPLANT_{p}",) for p in PLANTS}}
    kit_sources = [CAPTURE / "dmalint_capture.c", HARNESS / "fake_kernel.c", HARNESS / "harness.c"]
    sample = CAPTURE / "samples" / "wdm_busmaster.c"
    with ThreadPoolExecutor(max_workers=4) as pool:
        common = {sink: [pool.submit(k.compile, src, *d) for src in kit_sources] for sink, d in sinks.items()}
        drivers = {name: pool.submit(k.compile, sample, *d) for name, d in samples.items()}
        common = {sink: [f.result() for f in fs] for sink, fs in common.items()}
        builds = {name: (f.result(), "callback") for name, f in drivers.items()}
        builds.update({"etw": (builds["clean"][0], "etw"), "etw_POOL001": (builds["POOL001"][0], "etw")})
        links = {name: pool.submit(k.link, name, [obj, *common[sink]]) for name, (obj, sink) in builds.items()}
        k.exes = {name: f.result() for name, f in links.items()}
    k.capture_all({**{s: ("clean", s) for s in SCENARIOS}, **{p: (p, "clean") for p in PLANTS}})
    yield k
    subprocess.run([server, "-k"], env=k.env, capture_output=True)


def _clean(kit: Kit, scenario: str) -> list[str]:
    rc, lines, report = kit.captured_run(scenario)
    assert rc == 0, f"harness exit {rc} (3: pool left allocated, 4: the HAL got the wrapper adapter)"
    assert report["files"][0]["unparsed_lines"] == 0
    assert report["files"][0]["warnings"] == []
    found = report["findings"]
    assert found == [], [(f["code"], f["line"], f["message"]) for f in found]
    return lines


def test_every_capture_file_compiles_with_werror():
    files = sorted(CAPTURE.rglob("*.c"))
    assert files
    for f in files:
        proc = subprocess.run([GCC, "-fsyntax-only", *FLAGS, f"-I{CAPTURE}", f"-I{f.parent}", str(f)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_legacy_export_is_refused(tmp_path):
    src = tmp_path / "legacy.c"
    src.write_text('#include <wdm.h>\n#include "dmalint_capture.h"\n'
                   "void f(PADAPTER_OBJECT a, PMDL m, PVOID b, PVOID va, PULONG l)"
                   "{ (void)IoMapTransfer(a, m, b, va, l, TRUE); }\n")
    proc = subprocess.run([GCC, "-fsyntax-only", *FLAGS, f"-I{CAPTURE}", str(src)], capture_output=True, text=True)
    assert proc.returncode != 0 and "call Adapter->DmaOperations->MapTransfer" in proc.stderr


def test_clean_wdm_sample(kit):
    lines = _clean(kit, "clean")
    assert lines[0] == '@driver name="driver.sys"'
    assert re.match(r"seq=2 cpu=0 tid=16 irql=PASSIVE_LEVEL call IoGetDmaAdapter\(", lines[1])
    seqs = [int(m.group(1)) for m in (re.match(r"seq=(\d+) ", x) for x in lines) if m]
    assert seqs == list(range(2, len(lines) + 1))
    assert any("done AdapterControl -> DeallocateObjectKeepRegisters" in x for x in lines)
    assert any(re.search(r"mdl \S+ va=\S+ offset=0x9d0 bytes=0x3000 pfns=\[", x) for x in lines)


@pytest.mark.parametrize("plant", PLANTS)
def test_planted_variant(kit, plant):
    rc, lines, report = kit.captured_run(plant)
    found = report["findings"]
    roots = [f for f in found if f["consequence_of"] is None]
    assert len(roots) == 1, [(f["code"], f["line"], f["message"]) for f in roots]
    root = roots[0]
    line = lines[root["line"] - 1]
    if plant == "SGL001":
        # The list never put is reported where that first matters: the driver frees its MDL
        # right after the put it skipped ("call PutScatterGatherList first"). What the same lost
        # list causes later (its buffer built on again, the PutDmaAdapter, SGL001 at the end)
        # folds under that one finding as consequences.
        assert root["code"] == "SGL012" and "call IoFreeMdl(" in line, (root["code"], line)
        assert "enter BuildScatterGatherList(" in lines[root["facts"]["built"] - 1]
        assert "call PutScatterGatherList(" not in lines[root["line"] - 2]  # the skipped put
        never_put = [f for f in found if f["code"] == "SGL001"]
        assert len(never_put) == 1 and never_put[0]["related"][0]["line"] == root["facts"]["built"]
        assert {f["code"] for f in found} == {"ADP001", "SGL001", "SGL003", "SGL010", "SGL012"}
        assert all(f["consequence_of"]["fingerprint"] == root["fingerprint"] for f in found if f is not root)
        assert report["files"][0]["path"] and rc == 0
        return
    assert [f["code"] for f in found] == [plant], [(f["code"], f["line"], f["message"]) for f in found]
    expected = {"SGL002": "call PutScatterGatherList(", "SGL003": "mem read ", "POOL001": "call ExFreePoolWithTag(",
                "IRQL001": "enter BuildScatterGatherList(", "LOCK003": "done DpcForIsr"}[plant]
    assert expected in line, line


def test_v1_and_v2_tables(kit):
    lines = _clean(kit, "v1")
    assert not any("BuildScatterGatherList" in x for x in lines)
    assert any("call MapTransfer(" in x for x in lines)
    lines = _clean(kit, "v2")
    assert any("enter BuildScatterGatherList(" in x for x in lines)


def test_v3_table(kit):
    # exit 0: every operation reached the HAL with its own adapter, the slot the kit does not
    # log (FlushDmaBuffer) got its arguments intact, and the cancelled request's trampoline was freed
    lines = _clean(kit, "v3")
    assert any("call GetDmaAdapterInfo(" in x for x in lines)
    assert any("enter BuildScatterGatherListEx(" in x and "Offset=0x200" in x for x in lines)
    assert any(x.endswith("leave BuildScatterGatherListEx -> STATUS_SUCCESS") for x in lines)
    assert any(re.search(r"leave BuildScatterGatherListEx -> STATUS_SUCCESS \(ScatterGatherList=>0x[0-9a-f]+\)$", x)
               for x in lines)
    assert any("call CancelAdapterChannel(" in x and x.endswith("-> TRUE") for x in lines)
    assert not any("FlushDmaBuffer" in x for x in lines)


def test_no_memory_for_a_trampoline_loses_the_routine_run(kit):
    rc, lines, report = kit.captured_run("notramp")
    assert rc == 0
    lost = [x for x in lines if " lost records=" in x]
    assert len(lost) == 1 and " lost records=3 " in lost[0]  # callback, sgl and done
    assert [f["code"] for f in report["findings"]] == ["TRACE007"]


def test_failing_build_is_clean_and_frees_trampoline(kit):
    lines = _clean(kit, "fail")  # exit 0: no pool left, the trampoline included
    assert any("leave BuildScatterGatherList -> STATUS_INSUFFICIENT_RESOURCES" in x for x in lines)


def test_deferred_callback_on_another_cpu(kit):
    lines = _clean(kit, "defer")
    leave = max(i for i, x in enumerate(lines) if "leave BuildScatterGatherList" in x)
    callbacks = [i for i, x in enumerate(lines) if "callback AdapterListControl" in x]
    assert callbacks[-1] > leave and " cpu=1 " in lines[callbacks[-1]]


def test_too_long_line_becomes_lost(kit):
    rc, lines, report = kit.captured_run("longline")
    lost = [x for x in lines if " lost records=1 " in x]
    assert lost and 'reason="line longer than DMALINT_LINE_MAX (1024 bytes)"' in lost[0]
    codes = [f["code"] for f in report["findings"]]
    assert codes == ["TRACE007"]


def test_tracelogging_dump_is_well_formed(kit, tmp_path):
    dump = tmp_path / "capture.dump"
    rc, _ = kit.run(kit.exes["etw"], "clean", {"DMALINT_ETW_DUMP": str(dump)})
    assert rc == 0
    lines = []
    for guid, desc, descs in dump_records(dump.read_bytes()):
        assert guid == GUID_BYTES
        assert desc == (0, 0, 11, 5, 0, 0, 1)
        assert [t for t, _ in descs] == [2, 1, 0, 0, 0]
        traits, meta = descs[0][1], descs[1][1]
        assert struct.unpack_from("<H", traits)[0] == len(traits) and traits[2:] == b"Dmalint.Capture\0"
        assert struct.unpack_from("<H", meta)[0] == len(meta)
        assert meta[2:] == b"\0Line\0Seq\0\x0aLine\0\x97\x23"
        seq = struct.unpack("<Q", descs[2][1])[0]
        (count,) = struct.unpack("<H", descs[3][1])
        text = descs[4][1].decode("utf-8")
        assert count == len(text)
        if not text.startswith("@"):
            assert text.startswith(f"seq={seq} ")
        else:
            assert seq == 1
        lines.append(text)
    assert lines[0] == '@driver name="driver.sys"'
    found = kit.check("\n".join(lines) + "\n", "etw")["findings"]
    assert found == []


@pytest.mark.parametrize("name, scenario, expected", [("etw", "defer", []), ("etw_POOL001", "clean", ["POOL001"])])
def test_capture_etl_end_to_end(kit, tmp_path, name, scenario, expected):
    """The TraceLogging sink's events, in an ETL file laid out as a real session writes it (the
    test writer), checked with `dmalint check capture.etl`."""
    from tests.etl_writer import dump_to_etl

    dump, etl = tmp_path / "capture.dump", tmp_path / "capture.etl"
    rc, _ = kit.run(kit.exes[name], scenario, {"DMALINT_ETW_DUMP": str(dump)})
    assert rc == 0
    dump_to_etl(dump, etl)
    status, report = dmalint_check(etl)
    codes = [f["code"] for f in report["findings"]]
    assert codes == expected, [(f["code"], f["line"], f["message"]) for f in report["findings"]]
    assert report["files"][0]["unparsed_lines"] == 0
    assert status == (1 if expected else 0)
