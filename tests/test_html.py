"""The HTML compliance report: self-contained, escaped, complete, and what a browser shows."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from checker import cli
from checker.engine.run import FileResult, RunOptions, RunResult, check_sources
from checker.errors import NotUtf8Error
from checker.findings import Finding, Related, Severity
from checker.language.rulebook import builtin_rulebook
from checker.reading.discover import discover
from checker.reporters import FORMATS, ReportContext
from checker.reporters.excerpts import excerpt, read_lines
from checker.reporters.html import MAX_FINDINGS_SHOWN, render, render_page
from checker.reporters.timeline import IrqlLane, IrqlPoint, Lifetime, Timeline, TimelineRecorder
from checker.reporters.timeline_picture import MAX_ROWS, FindingMark, lay_out
from model.location import SourceLocation

from .helpers import ROOT, TRACES

FIXTURES = ROOT / "tests" / "fixtures"
BUNDLED = [str(TRACES), str(FIXTURES / "typos.trace"), str(FIXTURES / "violations.trace")]


def _page(paths: list[str], root: Path = ROOT, timeline: bool = True) -> tuple[str, RunResult]:
    rulebook = builtin_rulebook()
    result = check_sources(discover(paths), rulebook, RunOptions(recorder=TimelineRecorder if timeline else None))
    stream = io.StringIO()
    render(result, stream, ReportContext(rulebook, argv=("check", "--format", "html", *paths), exit_code=1, root=str(root)))
    return stream.getvalue(), result


@pytest.fixture(scope="module")
def bundled() -> tuple[str, RunResult]:
    return _page(BUNDLED)


class _Outline(HTMLParser):
    """What a reader sees first: the h1, each trace section's heading and verdict, and the
    text of the elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.h1 = ""
        self.traces: list[dict] = []
        self.cards: list[str] = []
        self._card = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("meta", "br", "img", "link", "input", "stop", "line", "rect", "path"):
            return
        classes = (attrs.get("class") or "").split()
        if tag == "section" and "trace" in classes:
            self.traces.append({"id": attrs.get("id"), "path": "", "verdict": "", "findings": 0, "svg": False})
        if self.traces and tag == "article" and "finding" in classes:
            self.traces[-1]["findings"] += 1
        if self.traces and tag == "svg":
            self.traces[-1]["svg"] = True
        self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.stack:
            return
        tag, attrs = self.stack[-1]
        classes = (attrs.get("class") or "").split()
        if tag == "h1":
            self.h1 += data
        elif self.traces and tag == "h2" and any(t == "header" for t, _ in self.stack):
            self.traces[-1]["path"] += data.strip()
        elif self.traces and "verdict" in classes and any(t == "header" for t, _ in self.stack):
            self.traces[-1]["verdict"] += data.strip()
        elif "big" in classes:
            self.cards.append(data.strip())


def _outline(page: str) -> _Outline:
    outline = _Outline()
    outline.feed(page)
    return outline


def test_registered_as_a_format():
    assert FORMATS["html"] is render


def test_page_is_self_contained(bundled):
    page, _ = bundled
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not re.search(r"<link\b|<img\b|<iframe\b|\bsrc=|@import|url\(\s*['\"]?https?:", page, re.I)
    # the only addresses are the rules' references, as plain links
    for address in re.findall(r"https?://[^\s\"'<>]+", page):
        assert address.startswith(("https://learn.microsoft.com/", "http://www.w3.org/2000/svg")), address
    assert "<style>" in page and "<svg" in page


def test_verdicts_counts_and_sections(bundled):
    page, result = bundled
    outline = _outline(page)
    assert outline.h1.strip() == "3 of 7 traces not compliant"
    verdicts = {t["path"]: t["verdict"] for t in outline.traces}
    assert verdicts == {
        "traces/format-example.trace": "Not compliant",
        "traces/multi-cpu-tracefmt.trace": "Compliant",
        "traces/storport-miniport-clean.trace": "Compliant",
        "traces/wdm-32bit-device-bounce.trace": "Compliant",
        "traces/wdm-busmaster-clean.trace": "Compliant",
        "tests/fixtures/typos.trace": "Not compliant",
        "tests/fixtures/violations.trace": "Not compliant",
    }
    findings = {t["path"]: t["findings"] for t in outline.traces}
    assert findings == {path: sum(1 for f in result.findings if f.location.path.endswith(path)) for path in findings}
    assert sum(findings.values()) == len(result.findings) == 12
    assert all(t["svg"] for t in outline.traces)
    assert outline.cards[:2] == ["7", "12"]


