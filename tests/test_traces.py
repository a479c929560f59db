"""The bundled traces: each reads without an unparsed line and says what it shows."""

import pytest

from model.events import Comment, Event, SglRecord

from .helpers import TRACES, check_files, read_all

BUNDLED = sorted(TRACES.glob("*.trace"))
REQUIRED = {
    "format-example.trace",
    "wdm-busmaster-clean.trace",
    "storport-miniport-clean.trace",
    "wdm-32bit-device-bounce.trace",
    "multi-cpu-tracefmt.trace",
}


def test_the_required_traces_are_bundled():
    assert REQUIRED <= {path.name for path in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_trace_parses_completely(path):
    result = check_files(path)
    file = result.files[0]
    assert file.error is None and file.unparsed_lines == 0
    assert not any(f.code == "TRACE001" for f in file.findings)
    assert file.warnings == []


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_trace_begins_with_what_it_shows(path):
    items = read_all(path.read_bytes(), path.name)
    header = []
    for item in items:
        if not isinstance(item, Comment):
            break
        header.append(item.text)
    assert len(header) >= 4, "a bundled trace starts with a comment block saying what it shows"


@pytest.mark.parametrize("name", sorted(REQUIRED - {"format-example.trace"}))
def test_realistic_traces_are_a_few_hundred_lines(name):
    path = TRACES / name
    events = [item for item in read_all(path.read_bytes(), name) if isinstance(item, Event)]
    assert len(path.read_text().splitlines()) >= 200 and len(events) >= 150
    assert any(isinstance(e, SglRecord) for e in events)


def test_multi_cpu_trace_uses_tracefmt_prefixes_on_every_event():
    path = TRACES / "multi-cpu-tracefmt.trace"
    events = [item for item in read_all(path.read_bytes(), path.name) if isinstance(item, Event)]
    assert all(event.context.timestamp is not None for event in events)
    assert len({event.context.cpu for event in events}) >= 2
