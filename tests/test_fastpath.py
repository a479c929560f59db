"""The parser's fast path gives what the grammar gives, on every line, or leaves it to Lark.

For every input the two parsers (`LineParser(fast=True)`, the default, and `fast=False`, Lark
alone) either return equal records, compared field by field including what dataclass equality
leaves out (locations, `Argument.positional`) and the exact types of values (True is not 1),
with the same warnings; or both raise TraceSyntaxError with the same message, location and
expected tokens. The inputs: every line of every bundled trace, test fixture, rule file and
format page, generated records written by checker/reading/writer.py, and random edits of both.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from checker.errors import EmptyTraceError, InputError, NotUtf8Error, TraceSyntaxError, UnsupportedVersionError
from checker.reading import fastpath, parser, reader
from checker.reading.parser import LineParser
from checker.reading.reader import Diagnostic, read_stream
from checker.reading.writer import format_record
from model import events as ev
from model.location import SourceLocation
from model.values import NULL, NullType

from .helpers import ROOT, SHARED, TRACES, format_examples
from .strategies import known_ddi_calls, records

FAST = LineParser("p.trace", fast=True)
LARK = LineParser("p.trace", fast=False)
FAST_ONLY = FAST.fast_parse


def deep(value):
    """A value as nested tuples: every dataclass field (compare=False ones too), exact types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, deep(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, tuple):
        return ("tuple", tuple(deep(item) for item in value))
    if isinstance(value, NullType):
        return ("NULL",)
    assert value is None or type(value) in (bool, int, float, str, bytes), repr(value)
    return (type(value).__name__, value)


def outcome(line_parser: LineParser, text: str, line: int):
    try:
        record = line_parser.parse(text, line)
    except TraceSyntaxError as error:
        location = dataclasses.astuple(error.location)
        return ("error", error.message, location, error.expected, error.text, line_parser.take_warnings())
    return ("record", deep(record), line_parser.take_warnings())


def assert_same(text: str, line: int = 7) -> None:
    lark = outcome(LARK, text, line)
    fast = outcome(FAST, text, line)
    assert fast == lark, text
    # and the fast path alone: a record only where Lark gives one, never an exception
    answer = FAST_ONLY(text, line)
    FAST.take_warnings()
    if answer is not fastpath.FALLBACK:
        assert lark[0] == "record" and ("record", deep(answer)) == lark[:2], text


def handled(text: str, line: int = 1) -> bool:
    answer = FAST_ONLY(text, line)
    FAST.take_warnings()
    return answer is not fastpath.FALLBACK


# --- every line we ship ---------------------------------------------------------------------


def _rule_lines() -> list[str]:
    lines = []
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "tests" not in doc:
            continue
        for block in [*doc["tests"], doc.get("example") or "", doc.get("use_instead") or ""]:
            lines += block.splitlines()
    return lines


def _corpus() -> dict[str, list[str]]:
    corpus = {}
    for path in [*sorted(TRACES.glob("*.trace")), *sorted((ROOT / "tests" / "fixtures").glob("*.trace"))]:
        corpus[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8").splitlines()
    corpus["rules/**/*.yaml"] = _rule_lines()
    corpus["docs/trace-format.md"] = format_examples(ROOT / "docs" / "trace-format.md")
    if (SHARED / "trace-format.md").exists():
        corpus["shared/trace-format.md"] = format_examples(SHARED / "trace-format.md")
    return corpus


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_shipped_line_parses_the_same_both_ways(name):
    lines = CORPUS[name]
    assert lines
    for number, text in enumerate(lines, start=1):
        assert_same(text, number)
    # again, now that the fast path's caches hold these lines
    for number, text in enumerate(lines, start=1):
        assert_same(text, number + 1000)


def test_the_rule_fixtures_are_many_lines():
    assert len(CORPUS["rules/**/*.yaml"]) > 1000


# --- the fast path carries the load ---------------------------------------------------------


def _event_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip() and not line.lstrip().startswith(("#", "@"))]


def test_the_fast_path_handles_the_bundled_traces_event_lines():
    events = [line for path in sorted(TRACES.glob("*.trace")) for line in _event_lines(path.read_text().splitlines())]
    assert len(events) > 1000
    missed = [line for line in events if not handled(line)]
    assert len(missed) <= 0.05 * len(events), missed[:10]


