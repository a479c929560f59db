"""Properties over generated traces: text round-trips, and no input breaks the reader."""

import io

from hypothesis import example, given
from hypothesis import strategies as st

from checker.errors import DmalintError
from checker.language.rulebook import builtin_rulebook
from checker.reading.writer import format_record
from model.events import Comment

from .helpers import TRACES, check_bytes, parse_line, read_all
from .strategies import events, records


@given(records)
def test_record_to_text_to_record_is_the_same_record(record):
    line = format_record(record)
    assert "\n" not in line and "\r" not in line
    assert parse_line(line) == record


@given(st.lists(records, max_size=30), events)
def test_generated_trace_reads_back_record_for_record(generated, last_event):
    generated = [*generated, last_event]  # a trace needs an event to be checked at all
    data = "\n".join(format_record(record) for record in generated).encode("utf-8")
    items = [item for item in read_all(data) if not isinstance(item, Exception) and hasattr(item, "location")]
    read_back = [item for item in items if type(item).__name__ != "Diagnostic"]
    assert read_back == generated
    assert [item.location.line for item in read_back] == list(range(1, len(generated) + 1))


def _seed_traces():
    return [path.read_bytes() for path in sorted(TRACES.glob("*.trace"))]


@st.composite
def mutated(draw):
    seeds = _seed_traces()
    data = bytearray(draw(st.sampled_from(seeds))[:4000])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            data[position:position] = draw(st.sampled_from([b"(", b")", b'"', b"=>", b"->", b"#", b"\r", b"\x00", b"\xef\xbb\xbf", b"@dmatrace 7\n", b"\n\n"]))
    return bytes(data)


@given(mutated())
@example(b"")
@example(b"\xff\xfe")
@example(b'call F(A="\xc3')
def test_mutated_traces_raise_only_dmalint_errors(data):
    try:
        findings = check_bytes(data)
    except DmalintError:
        return  # a clear, located refusal
    codes = {rule.code for rule in builtin_rulebook()}
    for finding in findings:  # any rule may judge what still parses; each finding is located
        assert finding.code in codes and finding.location.line >= 1 and finding.message


def test_comment_record_keeps_its_text():
    assert isinstance(parse_line("#x"), Comment)
    assert read_all(b"# a\ncall A()\n")[0].text == " a"
    assert io  # the stream helpers read from BytesIO
