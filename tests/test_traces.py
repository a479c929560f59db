"""The bundled traces: each reads without an unparsed line and says what it shows."""

import re

import pytest

from model.events import Comment, Event, SglRecord

from .helpers import TRACES, check_files, read_all

BUNDLED = sorted(TRACES.glob("*.trace"))
PROMISE = re.compile(r"^\s*#\s*ruleid:\s*([a-z0-9-]+)\s*$")
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


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_trace_gives_exactly_the_findings_its_comments_promise(path):
    """A trace says which findings it shows as the rule fixtures do: `# ruleid: <name>` on the
    line before the event (no annotation at all: the trace is clean)."""
    promised = sorted((line, name) for line, name in promised_findings(path.read_text(encoding="utf-8")))
    found = sorted((f.location.line, f.name) for f in check_files(path).findings)
    assert found == promised


def promised_findings(text: str) -> list[tuple[int, str]]:
    pending: list[str] = []
    promised = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = PROMISE.match(line)
        if match:
            pending.append(match.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            promised.extend((number, name) for name in pending)
            pending = []
    return promised
