"""Lines that do not parse: a located, friendly headline, a caret, and TRACE001."""

import pytest

from checker.errors import TraceSyntaxError
from checker.reporters.diagnostics import caret_excerpt, format_syntax_error

from .helpers import assert_findings, syntax_error


@pytest.mark.parametrize(
    "line, column, headline",
    [
        ("call F(A=1", 11, "missing ')' to close the argument list"),
        ("t=0.1 cpu=0 irql=PASSIVE call IoAllocateMdl(VirtualAddress=0x1, Length=0x3000, Irp=NULL -> 0x5", 89, "missing ')' to close the argument list"),
        ("t=1 cpu=0 irql=DISPATCH enter BuildScatterGatherList(DmaAdapter=0x1, Mdl=0x2 Length=0x3)", 78, "missing ')' to close the argument list"),
        ("call F(A={X=1)", 14, "missing '}' to close the structure"),
        ("sgl 0x1 [0x1:0x2", 17, "missing ']' to close the list"),
        ("cal IoFreeMdl(Mdl=0x1)", 1, "unknown verb 'cal'; did you mean 'call'?"),
        ("t=0.3 cpu=0 irql=PASSIVE calback F()", 26, "unknown verb 'calback'; did you mean 'callback'?"),
        ("t=1 frobnicate F()", 5, "unknown verb 'frobnicate' (verbs: call, enter"),
        ("call F() => 1", 10, "'=>' marks an out argument; a return value is written '-> value'"),
        ("call F(A=1, B=2, C=3, D=4) => 1", 28, "'=>' marks an out argument"),
        ("call F(NumberOfMapRegisters->32)", 28, "'->' gives the return value; an out argument is written 'Name=>value'"),
        ('call F(Name="abc)', 13, "unterminated string"),
        ('@driver name="stornvme.sys', 14, "unterminated string"),
        ("call F(Length=0x30g0)", 15, "bad number '0x30g0'"),
        ("mem read 0xffffb0001234zz 0x10", 10, "bad number '0xffffb0001234zz'"),
        ("t=1.2.3 done X", 3, "bad number '1.2.3'"),
        ("call F(A=1,)", 12, "a ',' must be followed by another item"),
        ("call F -> 1", 8, "a call needs its argument list"),
        ("mem reed 0x1 2", 5, "unexpected 'reed'"),
        ("call F(A=1) trailing", 13, "unexpected 'trailing'"),
        ("mem read 0x1", 13, "the line ends too early"),
    ],
)
def test_friendly_headline_at_the_right_column(line, column, headline):
    error = syntax_error(line)
    assert headline in error.message
    assert error.location.column == column, error


def test_expected_tokens_are_readable():
    error = syntax_error("call F(A=1")
    assert error.expected == ("')'", "','")
    error = syntax_error("mem reed 0x1 2")
    assert error.expected == ("read or write",)


def test_caret_message_format():
    error = syntax_error("t=1 call F(A=1")
    assert format_syntax_error(error).splitlines() == [
        "test.trace:1:15: error: missing ')' to close the argument list",
        "    t=1 call F(A=1",
        "                  ^",
        "    expected one of: ')', ','",
    ]


def test_caret_stays_under_the_column_of_a_long_line():
    text = "call F(" + ", ".join(f"A{i}=0x{i:08x}" for i in range(40)) + " B=1)"
    error = syntax_error(text)
    shown, caret = caret_excerpt(text, error.location.column)
    assert shown.startswith("    ...") and len(shown) < 200
    assert shown[caret.index("^")] == "B"


def test_tabs_do_not_shift_the_caret():
    shown, caret = caret_excerpt("call\tF(A=1 X", 12)
    assert shown[caret.index("^")] == "X"


def test_unparsed_line_is_a_trace001_finding_and_checking_goes_on():
    findings = assert_findings(
        """
        call KeGetCurrentIrql()
        call B(X=1
        call KeGetCurrentIrql()
        cal D()
        """,
        "TRACE001",
        "TRACE001",
    )
    assert [f.location.line for f in findings] == [2, 4]
    assert findings[0].facts["text"] == "call B(X=1"
    assert findings[0].facts["expected"] == ["')'", "','"]


def test_trace001_fingerprint_survives_inserted_lines():
    before = assert_findings("call KeGetCurrentIrql()\ncall B(X=1\n", "TRACE001")[0]
    after = assert_findings("call KeGetCurrentIrql()\ncall KeGetCurrentIrql()\ncall KeGetCurrentIrql()\ncall B(X=1\n", "TRACE001")[0]
    assert before.location.line != after.location.line
    assert before.fingerprint == after.fingerprint
    twice = assert_findings("call B(X=1\ncall B(X=1\n", "TRACE001", "TRACE001")
    assert twice[0].fingerprint != twice[1].fingerprint


def test_error_string_names_file_line_column():
    error = syntax_error("call F(")
    assert isinstance(error, TraceSyntaxError)
    assert str(error).startswith("test.trace:1:8: error: ")


@pytest.mark.parametrize(
    "line, headline",
    [
        ("call A()\rcall B()", "a carriage return (CR) inside a line"),
        ("call F(A=1\x00)", "control character U+0000 is not allowed here"),
        ("call F(A=1)\x1b[31m", "control character U+001B"),
    ],
)
def test_control_characters_are_named_not_printed(line, headline):
    error = syntax_error(line)
    assert headline in error.message
    shown, caret = format_syntax_error(error).splitlines()[1:3]
    assert all(c >= " " for c in shown) and len(shown) == len(line) + 4
    assert shown[caret.index("^")] == "\ufffd"


def test_a_tracefmt_prefix_glued_after_a_call_is_a_located_error_not_a_crash():
    # Lark 1.3's match_examples raised TypeError on this line (found by Hypothesis)
    line = ("[1]0004.01A8::11/21/2026-10:23:45.123488 [nvmemini] irql=DISPATCH callback HwStorStartIo(DeviceExtension=0x1, "
            "Srb=0x2)[3]0004.0F3C::11/21/2026-10:23:45.123490 [nvmemini] irql=DISPATCH call StorPortAllocateMdl(A=1)")
    (finding,) = assert_findings(line, "TRACE001")
    assert finding.location.column == line.index(")[3]") + 2