def test_each_finding_shows_its_lines_read_from_the_trace(bundled):
    page, _ = bundled
    # SGL003 in violations.trace at line 8: lines 6-10, line 8 marked, its related event (line 6) below
    block = page[page.index('id="trace-7-finding-1"'):page.index('id="trace-7-finding-2"')]
    assert "SGL003" in block and "tests/fixtures/violations.trace:8:1" in block
    numbers = re.findall(r'<span class="ln">(\d+)</span>', block)
    assert numbers == ["6", "7", "8", "9", "10", "6"]
    assert re.search(r'<div class="line target"><span class="ln">8</span><code>t=0.000400 cpu=1 irql=DISPATCH mem read', block)
    assert "Related events" in block and "sg list 0xb000 built here" in block
    # a syntax error marks the bad token
    typo = page[page.index('id="trace-6-finding-2"'):page.index('id="trace-6-finding-3"')]
    assert "<mark>cal</mark>" in typo


def test_rule_documentation_once_per_rule_used(bundled):
    page, result = bundled
    codes = {f.code for f in result.findings}
    for code in codes:
        assert page.count(f'id="rule-{code.lower()}"') == 1
    assert page.count('<article class="rule"') == len(codes)
    rule = builtin_rulebook()["POOL001"]
    section = page[page.index('id="rule-pool001"'):]
    section = section[:section.index("</article>")]
    for text in (rule.summary, "Why it matters", "The contract", "Do this instead"):
        assert text in section
    assert "POOL001" in page and page.count('href="#rule-pool001"') >= 3  # two findings and the table


def test_finding_text_is_escaped():
    rulebook = builtin_rulebook()
    evil = "<script>alert('x')</script> & <b>bold</b>"
    finding = Finding("POOL001", "pool-double-free", Severity.ERROR, evil, SourceLocation("<stdin>", 3, 1, 4),
                      related=(Related(SourceLocation("<stdin>", 1), "<img src=x onerror=alert(1)>"),))
    timeline = Timeline("<stdin>", 1, 3, (), (Lifetime("pool block", 1, "block <i>0x10</i>", "<u>d</u>", 1, 2, 0),))
    result = RunResult(files=[FileResult("<stdin>", events=3, findings=[finding], timeline=timeline)], rules=len(rulebook))
    page = render_page(result, ReportContext(rulebook, root="."))
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page and "<i>0x10" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # standard input cannot be read again: no excerpt, said quietly
    assert 'class="excerpt' not in page and "could not be read again" in page


def test_not_checked_and_clean_traces(tmp_path):
    (tmp_path / "bad.trace").write_bytes(b"@dmatrace 1\ncall KeGetCurrentIrql() # caf\xe9\n")
    shutil.copy(TRACES / "wdm-busmaster-clean.trace", tmp_path / "clean.trace")
    page, result = _page([str(tmp_path)], root=tmp_path)
    assert isinstance(result.files[0].error, NotUtf8Error)
    outline = _outline(page)
    assert {t["path"]: t["verdict"] for t in outline.traces} == {"bad.trace": "Not checked", "clean.trace": "Compliant"}
    assert outline.h1.strip() == "1 of 2 traces not checked"
    assert "not UTF-8" in page and "No findings: every rule holds in this trace." in page
    assert "No rule found anything in these traces." in page


def test_all_clean_headline_and_no_timeline_without_the_option():
    page, _ = _page([str(TRACES / "wdm-busmaster-clean.trace")], timeline=False)
    assert _outline(page).h1.strip() == "The trace is compliant"
    assert "<svg" not in page and "this run did not record one" in page


def test_a_long_trace_is_capped_and_says_what_was_not_drawn(tmp_path):
    lines = ["@dmatrace 1"]
    count = MAX_FINDINGS_SHOWN + 40
    for index in range(count):
        lines.append(f"cpu=0 irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, "
                     f"Tag=0x41424344) -> {0xFFFFB00010000000 + index * 0x1000:#x}")
    (tmp_path / "leaky.trace").write_text("\n".join(lines) + "\n")
    page, result = _page([str(tmp_path)], root=tmp_path)
    assert len(result.findings) == count  # each block leaks (POOL005)
    assert page.count('<article class="finding') == MAX_FINDINGS_SHOWN
    assert "40 more findings in this trace not shown here" in page
    # 540 blocks live at once: MAX_ROWS rows are drawn, the rest counted, in the picture and under it
    hidden = count - MAX_ROWS
    assert f"up to {count} live at once" in page
    assert f">{hidden} more not drawn</text>" in page
    assert f"{hidden} more not drawn: at most {MAX_ROWS} objects of a kind live at the same time are drawn." in page
    assert page.count('<rect class="bar pool') == MAX_ROWS


