"""The grammar and the Transformer: every value kind, context field and verb."""

import pytest
from lark import Lark

from checker.reading.parser import load_grammar
from model.events import AdapterDirective, Call, Context, Leave, MemoryDirective, UnknownDirective
from model.irql import APC_LEVEL, DIRQL, DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL, Irql
from model.values import NULL, Struct, Symbol

from .helpers import parse_line, read_all, syntax_error


def test_grammar_has_no_ambiguity_or_terminal_collision():
    # strict mode refuses shift/reduce conflicts and colliding terminals (needs interegular)
    Lark(load_grammar(), parser="lalr", strict=True)


@pytest.mark.parametrize(
    "text, value",
    [
        ("0x1F", 0x1F),
        ("0X1f", 0x1F),
        ("42", 42),
        ("0xffffffffffffffff", 2**64 - 1),
        ("TRUE", True),
        ("FALSE", False),
        ("NULL", NULL),
        ("STATUS_SUCCESS", Symbol("STATUS_SUCCESS")),
        ('"stornvme.sys"', "stornvme.sys"),
        (r'"a \"quoted\" \\ path"', 'a "quoted" \\ path'),
        ('"# not a comment"', "# not a comment"),
        ("[]", ()),
        ("[1, 0x2, NULL]", (1, 2, NULL)),
        ("{}", Struct(())),
        ("{Version=DEVICE_DESCRIPTION_VERSION2, Master=TRUE}", Struct((("Version", Symbol("DEVICE_DESCRIPTION_VERSION2")), ("Master", True)))),
        ("{A=[{B=1}]}", Struct((("A", (Struct((("B", 1),)),)),))),
    ],
)
def test_value_kinds(text, value):
    call = parse_line(f"call F(X={text})")
    assert call.arg("X") == value
    assert type(call.arg("X")) is type(value)


def test_null_is_not_zero_but_reads_as_zero_address():
    from model.values import as_int

    assert parse_line("call F(X=NULL)").arg("X") is NULL
    assert parse_line("call F(X=0)").arg("X") == 0
    assert as_int(NULL) == 0 and as_int(True) is None


@pytest.mark.parametrize(
    "fields, context",
    [
        ("t=0.5 seq=7 cpu=3 tid=0x1c irql=DISPATCH", Context(t=0.5, seq=7, cpu=3, tid=0x1C, irql=DISPATCH_LEVEL)),
        ("irql=APC_LEVEL cpu=1 t=12", Context(t=12.0, cpu=1, irql=APC_LEVEL)),
        ("irql=PASSIVE_LEVEL", Context(irql=PASSIVE_LEVEL)),
        ("irql=DIRQL", Context(irql=DIRQL)),
        ("irql=HIGH_LEVEL", Context(irql=HIGH_LEVEL)),
        ("irql=2", Context(irql=DISPATCH_LEVEL)),
        ("irql=9", Context(irql=Irql(9))),
        (
            "[3]0004.01A8::11/21/2026-10:23:45.123456 [stornvme] t=1",
            Context(t=1.0, cpu=3, tid=0x1A8, pid=4, timestamp="11/21/2026-10:23:45.123456", provider="stornvme"),
        ),
        (
            "[0]0AF4.0C64::07/25/2003-14:55:39.998 [trace drv] cpu=0",
            Context(cpu=0, tid=0xC64, pid=0xAF4, timestamp="07/25/2003-14:55:39.998", provider="trace drv"),
        ),
    ],
)
def test_context_fields_in_any_order(fields, context):
    assert parse_line(f"{fields} done HwStorStartIo").context == context


def test_irql_order():
    assert PASSIVE_LEVEL < APC_LEVEL < DISPATCH_LEVEL < DIRQL < HIGH_LEVEL
    assert Irql.from_number(2) is DISPATCH_LEVEL and str(Irql.from_number(7)) == "7"


def test_positional_arguments_take_the_documented_names():
    call = parse_line("call PutScatterGatherList(0xffffe00000200000, 0xffffb00020000000, FALSE)")
    assert [a.name for a in call.arguments] == ["DmaAdapter", "ScatterGather", "WriteToDevice"]
    assert all(a.positional for a in call.arguments)
    named = parse_line("call PutScatterGatherList(DmaAdapter=0xffffe00000200000, ScatterGather=0xffffb00020000000, WriteToDevice=FALSE)")
    assert call == named  # a bare value means the same as the named one


def test_bare_argument_after_named_takes_its_position():
    call = parse_line("call ExFreePoolWithTag(P=0x1000, 0x41424344)")
    assert call.arg("Tag") == 0x41424344


def test_unknown_ddi_keeps_bare_arguments_unnamed():
    call = parse_line("call VendorSpecificThing(1, 2)")
    assert [a.name for a in call.arguments] == [None, None]
    assert [a.value for a in call.arguments] == [1, 2]