def test_the_fast_path_handles_comments_blank_lines_and_every_verb():
    lines = [
        "# a comment",
        "   #  indented comment \t",
        "",
        " \t ",
        "call F()",
        "  t=1 call F(A=1) -> 2   # trailing",
        "seq=3 cpu=1 tid=0x1f irql=2 enter F(1, B=>TRUE, C=NULL, D=\"s, ) #\")",
        "irql=HIGH_LEVEL callback F(X=Y)",
        "leave F",
        "leave F -> STATUS_SUCCESS (A=>1)",
        "leave AdapterControl (A=[])",  # a warning's column is the argument's, after the name
        "done F",
        "done F -> KeepObject",
        "seq=9 cpu=0 tid=4 irql=DISPATCH_LEVEL done AdapterControl -> 3",
        "mem read 0x10 16",
        "dma write 0x10 16 fill=0xff",
        "dma read 0x10 16 data=0A0b",
        "mdl 0x1 va=0x2 offset=0 bytes=0x1000 pfns=[] next=0x3",
        "sgl 0x1 [0x1000:0x200, 0x2000:0x10]",
        "call F(A={}, B=[], C={X=1, Y=\"a, b\"}, D=[1, NULL, \"}\"]) -> {R=1}",
        "leave F -> [1, 2] ({A=1}, [X])",
        "[0]0004.01A8::11/21/2026-10:23:45.1 [] t=1.5 seq=1 irql=DISPATCH_LEVEL call IoFreeMdl(0x1)",
        "t=1 cpu=0 irql=DISPATCH call  F(A=1)",  # more white space after the verb than one space
        "t=1 cpu=0 irql=DISPATCH \tcall\tF(A=1)",
        "t=1 cpu=0 irql=DISPATCH dma  read 0x1 0x2",
        "[0]0004.01A8::11/21/2026-10:23:45.1 [p]\tirql=DISPATCH mdl\t0x1 va=0x2 offset=0 bytes=1 pfns=[1]",
    ]
    for line in lines:
        assert handled(line), line
        assert_same(line)