def test_excerpt_shifts_far_columns_into_view_and_shows_control_characters(tmp_path):
    path = tmp_path / "x.trace"
    path.write_bytes(b"\xef\xbb\xbfone\nt\x01wo\n" + b"a" * 150 + b" BAD tail\nfour\n")
    lines = read_lines(path, range(1, 5))
    assert lines[1] == "one" and lines[2] == "t\x01wo"
    (line,) = excerpt(lines, 3, 152, 155, context=0)
    assert line.marked == "BAD" and line.before.startswith("\u2026") and line.target
    assert len(line.before) == 41
    shown = excerpt(lines, 2, 1, 5)
    assert [x.number for x in shown] == [1, 2, 3, 4]
    assert shown[1].before == "t\ufffdwo" and shown[1].marked == "" and shown[1].target
    assert read_lines(tmp_path / "missing.trace", [1]) == {}


def test_cli_writes_html(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(FIXTURES)
    status = cli.main(["check", "--format", "html", "-o", str(tmp_path / "r.html"), "violations.trace"])
    assert status == 1
    page = (tmp_path / "r.html").read_text()
    assert _outline(page).traces[0] | {"svg": None} == {"id": "trace-1", "path": "violations.trace",
                                                         "verdict": "Not compliant", "findings": 6, "svg": None}


# --- in a browser ------------------------------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium); the browser checks need it"
)


def _browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=180)


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = b""
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.slow
@needs_chromium
def test_chromium_renders_the_report(bundled, tmp_path):
    page, result = bundled
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    shot = tmp_path / "out.png"
    done = _browser(f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri())
    assert shot.exists(), done.stderr
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2400)
    assert shot.stat().st_size > 50_000
    assert len(set(pixels[:: 97])) > 50, "the screenshot is nearly blank"

    dom = _browser("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr
    outline = _outline(dom.stdout)
    assert outline.h1.strip() == "3 of 7 traces not compliant"
    assert [t["verdict"] for t in outline.traces] == ["Not compliant", "Compliant", "Compliant", "Compliant", "Compliant",
                                                       "Not compliant", "Not compliant"]
    assert [t["findings"] for t in outline.traces] == [3, 0, 0, 0, 0, 3, 6]
    assert all(t["svg"] for t in outline.traces)
    for heading in ("How to read this report", "Traces", "Findings by rule", "The rules that fired"):
        assert f">{heading}</h2>" in dom.stdout
    assert "<script" not in dom.stdout


def test_picture_layout_is_bounded_and_says_what_it_left_out():
    points = tuple(IrqlPoint(line, level, None, 31 if line == 500 else level) for line, level in
                   ((line, 2 * (line % 2)) for line in range(10, 20_010)))
    lifetimes = tuple(Lifetime("sg list", n, f"sg list {n:#x}", "", 150 * n - 139, 150 * n, 0) for n in range(1, 101))
    timeline = Timeline("t.trace", 1, 20_010, (IrqlLane(0, points, merged=7),), lifetimes, lifetimes_not_drawn=5)
    marks = [FindingMark(20_010, "warning", "POOL005", f"a{n}", "leak") for n in range(300)]
    marks.append(FindingMark(11, "error", "SGL003", "first", "read", related_lines=(11,)))
    picture = lay_out(timeline, marks)
    (lane,) = picture.lanes
    assert lane.path.count("V") < 3 * (picture.right - picture.left) + 10  # one stroke per pixel column at most
    assert lane.bands[0].label == "PASSIVE" and lane.bands[-1].label == "HIGH"
    high = lane.bands[-1].y
    assert f"V{high}" in lane.path or any(peak.y == high for peak in lane.peaks)  # the raise to HIGH at line 500
    assert [m.code for m in picture.markers] == ["SGL003", "POOL005"]
    assert picture.markers[1].title == "line 20010: 300 findings: POOL005 x300" and picture.markers[1].severity == "warning"
    (group,) = picture.groups
    assert group.count == 100 and group.not_drawn == 0 and group.most_live == 1
    assert sum(bar.flagged for bar in group.bars) == 1  # the list created at line 11, where SGL003 is
    assert picture.notes == ("5 more not drawn: only the first 100 objects of the trace are kept.",
                             "7 IRQL changes more not drawn one by one: neighbouring changes were merged; the shaded areas "
                             "show the highest level reached.")
