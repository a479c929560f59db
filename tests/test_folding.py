"""Consequences folded under their root finding (checker/engine/folding.py, docs/rules.md "Consequences")."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET

import pytest

from checker import cli
from checker.language.rule_schema import examine_rule_text

from .helpers import check_bytes

ADAPTER = "cpu=0 irql=PASSIVE call IoGetDmaAdapter(PhysicalDeviceObject=0x1, DeviceDescription=0x2, NumberOfMapRegisters=>16) -> 0xa0\n"
MDL = ("cpu=0 irql=PASSIVE call IoAllocateMdl(VirtualAddress=0x10000, Length=0x1000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0\n"
       "cpu=0 irql=PASSIVE call MmBuildMdlForNonPagedPool(MemoryDescriptorList=0xd0)\n")
BUILD = ("cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, "
         "Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, "
         "ScatterGatherLength=0x100) -> STATUS_SUCCESS\n")
PUT = "cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)\n"
FREE_MDL = "cpu=0 irql=PASSIVE call IoFreeMdl(Mdl=0xd0)\n"
PUT_ADAPTER = "cpu=0 irql=PASSIVE call PutDmaAdapter(DmaAdapter=0xa0)\n"
END = "cpu=0 irql=PASSIVE call KeGetCurrentIrql()\n"


def _alloc(size: int, tag: int, block: int) -> str:
    return (f"cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes={size:#x}, "
            f"Tag={tag:#x}) -> {block:#x}\n")

# The driver builds a second list in the buffer of a live one (SGL010, line 6): the first list is
# then also live when its MDL is freed (SGL012), when the adapter is put (ADP001) and at the end
# (SGL001). One mistake: one finding, three consequences.
REBUILD = "@dmatrace 1\n" + ADAPTER + MDL + BUILD + BUILD + PUT + FREE_MDL + PUT_ADAPTER


def _folded(findings):
    return [(f.code, f.location.line, f.consequence_of and (f.consequence_of.code, f.consequence_of.location.line))
            for f in findings]


def test_a_lost_list_gives_one_finding_and_its_consequences():
    findings = check_bytes(REBUILD.encode())
    assert _folded(findings) == [("SGL010", 6, None), ("SGL012", 8, ("SGL010", 6)),
                                 ("ADP001", 9, ("SGL010", 6)), ("SGL001", 9, ("SGL010", 6))]
    root = findings[0]
    assert all(f.consequence_of.fingerprint == root.fingerprint for f in findings[1:])


def test_consequences_do_not_count_and_no_fold_counts_them(tmp_path, capsys):
    path = tmp_path / "rebuild.trace"
    path.write_text(REBUILD)
    assert cli.main(["check", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    summary = report["summary"]
    assert (summary["findings"], summary["errors"], summary["consequences"]) == (1, 1, 3)
    assert [f["consequence_of"] and f["consequence_of"]["line"] for f in report["findings"]] == [None, 6, 6, 6]
    assert cli.main(["check", str(path), "--format", "json", "--no-fold"]) == 1
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["findings"], summary["errors"], summary["consequences"]) == (4, 4, 0)


def test_a_correct_put_later_is_not_folded():
    """The same first half, but the first list is put before its buffer is reused: no root, so
    nothing folds, and an unrelated finding later stands on its own."""
    text = ("@dmatrace 1\n" + ADAPTER + MDL + BUILD + PUT + BUILD + FREE_MDL + PUT + PUT_ADAPTER)
    assert _folded(check_bytes(text.encode())) == [("SGL012", 8, None)]


def test_leaks_the_never_put_list_keeps_fold_under_it_but_others_do_not():
    text = ("@dmatrace 1\n" + ADAPTER + _alloc(0x1000, 0x41414141, 0x10000) + _alloc(0x100, 0x42424242, 0xb000)
            + MDL + BUILD + _alloc(0x40, 0x43434343, 0x20000) + END).encode()
    folded = _folded(check_bytes(text))
    assert sorted(folded, key=str) == sorted([
        ("SGL001", 9, None),
        ("MDL002", 9, ("SGL001", 9)),      # the MDL the list was built from
        ("POOL005", 9, ("SGL001", 9)),     # its data block
        ("POOL005", 9, ("SGL001", 9)),     # its ScatterGatherBuffer
        ("POOL005", 9, None),              # allocated after the build: not the list's, a leak of its own
    ], key=str), folded


def test_an_address_reused_after_the_build_is_another_object():
    """The list's data block is freed and a new block takes its address after the build: the
    new block's leak is not kept by the list."""
    text = ("@dmatrace 1\n" + ADAPTER + MDL + BUILD + _alloc(0x100, 0x42424242, 0xb000) + END).encode()
    folded = _folded(check_bytes(text))
    assert ("POOL005", 7, None) in folded and ("MDL002", 7, ("SGL001", 7)) in folded, folded