@pytest.mark.parametrize(
    "text",
    [
        "@dmatrace 1",  # directives go to Lark
        "call F(A={X={Y=1}})",  # structures and lists in structures and lists
        "call F(A=[[1]])",
        "call F(A={X=[1]})",
        "call F(A={X=1, X=2})",  # a field given twice
        'call F(A="a\\"b")',  # escapes
        "cpu=1 t=2 call F()",  # fields out of the writer's order
        "t=1 t=2 call F()",
        "call F (A=1)",  # unusual spacing
        "call F( A=1)",
        "call F(A = 1)",
        "call F(A=1 ,B=2)",
        "t=1\fcall F()",
        "[1]0004.01A8::11/21/2026-10:23:45.1 [p] cpu=1 call F()",  # a field that repeats the prefix
        "irql=32 call F()",  # values the format forbids
        "dma write 1 2 fill=0x100",
        "dma write 1 2 data=abc",
        "call IoFreeMdl(1, 2)",
        "call F(A=1, A=2)",
        "call F(A=1,)",  # and lines that do not parse
        "cal F()",
        "t=1. call F()",
        "call F(A=0x1g)",
        "mem read 1 2 3",
        "call F() # \r",
        'call F(A="a\\\\b")',  # an escaped backslash
        "[1]0004.01A8::11/21/2026-10:23:45.1 [ p ] call F()",  # spaces around the provider
        "[1]0004.01A8::11/21/2026-10:23:45.1 [p ] call F()",
        "irql=DIRQL_LEVEL call F()",
    ],
)
def test_the_fast_path_leaves_the_unusual_to_lark(text):
    assert not handled(text)
    assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        "call F(A=1)#c",
        "leave F->X",
        "leave F -> X(A=>1)",
        "mem read0x1 0x2",
        "memread 0x1 0x2",
        "callF(A=1)",
        "t=1 call F(A=TRUEX, B=NULLS, C=FALSE_)",
        'call F(A="", "")',
        "done TRUE",
        "call call(call=call)",
        "call F() -> -1",
        "call F(A={X=1,Y=2}, B=[1,2])",
        "call F(A={X=1 , Y=2})",
        "call F(A={ X=1})",
        "call F(A=[1,])",
        "call F(A={X=1}, {Y=2})",
        "call IoGetDmaAdapter(0x1, {Version=X}, 3)",
        "t=1\tcpu=2\tcall F()\t",
        "sgl 0x1 [0x1:0x2,0x3:0x4]",
        "sgl 0x1 [0x1:0x2,\t0x3:0x4]",
        "mdl 0x1 va=0x2 offset=0 bytes=1 pfns=[1,2]next=3",
        "call F() # \u00e9\x00\u2028",
        "[1]0004.01A8::11/21/2026-10:23:45.1 [a#b] call F()",
        "[1]0004.01A8::1/2/2026-1:23:45 [p]call F()",
        "[1]0004.01A8::1/2/2026-1:23:45 [p]  t=1 irql=0x1f call F()",
        "[1]0004.01A8::1/2/2026-1:23:456 [p] call F()",
        "irql=PASSIVE_LEVEL call F()",
        "irql=31 call F()",
        "irql=0 call F()",
        "t=0000 seq=0x0 cpu=00 tid=0X1F call F()",
        "dma write 0x1 0x2 data=0x",
        "dma write 0x1 0x2 data=0XAB",
        "dma write 0x1 0x2 data=ab  # c",
        "dma write 0x1 0x2 fill=0x00",
        "dma write 010 0x2 fill=07",
        "mem read 0x1 00",
        "mem read 0x1 0010",
        "mdl 0x1 va=0x2 offset=00 bytes=1 pfns=[0x1, 01]",
        "sgl 0x1 [010:0x2]",
        "call F(A=0x)",
        "call F(A=01)",
        "call F(A=1) ->",
        "call F(A=1) -> X Y",
        "enter F(A=1) -> X",
        "leave F (A=>1) -> X",
        "leave F ()",
        "callback F",
        "done F(A=1)",
        "done F -> ",
        "done F -> X (A=1)",
        "lost records=1",
        "lost",
        'seq=3 cpu=0 tid=4 irql=2 lost records=1 reason="too long"',
        "  \t call F()  ",
        "\u3000call F()",
        "\xa0",
        "\f",
        "#",
        "call F(A=1)\r",
        "# comment\r",
        "  # a\rb",
        "#\n",
        "call F()\n",
    ],
)
def test_tricky_lines_parse_the_same_both_ways(text):
    assert_same(text)
    assert_same(text)  # from the caches


def test_warnings_and_named_positionals_come_out_the_same():
    text = "t=2 cpu=0 call IoFreeMdl(Mdl=0x1, Bogus=2, Other=>X)   # two undocumented"
    for line in (1, 2):  # parsed, then from the cache
        lark = outcome(LARK, text, line)
        assert handled(text)
        assert outcome(FAST, text, line) == lark
        assert [column for column, _ in lark[2]] == [35, 44]
    assert_same("call PutScatterGatherList(0xffffe00000200000, 0xffffb00020000000, FALSE)")
    record = FAST.parse("call PutScatterGatherList(0x1, 0x2, FALSE)", 1)
    assert [(a.name, a.positional) for a in record.arguments] == [
        ("DmaAdapter", True),
        ("ScatterGather", True),
        ("WriteToDevice", True),
    ]


def test_the_same_rest_of_a_line_with_another_time_stamp():
    rest = " cpu=1 irql=DISPATCH call KeAcquireSpinLock(SpinLock=0x1, OldIrql=>PASSIVE_LEVEL)"
    times = ["1.5", "2", "0003.25", "1.", ".5", "1e5", "1_0", "-1", "١", "1 ", "", "1.5\t", "9.75", "98765.4321"]
    for t in [*times, "0.000001", "123456789012345678901234567890.5", "4.99999999999999999999", "7" * 400]:
        assert_same("t=" + t + rest)
    assert handled("t=9.75" + rest) and not handled("t=1e5" + rest)


