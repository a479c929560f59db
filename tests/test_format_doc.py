"""Every example line of the trace-format page parses, to the record it shows."""

import pytest

from model import events as ev
from model.values import Symbol

from .helpers import ROOT, SHARED, format_examples, parse_line

PROJECT_DOC = ROOT / "docs" / "trace-format.md"
SHARED_DOC = SHARED / "trace-format.md"

EXPECTED_KINDS = [
    ev.VersionDirective,
    ev.TargetDirective,
    ev.DriverDirective,
    ev.Call,
    ev.Call,
    ev.Call,
    ev.Call,
    ev.MdlRecord,
    ev.Call,
    ev.Enter,
    ev.Callback,
    ev.SglRecord,
    ev.Done,
    ev.Leave,
    ev.DmaAccess,
    ev.DmaAccess,
    ev.MemAccess,
    ev.Call,
    ev.Call,
    ev.Call,
    ev.Call,
    ev.Call,
]


# The examples of the project page's last section, which the shared contract does not have.
ADDED_KINDS = [ev.Enter, ev.Callback, ev.Done, ev.Leave, ev.Lost, ev.Lost]
ADDED = "## What captures added to version 1"


def _examples(path, added=False):
    text = path.read_text(encoding="utf-8")
    if ADDED in text:
        shared, _, extra = text.partition(ADDED)
        text = extra if added else shared
    elif added:
        return []
    lines = format_examples(path, text)
    return [line for line in lines if not line.startswith("#")]


@pytest.mark.parametrize("index", range(len(ADDED_KINDS)))
def test_added_example_line_parses_to_its_record(index):
    lines = _examples(PROJECT_DOC, added=True)
    assert len(lines) == len(ADDED_KINDS)
    assert type(parse_line(lines[index])) is ADDED_KINDS[index], lines[index]


def test_added_examples_say_what_they_show():
    lines = _examples(PROJECT_DOC, added=True)
    done = parse_line(lines[2])
    assert done.name == "AdapterControl" and done.result == Symbol("DeallocateObjectKeepRegisters")
    assert parse_line(lines[3]).context.t == 0.0123456
    kit = parse_line(lines[4])
    assert (kit.context.seq, kit.records, kit.buffers) == (45, 1, None) and "DMALINT_LINE_MAX" in kit.reason
    gap = parse_line(lines[5])
    assert gap.context == ev.NO_CONTEXT and gap.records == 2


def test_project_doc_has_every_example():
    assert len(_examples(PROJECT_DOC)) == len(EXPECTED_KINDS)


@pytest.mark.skipif(not SHARED_DOC.exists(), reason="../shared/trace-format.md is not beside this checkout")
def test_project_doc_examples_are_the_shared_contract():
    assert _examples(PROJECT_DOC) == _examples(SHARED_DOC)


@pytest.mark.parametrize("index", range(len(EXPECTED_KINDS)))
def test_example_line_parses_to_its_record(index):
    line = _examples(PROJECT_DOC)[index]
    record = parse_line(line)
    assert type(record) is EXPECTED_KINDS[index], line


@pytest.mark.skipif(not SHARED_DOC.exists(), reason="../shared/trace-format.md is not beside this checkout")
@pytest.mark.parametrize("line", _examples(SHARED_DOC) if SHARED_DOC.exists() else [])
def test_shared_doc_example_line_parses(line):
    assert parse_line(line) is not None


def test_the_example_says_what_it_shows():
    lines = _examples(PROJECT_DOC)
    adapter = parse_line(lines[3])
    assert adapter.name == "IoGetDmaAdapter"
    description = adapter.arg("DeviceDescription")
    assert description["Dma64BitAddresses"] is False and description["MaximumLength"] == 0x20000
    assert adapter.argument("NumberOfMapRegisters").out and adapter.arg("NumberOfMapRegisters") == 32
    assert adapter.result == 0xFFFFE00000200000
    mdl = parse_line(lines[7])
    assert (mdl.va, mdl.offset, mdl.byte_count, mdl.pfns) == (0xFFFFB00012340000, 0, 0x3000, (0x0A340, 0x2A0001, 0x2A0002))
    sgl = parse_line(lines[11])
    assert [(e.address, e.length) for e in sgl.elements] == [(0x0A340000, 0x1000), (0x7F000000, 0x2000)]
    dma = parse_line(lines[14])
    assert (dma.access, dma.address, dma.length, dma.fill) == ("write", 0x0A340000, 0x1000, 0xAB)
    prefixed = parse_line(lines[-1])
    ctx = prefixed.context
    assert (ctx.cpu, ctx.pid, ctx.tid, ctx.provider) == (1, 4, 0xA8, "demo_miniport")
    assert ctx.timestamp == "11/21/2026-10:23:45.123456"


def test_trailing_comment_ends_the_record_span():
    line = "t=0.000312 cpu=1 sgl 0xffffb00020000000 [0x0a340000:0x1000]     # bounced"
    record = parse_line(line)
    assert record.location.column == 1
    assert record.location.end_column == line.index("]") + 2


def test_comment_line_is_a_comment_record():
    record = parse_line("   # ruleid: sgl-double-put")
    assert isinstance(record, ev.Comment) and record.text == " ruleid: sgl-double-put"
    assert record.location.column == 4