def test_a_consequence_of_a_baselined_root_is_suppressed_with_it(tmp_path, capsys):
    path = tmp_path / "rebuild.trace"
    path.write_text(REBUILD)
    baseline = tmp_path / "baseline.json"
    assert cli.main(["check", str(path), "--write-baseline", str(baseline)]) == 0
    capsys.readouterr()
    assert len(json.loads(baseline.read_text())["findings"]) == 1  # the root only
    assert cli.main(["check", str(path), "--baseline", str(baseline), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == []
    assert sorted(s["code"] for s in report["suppressed"]) == ["ADP001", "SGL001", "SGL010", "SGL012"]
    assert {s["suppression"]["kind"] for s in report["suppressed"]} == {"baseline"}


def test_an_inline_suppression_of_the_root_takes_its_consequences(tmp_path, capsys):
    lines = REBUILD.splitlines(keepends=True)
    lines.insert(5, "# dmalint: ignore[SGL010] the second build is a test of the HAL\n")
    path = tmp_path / "rebuild.trace"
    path.write_text("".join(lines))
    assert cli.main(["check", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == [] and len(report["suppressed"]) == 4


def test_text_sarif_and_junit_show_consequences_under_the_root(tmp_path, capsys):
    path = tmp_path / "rebuild.trace"
    path.write_text(REBUILD)
    sarif, junit = tmp_path / "r.sarif", tmp_path / "r.xml"
    status = cli.main(["check", str(path), "--no-color", "--output-format", f"sarif:{sarif}",
                       "--output-format", f"junit:{junit}"])
    assert status == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:6:1: SGL010 [error] ")
    assert f"  {path}:8:1: note: SGL012 [error, consequence of SGL010 at line 6] IoFreeMdl frees MDL 0xd0" in "\n".join(out)
    assert out[-1].endswith("1 finding (1 error), 3 consequences folded, 0 unparsed lines")
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels == {"SGL010": "error", "SGL012": "note", "ADP001": "note", "SGL001": "note"}
    consequence = next(r for r in results if r["ruleId"] == "SGL012")
    assert consequence["properties"]["consequenceOf"]["ruleId"] == "SGL010"
    assert consequence["properties"]["severity"] == "error"
    assert consequence["relatedLocations"][-1]["physicalLocation"]["region"]["startLine"] == 6
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure.get("type") == "SGL010" and "consequence: SGL012" in failure.text and "consequence: SGL001" in failure.text


def test_fold_false_in_the_configuration(tmp_path, capsys):
    path = tmp_path / "rebuild.trace"
    path.write_text(REBUILD)
    config = tmp_path / "dmalint.toml"
    config.write_text("fold = false\n")
    assert cli.main(["check", str(path), "--config", str(config), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["summary"]["findings"] == 4
    config.write_text('fold = "yes"\n')
    assert cli.main(["check", str(path), "--config", str(config)]) == 2
    assert "fold must be true or false" in capsys.readouterr().err


RULE = """\
code: POOL777
name: my-leak
severity: warning
status: preview
since: "0.9.0"
summary: The driver leaks.
why: A block never freed is memory the system never gets back.
contract: Free what you allocate.
message: "block {block:#x} leaks"
example: "x"
use_instead: "y"
check:
  kind: end
  each: live_blocks
  values:
    block: item.address
    allocated: item.allocated_at.line
fold:
  about: {block: %s}
tests:
  - |
    @dmatrace 1
    cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, Tag=0x41414141) -> 0x1000
    # ruleid: my-leak
    cpu=0 irql=PASSIVE call KeGetCurrentIrql()
  - |
    @dmatrace 1
    # ok: my-leak
    cpu=0 irql=PASSIVE call KeGetCurrentIrql()
"""


@pytest.mark.parametrize(("value", "problem"), [
    ("allocated", None),
    ("made", "fold/about/block: 'made' is not one of the check's values (allocated, block)"),
])
def test_fold_names_only_values_of_the_check(value, problem):
    problems = examine_rule_text(RULE % value, "my-leak.yaml", "my-leak").problems
    if problem is None:
        assert problems == []
    else:
        assert [(p.line, p.message) for p in problems] == [(19, problem)]


def test_fold_kinds_are_checked_by_the_schema():
    text = RULE.replace("about: {block: %s}", "about: {buffer: allocated}")
    problems = examine_rule_text(textwrap.dedent(text), "my-leak.yaml", "my-leak").problems
    assert problems and all(p.line == 19 for p in problems), problems


def test_html_links_each_consequence_to_its_root(tmp_path, capsys):
    path = tmp_path / "rebuild.trace"
    path.write_text(REBUILD)
    page = tmp_path / "r.html"
    assert cli.main(["check", str(path), "--output-format", f"html:{page}"]) == 1
    capsys.readouterr()
    html = page.read_text()
    root_anchor = 'id="trace-1-finding-1"'
    assert root_anchor in html
    assert html.count('A consequence of <a href="#trace-1-finding-1">SGL010 at line 6</a>') == 3
    assert "1 finding at error severity" in html