def test_the_same_tracefmt_line_with_another_time_stamp():
    rest = " [nvme] irql=DISPATCH callback HwStorStartIo(DeviceExtension=0x1, Srb=0x2)"
    stamps = ["11/21/2026-10:23:45.123460", "1/2/2026-1:23:45", "11/21/2026-10:23:45", "11/21/2026-10:23:45.",
              "11/21/2026-10:23:4", "11/21/2026-10:23:456", "111/21/2026-10:23:45", "١1/21/2026-10:23:45",
              "11/21/2026-10:23:45.1x", "", "11/21/2026-10:23:45.1\t"]
    for ids in ["[1]0004.01A8", "[12]04.1A8", "[1]0004.01A8::x", "[1]0004"]:
        for stamp in stamps:
            assert_same(ids + "::" + stamp + rest)
    assert handled("[3]0004.01A8::11/21/2026-10:23:45.9" + rest)
    assert not handled("[3]0004.01A8::11/21/2026-10:23:45." + rest)
    # the line without its time stamp is the same text, cut elsewhere: not the same line
    assert_same("[1]0004.01A8 [nvme]::11/21/2026-10:23:45 irql=DISPATCH callback HwStorStartIo(DeviceExtension=0x1, Srb=0x2)")


def test_the_switch_turns_the_fast_path_off():
    assert fastpath.AVAILABLE, "a record class changed shape: update fastpath._SHAPES"
    assert LineParser("x").fast and not LineParser("x", fast=False).fast
    assert LineParser("x", fast=False).fast_parse is None
    saved = parser.FAST_PATH
    try:
        parser.FAST_PATH = False
        assert not LineParser("x").fast
        assert LineParser("x", fast=True).fast
    finally:
        parser.FAST_PATH = saved


def test_records_are_built_with_every_field_set():
    record = FAST.parse("t=1 cpu=2 call ExFreePool(P=0x1) -> NULL", 3)
    assert type(record) is ev.Call and record.result is NULL and record.context.pid is None
    assert record == LARK.parse("t=1 cpu=2 call ExFreePool(P=0x1) -> NULL", 3)
    for cls in fastpath._SHAPES:
        assert tuple(f.name for f in dataclasses.fields(cls)) == fastpath._SHAPES[cls]


def test_repeated_names_are_interned():
    first = FAST.parse("call " + "".join(["StorPort", "AllocatePool"]) + "(HwDeviceExtension=0x1)", 1)
    second = FAST.parse("call StorPortAllocatePool(HwDeviceExtension=0x2)", 2)
    assert first.name is second.name and first.arguments[0].name is second.arguments[0].name


# --- generated lines and random edits -----------------------------------------------------------

_PIECES = [
    " ", "  ", "\t", ",", ", ", "(", ")", "=", "=>", "->", "-", ">", "#", '"', "\\", "[", "]", "{", "}", ":",
    ".", "0", "1", "9", "0x", "x", "A", "_", "TRUE", "NULL", "t=", "cpu=", "irql=", "call ", "leave ", "@",
    "\r", "\f", "\x00", "é", "\u3000", "\xa0", "٣",
]


@st.composite
def edited(draw, lines):
    """A line with a few random edits: inserted pieces, deleted or swapped spans."""
    text = draw(lines)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
        position = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:position] + draw(st.sampled_from(_PIECES)) + text[position:]
        elif kind == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 4)) :]
        elif kind == "replace" and position < len(text):
            text = text[:position] + draw(st.sampled_from(_PIECES)) + text[position + 1 :]
        elif kind == "swap":
            other = draw(st.integers(0, len(text)))
            low, high = sorted((position, other))
            text = text[:low] + text[high:] + text[low:high]
    return text


_SHIPPED = sorted({line for lines in CORPUS.values() for line in lines if line.strip()})
generated = st.one_of(records.map(format_record), known_ddi_calls())
shipped = st.sampled_from(_SHIPPED)

DIFFERENTIAL = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@DIFFERENTIAL
@given(generated)
def test_generated_records_parse_the_same_both_ways(text):
    assert_same(text)


@DIFFERENTIAL
@given(edited(st.one_of(generated, shipped)))
@example("t=1 cpu=0 irql=DISPATCH call IoFreeMdl(Mdl=0x1)")
@example("t=1 cpu=0 irql=DISPATCH call IoFreeMdl(Mdl=0x1 )")
@example("call F(A=\"x\", B=1) -> \"y\" # z")
def test_edited_lines_parse_the_same_both_ways(text):
    assert_same(text)


