"""The rule engine: dispatch by (verb, DDI), one finding per rule per event, `replaced_by`,
`once`, end-of-trace checks, fingerprints, and rules users add as YAML only."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

from checker.engine.filecheck import FileCheck
from checker.errors import TraceSyntaxError
from checker.language.rulebook import Rulebook, builtin_rulebook
from checker.reading.reader import Diagnostic, read_stream
from checker.resources import rules_dir

from .helpers import check_bytes, trace

MDL = "cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x2000 pfns=[0x100, 0x101]"
BUILD = ("cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, "
         "Length={length}, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer={buffer}, "
         "ScatterGatherLength=0x100) -> STATUS_SUCCESS")
PUT = "cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather={buffer}, WriteToDevice=FALSE)"


def user_rule(directory: Path, code: str, name: str, check: str, message: str = "{what}") -> None:
    """A rule file of the user's own, YAML only; `check` is the body of its `check:` mapping."""
    family = directory / "acme"
    family.mkdir(parents=True, exist_ok=True)
    lines = [
        f"code: {code}",
        f"name: {name}",
        "severity: warning",
        "status: preview",
        'since: "1.0.0"',
        "summary: The driver does something our team forbids.",
        "why: Our hardware team says so, at length.",
        "contract: House rule 12 of the ACME driver guide.",
        f'message: "{message}"',
        'example: "cpu=0 irql=PASSIVE call ExFreePool(P=0x1)"',
        'use_instead: "cpu=0 irql=PASSIVE call ExFreePoolWithTag(P=0x1, Tag=0x41)"',
        "check:",
        *("  " + line for line in textwrap.dedent(check).strip().splitlines()),
        "tests:",
        "  - |",
        "    @dmatrace 1",
        f"    # ruleid: {name}",
        "    cpu=0 irql=PASSIVE call ExFreePool(P=0x1)",
        f"    # ok: {name}",
        "    cpu=0 irql=PASSIVE call ExFreePoolWithTag(P=0x1, Tag=0x41)",
    ]
    (family / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(text: str, rulebook: Rulebook, selection: frozenset[str] | None = None):
    check = FileCheck("t.trace", rulebook, selection)
    findings = []
    for item in read_stream(io.BytesIO(trace(text)), "t.trace"):
        findings.extend(check.feed(item))
    return findings + check.finish()


def test_an_event_costs_only_the_rules_that_can_match_it():
    dispatch = builtin_rulebook().dispatch()
    on_put = {rule.code for rule in dispatch.rules_for("call", "PutScatterGatherList")}
    on_mem = {rule.code for rule in dispatch.rules_for("mem", None)}
    assert {"SGL002", "IRQL001"} <= on_put and "SGL003" not in on_put
    assert "SGL003" in on_mem and "SGL002" not in on_mem
    assert "SGL001" in {rule.code for rule, _ in dispatch.end}


def test_a_selection_compiles_only_the_selected_rules():
    dispatch = builtin_rulebook().dispatch(frozenset({"SGL002"}))
    assert {rule.code for rule in dispatch.rules_for("call", "PutScatterGatherList")} == {"SGL002"}
    assert dispatch.end == []


def test_one_event_gives_at_most_one_finding_per_rule():
    # the read touches two live lists over the same pages: SGL003 once, about the first
    text = "\n".join([MDL, BUILD.format(length="0x2000", buffer="0xb000"), BUILD.format(length="0x1000", buffer="0xc000"),
                      "cpu=0 irql=DISPATCH mem read 0x10000 0x2000",
                      PUT.format(buffer="0xb000"), PUT.format(buffer="0xc000")])
    findings = [f for f in check_bytes(trace(text)) if f.code == "SGL003"]
    assert len(findings) == 1 and "0xb000" in findings[0].message


def test_end_of_trace_findings_sit_at_the_last_event_and_point_at_the_build():
    text = "\n".join([MDL, BUILD.format(length="0x1000", buffer="0xb000"), "cpu=0 irql=PASSIVE call KeGetCurrentIrql()"])
    (finding,) = [f for f in check_bytes(trace(text)) if f.code == "SGL001"]
    assert finding.location.line == 3
    assert [(r.location.line, r.message) for r in finding.related] == [(2, "sg list 0xb000 built here")]


def test_fingerprints_survive_lines_inserted_above():
    text = "\n".join([MDL, BUILD.format(length="0x1000", buffer="0xb000"), PUT.format(buffer="0xb000"),
                      PUT.format(buffer="0xb000"), BUILD.format(length="0x1000", buffer="0xc000")])
    moved = "# a comment\ncpu=1 irql=PASSIVE call KeGetCurrentIrql()\n\n" + text
    before = {(f.code, f.fingerprint) for f in check_bytes(trace(text))}
    after = {(f.code, f.fingerprint) for f in check_bytes(trace(moved))}
    assert {code for code, _ in before} >= {"SGL001", "SGL002"}
    assert before == after


def test_the_same_violation_twice_has_two_fingerprints():
    text = "\n".join([MDL, BUILD.format(length="0x1000", buffer="0xb000"), PUT.format(buffer="0xb000"),
                      PUT.format(buffer="0xb000"), PUT.format(buffer="0xb000")])
    prints = [f.fingerprint for f in check_bytes(trace(text)) if f.code == "SGL002"]
    assert len(prints) == 2 and len(set(prints)) == 2


def test_replaced_by_drops_the_general_finding(tmp_path):
    user_rule(tmp_path, "ACME001", "acme-general", """\
        kind: event
        verbs: [call]
        ddi: [ExFreePool]
        values: {what: "'general'"}
        replaced_by: [ACME002]
        """)
    user_rule(tmp_path, "ACME002", "acme-specific", """\
        kind: event
        verbs: [call]
        ddi: [ExFreePool]
        where: "arg.P == 0x1"
        values: {what: "'specific'"}
        """)
    rulebook = Rulebook.load(rules_dir(), tmp_path)
    text = "cpu=0 irql=PASSIVE call ExFreePool(P=0x1)\ncpu=0 irql=PASSIVE call ExFreePool(P=0x2)"
    found = [(f.code, f.location.line) for f in run(text, rulebook) if f.code.startswith("ACME")]
    assert found == [("ACME002", 1), ("ACME001", 2)]


def test_once_reports_each_value_a_single_time(tmp_path):
    user_rule(tmp_path, "ACME003", "acme-once", """\
        kind: event
        verbs: [call]
        ddi: [ExFreePool]
        values: {what: "hex(arg.P)"}
        once: arg.P
        """)
    rulebook = Rulebook.load(rules_dir(), tmp_path)
    text = "\n".join(f"cpu=0 irql=PASSIVE call ExFreePool(P={p})" for p in ("0x1", "0x2", "0x1", "0x2", "0x3"))
    assert [f.message for f in run(text, rulebook) if f.code == "ACME003"] == ["0x1", "0x2", "0x3"]


def test_a_user_rule_of_an_existing_kind_is_yaml_only(tmp_path):
    user_rule(tmp_path / "rules", "ACME004", "acme-no-untagged-free", """\
        kind: event
        verbs: [call]
        ddi: [ExFreePool]
        values: {what: "hex(arg.P)"}
        """, message="{what} is freed without its tag")
    path = tmp_path / "t.trace"
    path.write_bytes(trace("cpu=0 irql=PASSIVE call ExFreePool(P=0x1)"))
    done = subprocess.run([sys.executable, "-m", "checker", "check", "--rules", str(tmp_path / "rules"), "--select", "ACME004",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # a warning: below the default fail-on level
    assert f"{path}:1:1: ACME004 [warning] 0x1 is freed without its tag" in done.stdout


def test_a_rule_that_does_not_compile_is_reported_at_its_line_and_column(tmp_path):
    user_rule(tmp_path, "ACME005", "acme-broken", """\
        kind: event
        verbs: [call]
        where: "arg.P == = 1"
        values: {what: "hex(arg.P)"}
        """)
    done = subprocess.run([sys.executable, "-m", "checker", "rules", "validate", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "acme-broken.yaml:15:20: error: check/where: unexpected character '='" in done.stdout + done.stderr


def test_a_rule_may_have_an_event_half_and_an_end_half(tmp_path):
    user_rule(tmp_path, "ACME006", "acme-two-halves", """\
        - kind: event
          verbs: [call]
          ddi: [ExFreePool]
          values: {what: "'freed ' + hex(arg.P)"}
        - kind: end
          each: live_blocks
          values: {what: "'kept ' + hex(item.address)"}
          identity: [item.ordinal]
        """, message="{what}")
    rulebook = Rulebook.load(rules_dir(), tmp_path)
    text = ("cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x10, Tag=0x41) -> 0x5000\n"
            "cpu=0 irql=PASSIVE call ExFreePool(P=0x1)")
    assert [(f.location.line, f.message) for f in run(text, rulebook) if f.code == "ACME006"] == [(2, "freed 0x1"), (2, "kept 0x5000")]


def _findings_of(data: bytes, rulebook: Rulebook) -> list:
    check = FileCheck("t.trace", rulebook)
    findings = []
    for item in read_stream(io.BytesIO(data), "t.trace"):
        if not isinstance(item, (TraceSyntaxError, Diagnostic)):
            findings.extend(check.feed(item))
    return [(f.code, f.location.line, f.message, f.fingerprint) for f in findings + check.finish()]


def test_fact_guards_skip_checks_but_never_a_finding(tmp_path, monkeypatch):
    """A check that needs one of some facts runs only on events that carry one: on every rule
    fixture, bundled trace and a generated trace full of violations, the findings are the
    same with the guards off."""
    from bench.generate import generate
    from checker.language.dispatch import Dispatch
    rulebook = builtin_rulebook()
    guarded = [rule.code for rule in rulebook for check in rule.checks if getattr(check, "requires", None)]
    assert len(guarded) >= 20, guarded  # most rules wait for a fact of the model
    generated = tmp_path / "g.trace"
    generate(generated, 3000, seed=5, kind="mixed", every=3)
    inputs = [fixture.encode() for rule in rulebook for fixture in rule.doc["tests"]]
    inputs += [path.read_bytes() for path in sorted((Path(__file__).parent.parent / "traces").glob("*.trace"))]
    inputs.append(generated.read_bytes())
    with_guards = [_findings_of(data, rulebook) for data in inputs]
    monkeypatch.setattr(Dispatch, "guards", False)
    without = [_findings_of(data, rulebook) for data in inputs]
    assert with_guards == without
    assert sum(map(len, with_guards)) > 300