def test_out_arguments_and_results():
    call = parse_line("call CalculateScatterGatherList(DmaAdapter=0x1, Mdl=NULL, CurrentVa=0x0, Length=0x3000, ScatterGatherListSize=>0x58, NumberOfMapRegisters=>3) -> STATUS_SUCCESS")
    assert call.argument("ScatterGatherListSize").out and not call.argument("Length").out
    assert call.result == Symbol("STATUS_SUCCESS")
    leave = parse_line("leave AllocateCommonBuffer -> 0xffffb00000010000 (LogicalAddress=>0x7f000000)")
    assert isinstance(leave, Leave) and leave.result == 0xFFFFB00000010000 and leave.arg("LogicalAddress") == 0x7F000000
    assert parse_line("leave BuildScatterGatherList").result is None


def test_names_that_look_like_keywords():
    call = parse_line("call read(t=call, va=read, seq=DIRQL)")
    assert call.name == "read" and call.arg("t") == Symbol("call") and call.arg("seq") == Symbol("DIRQL")


@pytest.mark.parametrize(
    "line, expected",
    [
        ("dma write 0x10 0x8 fill=0xab", dict(access="write", address=0x10, length=8, fill=0xAB, data=None)),
        ("dma read 0x10 4 data=DEADbeef", dict(access="read", data=bytes.fromhex("deadbeef"), fill=None)),
        ("dma read 0x10 4 data=0x00ff", dict(data=b"\x00\xff")),
        ("dma read 0x10 4", dict(fill=None, data=None)),
    ],
)
def test_dma_payloads(line, expected):
    event = parse_line(line)
    for key, value in expected.items():
        assert getattr(event, key) == value


def test_mdl_chain_and_empty_lists():
    mdl = parse_line("mdl 0x1 va=0x2 offset=2 bytes=1 pfns=[] next=0x5")
    assert mdl.pfns == () and mdl.next == 5
    assert parse_line("sgl 0x1 []").elements == ()


def test_directives():
    adapter = parse_line("@adapter storport dma64=TRUE scatter_gather=TRUE maximum_length=0x20000 map_registers=33 alignment=4")
    assert adapter == AdapterDirective(location=adapter.location, kind="storport", dma64=True, scatter_gather=True, maximum_length=0x20000, map_registers=33, alignment=4)
    assert parse_line("@adapter wdm address=0xffffe00000200000 address_width=32").address_width == 32
    memory = parse_line("@memory size=0x400000000 layout=high seed=1")
    assert memory == MemoryDirective(location=memory.location, size=0x400000000, layout="high", seed=1)
    unknown = parse_line('@capture tool="dmacap" 3')
    assert isinstance(unknown, UnknownDirective) and unknown.directive == "capture" and unknown.words == (3,)


@pytest.mark.parametrize(
    "line, message",
    [
        ("@target arch=mips", "takes one of: x64, x86, arm64"),
        ("@target page_size=1000", "power of two"),
        ("@memory layout=random", "takes one of: fragmented, contiguous, high"),
        ("@adapter wdm dma64=TRUE", "needs address="),
        ("@adapter pci", "needs one of: storport, wdm"),
        ("@adapter storport dma64=1", "takes TRUE or FALSE"),
        ("@adapter storport address_width=80", "1-64 bits"),
        ("@driver stornvme", "key=value pairs only"),
        ("@dmatrace one", "one version number"),
        ("@target arch=x64 arch=x86", "gives 'arch' twice"),
        ("irql=32 done X", "outside 0-31"),
        ("t=1 t=2 done X", "'t' is given twice"),
        ("[1]0004.00A8::11/21/2026-10:23:45.1 [p] tid=3 done X", "contradicts the tracefmt prefix"),
        ("dma write 0x1 1 fill=0x100", "not a byte"),
        ("call F(A={X=1, X=2})", "given twice in a structure"),
        ("call IoFreeMdl(0x1, Mdl=0x1)", "'Mdl' of IoFreeMdl is given twice"),
    ],
)
def test_values_the_format_forbids(line, message):
    assert message in syntax_error(line).message


def test_agreeing_prefix_and_cpu_field_are_fine():
    assert parse_line("[1]0004.00A8::11/21/2026-10:23:45.1 [p] cpu=1 done X").context.cpu == 1


def test_line_endings_bom_and_blank_lines():
    data = b"\xef\xbb\xbf@dmatrace 1\r\n\r\n   \r\ncall A()\r\n# c\ncall B()"
    items = read_all(data)
    kinds = [type(item).__name__ for item in items]
    assert kinds == ["VersionDirective", "Call", "Comment", "Call"]
    assert [item.location.line for item in items] == [1, 4, 5, 6]
    assert items[1].location.end_column == len("call A()") + 1  # the \r is not part of the line


def test_tabs_are_whitespace():
    call = parse_line("t=1\tcpu=0\tcall\tF(A=1,\tB=2)")
    assert isinstance(call, Call) and call.arg("B") == 2