@DIFFERENTIAL
@given(st.lists(edited(shipped), min_size=2, max_size=6))
def test_a_run_of_edited_lines_parses_the_same_both_ways(texts):
    # one parser across the lines, so the caches of earlier lines meet the edits of later ones
    for number, text in enumerate(texts, start=1):
        assert_same(text, number)


def test_the_differential_inputs_exercise_both_paths():
    fast = slow = 0
    for text in _SHIPPED:
        if handled(text):
            fast += 1
        else:
            slow += 1
    assert fast > 1000 and slow > 20


def test_the_benchmark_mix_module_still_builds(tmp_path: Path):
    # bench/parse_speed.py builds its trace from the bundled event lines: all fast
    import importlib.util

    spec = importlib.util.spec_from_file_location("parse_speed", ROOT / "bench" / "parse_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "mix.trace"
    lines = module.build_trace(2000, path)
    body = path.read_text().splitlines()[2:]
    assert len(body) == lines
    assert sum(handled(line) for line in body) >= 0.95 * lines


# --- the caches of line parts: a line cut in prefix, time and body, each part met again ----------

# Context fields before the verb as the writer puts them, the tracefmt prefix, and shapes around
# them that must not be taken for them.
_PREFIXES = [
    "t=1.5 cpu=0 irql=DISPATCH ",
    "t=2 cpu=0 irql=DISPATCH ",
    "t=3.25 cpu=1 tid=0x2154 irql=PASSIVE ",
    "t=4 seq=7 cpu=1 tid=0x2154 irql=DIRQL ",
    "t=5 seq=0x8 irql=2 ",
    "t=6 irql=31 ",
    "t=7 cpu=010 irql=DISPATCH ",  # a decimal with a leading zero: 10, as Lark reads it
    "t=8 cpu=0 irql=32 ",  # an IRQL the format forbids
    "t=9 irql=DISPATCH cpu=0 ",  # fields out of the writer's order
    "t=10 cpu=0 irql=DISPATCH cpu=1 ",
    "t=11 cpu=0 irql=DISPATCH  ",  # two spaces before the verb
    "t=12 cpu=0\tirql=DISPATCH ",
    "t=13 cpu=0 irql=DISPATCH_LEVELX ",
    "t=14 cpu=0 ",  # no irql: the regexes alone
    "t=1e3 cpu=0 irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.123479 [nvmemini] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.123480 [nvmemini] irql=DISPATCH ",
    "[1]0004.0000::11/21/2026-10:23:45.1 [nvmemini] irql=DISPATCH ",
    "[0]0004.0001::11/21/2026-10:23:45.2 [nvmemini] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.3 [fbx32] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.4 [nvmemini] irql=PASSIVE ",
    "[0]0004.0000::11/21/2026-10:23:45.5 [nvmemini] t=2.5 seq=3 irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.6 [] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.7 [a b] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45.8 [p] cpu=0 irql=DISPATCH ",  # repeats the prefix: Lark compares
    "[0]0004.0000 [nvmemini]::11/21/2026-10:23:45.9 irql=DISPATCH ",  # the same text around the stamp, cut elsewhere
    "[0]0004.0000::11/21/2026-10:23:45.1x [nvmemini] irql=DISPATCH ",
    "[0]0004.0000::11/21/2026-10:23:45 [nvmemini] irql=DISPATCH ",
    "[0]0004.0000::1/2/2026-1:23:45.0 [nvmemini]  irql=DISPATCH ",
    " t=1 cpu=0 irql=DISPATCH ",
    "",
]

# Bodies (from the verb on) with their near misses: the same `Name(args)` with other tails, the
# same arguments in other calls, strings that hold the separators, lists cut at ", ".
_BODIES = [
    "call F(A=1) -> 1",
    "call F(A=1) -> 2",
    "call F(A=1) -> X",
    "call F(A=1) -> {R=1, S=[1, 2]}",
    "call F(A=1)",
    "call F(A=1)   # a comment",
    "call F(A=1) -> 1 # a comment",
    "call F(A=1) -> ",
    "call F(A=1) ->1",
    "call F(A=1) => 1",
    "call F(A=1) -> 1 2",
    "call F(A=1)x",
    "enter F(A=1)",
    "enter F(A=1) -> 1",
    "callback F(A=1)",
    "callback F(A=1) # c",
    "call F(A=1, B=2)",
    "call F(A=1, A=2)",
    "call F(A=1, B=2, A=3)",
    "call F(A=1,B=2)",
    "call F(A=1,  B=2)",
    "call F(A=1 , B=2)",
    "call F(A=1, 2)",
    "call F(1, A=1)",
    'call F(A="x, y", B=2)',
    'call F(A="x)", B=2) -> 1',
    'call F(A="(", B=2)',
    'call F(A="x\\"y", B=2)',
    "call F(A=(1))",
    "call F(A=1))",
    "call F((A=1)",
    "call F(A=[1, 2], B={X=1, Y=2})",
    "call F(A={X=1, X=2})",
    "call ExFreePoolWithTag(P=0x1, Tag=0x2)",
    "call ExFreePoolWithTag(P=0x1, Tag=0x2, Extra=3)",
    "call ExFreePoolWithTag(0x1, 0x2)",
    "call ExFreePoolWithTag(0x1, 0x2, 0x3)",
    "call ExFreePoolWithTag(0x1, P=0x1)",
    "call ExFreePoolWithTag(Tag=0x2, P=0x1)",
    "call IoFreeMdl(Mdl=0x1, Bogus=2)",
    "call F (A=1)",
    "call  F(A=1)",
    "call\tF(A=1)",
    "call F(A=1)\r",
    "call F(A=1)\n",
    "calls F(A=1)",
    "call",
    "call ",
    "callF(A=1)",
    "leave F -> 1 (A=>2)",
    "leave F",
    "done F",
    "done F # c",
    "done F -> KeepObject",
    "done F -> 0x3 # c",
    "done F->TRUE",
    "done F -> {A=1}",
    "done1",
    "done",
    "lost records=2 buffers=1 reason=\"x\"",
    "mem read 0x10 16",
    "mem read 0x10 16 # c",
    "mem write 0x10 0x20",
    "mem read 0x10 16 fill=1",
    "mem read 0x10 010",
    "mem read 010 16",
    "mem read 0x1g 16",
    "mem read ١ 16",
    "mem read  0x10 16",
    "mem read 0x10  16",
    "mem read\t0x10 16",
    "mem reads 0x10 16",
    "mem read 0x10",
    "mem read 0x10 ",
    "dma write 0x10 0x20 fill=0xab",
    "dma write 0x10 0x20 fill=0x100",
    "dma write 0x10 0x20 fill=010",
    "dma write 0x10 0x20 data=0a0B",
    "dma write 0x10 0x20 data=0x0a0B    # CQ[1]",
    "dma write 0x10 0x20 data=abc",
    "dma write 0x10 0x20 data=",
    "dma write 0x10 0x20 fill=1 data=00",
    "dma read 0x10 0x20",
    "dma read 0x10 0x20 # c",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1, 0x2, 0x3]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1, 0x2, 0x3] next=0x4",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1, 0x2, 0x3] next=0x4 # c",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1,0x2, 0x3]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1,\t0x2]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[ ]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1, ]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1, 0x1g]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[010, 0x2]",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1] next=0x1g",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1] nextx=0x1",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1] next=",
    "mdl 0x1 va=0x2 offset=0 bytes=0x3000 pfns=[0x1]x",
    "mdl ١ va=0x2 offset=0 bytes=0x3000 pfns=[0x1]",
    "mdl 0x1 va=0x2  offset=0 bytes=0x3000 pfns=[0x1]",
    "sgl 0x1 [0x1000:0x200, 0x2000:0x10]",
    "sgl 0x1 [0x1000:0x200, 0x2000:0x10] # c",
    "sgl 0x1 []",
    "sgl 0x1 [0x1000:0x200,0x2000:0x10]",
    "sgl 0x1 [0x1000:0x200, 0x2000]",
    "sgl 0x1 [0x1000:0x200:0x3]",
    "sgl 0x1 [0x1000 :0x200]",
    "sgl 0x1 [010:0x200]",
    "sgl 0x1 [0x1000:0x200]x",
    "sgl 0x1g [0x1000:0x200]",
]


def test_lines_cut_in_parts_parse_the_same_both_ways():
    # every prefix with every body, twice: the second time every part is in its cache, met
    # again with the other parts; a fresh parser first, so no earlier test filled the caches
    fast = LineParser("p.trace", fast=True)
    for _ in range(2):
        for number, (prefix, body) in enumerate(itertools.product(_PREFIXES, _BODIES), start=1):
            text = prefix + body
            assert outcome(fast, text, number) == outcome(LARK, text, number), text


def test_the_common_shapes_are_read_from_the_caches():
    fast = LineParser("p.trace", fast=True)
    first = "t=1.5 cpu=0 irql=DISPATCH call ExFreePoolWithTag(P=0x1, Tag=0x2) -> 1"
    again = "t=2.5 cpu=0 irql=DISPATCH call ExFreePoolWithTag(P=0x1, Tag=0x2) -> 1"
    stamped = "[0]0004.0000::11/21/2026-10:23:45.1 [nvmemini] irql=DISPATCH dma read 0x10 0x20"
    stamped_again = "[0]0004.0000::11/21/2026-10:23:45.2 [nvmemini] irql=DISPATCH dma read 0x10 0x20"
    for text in (first, stamped):
        fast.parse(text, 1)
    path = fast.fast_parse.__self__
    saved = path._parse
    path._parse = None  # a line whose parts are all known needs no regex of the general path
    try:
        assert path.parse(again, 2).context.t == 2.5
        assert path.parse(stamped_again, 3).context.timestamp == "11/21/2026-10:23:45.2"
    finally:
        path._parse = saved
    # the same fields after other tracefmt ids: another CPU, process and thread
    other = "[3]0005.0007::11/21/2026-10:23:45.3 [nvmemini] irql=DISPATCH dma read 0x10 0x20"
    assert outcome(fast, other, 4) == outcome(LARK, other, 4)


_PREFIX_PARTS = st.sampled_from(_PREFIXES)
_BODY_PARTS = st.one_of(st.sampled_from(_BODIES), st.sampled_from(_SHIPPED).map(lambda line: line.lstrip()))


@DIFFERENTIAL
@given(st.lists(st.tuples(_PREFIX_PARTS, edited(_BODY_PARTS)), min_size=2, max_size=8))
def test_runs_of_lines_sharing_parts_parse_the_same_both_ways(pairs):
    # one parser for the run: each line meets the parts earlier lines left in the caches
    fast = LineParser("p.trace", fast=True)
    for number, (prefix, body) in enumerate(pairs * 2, start=1):
        text = prefix + body
        assert outcome(fast, text, number) == outcome(LARK, text, number), text


def test_the_caches_stay_bounded():
    fast = LineParser("p.trace", fast=True)
    path = fast.fast_parse.__self__
    for number in range(3 * fastpath._CACHE_LIMIT):
        text = f"[0]0004.{number:04X}::11/21/2026-10:23:45.1 [p{number}] irql=DISPATCH mem read 0x{number:x} 0x{number:x}"
        assert fast.parse(text, number).address == number
    caches = [value for value in vars(path).values() if isinstance(value, dict)]
    assert caches and all(len(cache) <= fastpath._CACHE_LIMIT for cache in caches)


# --- the reader: blocks of lines give what reading line by line gives ------------------------


def _reference_read(data: bytes, path: str) -> list:
    """dmalint's reader as it was, line by line: the oracle for the block reader."""
    line_parser = LineParser(path)
    items: list = []
    warned: set[str] = set()
    events = errors = offset = 0
    for number, raw in enumerate(io.BytesIO(data), start=1):
        line_offset = offset
        offset += len(raw)
        if number == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise NotUtf8Error("the trace is UTF-16 text", SourceLocation(path, 1, 1, 2), 0)
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                line_offset += 3
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            column = len(raw[: error.start].decode("utf-8", "replace")) + 1
            location = SourceLocation(path, number, column, column + 1)
            raise NotUtf8Error(f"byte 0x{raw[error.start]:02x}", location, line_offset + error.start) from None
        if not text or text.isspace():
            continue
        try:
            record = line_parser.parse(text, number)
        except TraceSyntaxError as error:
            errors += 1
            items.append(error)
            continue
        for column, message in line_parser.take_warnings():
            if message not in warned:
                warned.add(message)
                items.append(Diagnostic(SourceLocation(path, number, column, column + 1), message))
        if record is None:
            continue
        if isinstance(record, ev.Event):
            events += 1
        elif isinstance(record, ev.VersionDirective) and record.version != 1:
            raise UnsupportedVersionError("version", record.location)
        elif isinstance(record, ev.UnknownDirective) and record.directive not in warned:
            warned.add(record.directive)
            items.append(Diagnostic(record.location, f"unknown directive @{record.directive}"))
        items.append(record)
    if events == 0 and errors == 0:
        raise EmptyTraceError("no events", SourceLocation(path, 0))
    return items


def _items(read, data: bytes) -> tuple:
    """What a reader gives for `data`, comparable: items as `deep` values, and how it ended."""
    items: list = []
    try:
        for item in read(data):
            items.append(item)
    except InputError as error:
        end = (type(error).__name__, dataclasses.astuple(error.location), getattr(error, "offset", None))
    else:
        end = ("done",)
    kept = []
    for item in items:
        if isinstance(item, TraceSyntaxError):
            kept.append(("error", item.message, dataclasses.astuple(item.location), item.expected))
        elif isinstance(item, Diagnostic):
            kept.append(("diagnostic", dataclasses.astuple(item.location), item.message.split(":")[0]))
        else:
            kept.append(deep(item))
    return tuple(kept), end


def _block_read(data: bytes) -> list:
    return list(read_stream(io.BytesIO(data), "p.trace"))


def _line_read(data: bytes) -> list:
    return _reference_read(data, "p.trace")


_LINE_PIECES = [
    b"t=1 cpu=0 irql=DISPATCH call ExFreePoolWithTag(P=0x1, Tag=0x2)",
    b"t=2 cpu=0 irql=DISPATCH call IoFreeMdl(Mdl=0x1, Bogus=2)",
    b"[0]0004.0000::11/21/2026-10:23:45.1 [p] irql=DISPATCH mem read 0x10 0x20",
    b"@dmatrace 1",
    b"@dmatrace 2",
    b"@unknown x=1",
    b"# a comment",
    b"",
    b"   ",
    b"\x0c",
    b"call F(A=1,)",
    b"call F(A=\"caf\xc3\xa9\")",
    b"call F(A=\"caf\xe9\")",
    b"call F(A=1)\r",
    b"x" * 300,
]


@st.composite
def _trace_bytes(draw) -> bytes:
    lines = draw(st.lists(st.sampled_from(_LINE_PIECES), max_size=12))
    endings = draw(st.lists(st.sampled_from([b"\n", b"\r\n", b"\r\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(line + ending for line, ending in zip(lines, endings, strict=True))
    if draw(st.booleans()):
        data = data.rstrip(b"\n")  # no final line ending
    start = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb"]))
    return start + data


@DIFFERENTIAL
@given(_trace_bytes(), st.sampled_from([1, 2, 7, 64, 1 << 16]))
@example(b"t=1 call F()\n" * 3, 5)
@example(b"\xef\xbb\xbft=1 call F()\nt=1 call F(A=\"\xe9\")\n", 4)
@example(b"t=1 call F()\r\n\r\nt=2 call G()\r", 3)
def test_the_block_reader_reads_as_line_by_line(data, block_size):
    saved = reader._BLOCK_SIZE
    reader._BLOCK_SIZE = block_size  # blocks that cut lines, characters, CRLFs anywhere
    try:
        assert _items(_block_read, data) == _items(_line_read, data)
    finally:
        reader._BLOCK_SIZE = saved


def test_the_block_reader_reads_a_line_longer_than_a_block():
    data = b"t=1 call F(A=\"" + b"x" * (3 << 16) + b"\")\nt=2 call G()"
    assert _items(_block_read, data) == _items(_line_read, data)


def test_the_block_reader_reads_as_line_by_line_with_the_fast_path_off():
    data = b"".join(line + b"\r\n" for line in _LINE_PIECES if b"\xe9\"" not in line and not line.startswith(b"@dmatrace 2"))
    saved = parser.FAST_PATH
    parser.FAST_PATH = False
    try:
        assert _items(_block_read, data) == _items(_line_read, data)
        assert LineParser("p.trace").fast is False
    finally:
        parser.FAST_PATH = saved
