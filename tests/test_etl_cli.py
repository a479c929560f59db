"""`dmalint check capture.etl` and `dmalint etl`: captures go through the same reports, exit
codes and gates as text traces; a lossy capture is never clean; broken files are clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from checker import cli
from checker.reading.etl import capture_lines

from .etl_writer import TL, kit_event, tl_event, write_etl
from .helpers import ROOT

REAL = ROOT / "tests" / "fixtures" / "etl"
CLEAN = [
    "seq={seq} cpu={cpu} tid=4 irql=PASSIVE_LEVEL call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x100, Tag=0x41424344) -> 0xffffb00012340000",
    "seq={seq} cpu={cpu} tid=4 irql=PASSIVE_LEVEL mem write 0xffffb00012340000 0x100",
    "seq={seq} cpu={cpu} tid=4 irql=PASSIVE_LEVEL call ExFreePoolWithTag(P=0xffffb00012340000, Tag=0x41424344)",
]
DOUBLE_FREE = CLEAN[2]


def kit(lines, cpus=(0,), stamp=1_000_000):
    """Kit events for these line templates, seq from 1, spread over `cpus` in turn."""
    events = []
    for seq, template in enumerate(lines, start=1):
        cpu = cpus[(seq - 1) % len(cpus)]
        events.append(kit_event(seq, template.format(seq=seq, cpu=cpu), cpu=cpu, timestamp=stamp + 10 * seq))
    return events


def test_a_clean_capture_checks_clean_and_a_finding_is_at_its_text_line(tmp_path, capsys):
    clean = write_etl(tmp_path / "clean.etl", kit(CLEAN, cpus=(0, 1)), cpus=2)
    assert cli.main(["check", str(clean)]) == 0
    capsys.readouterr()
    buggy = write_etl(tmp_path / "buggy.etl", kit([*CLEAN, DOUBLE_FREE], cpus=(1, 0)), cpus=2, shuffle_buffers=True)
    assert cli.main(["check", "--format", "json", str(buggy)]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    text = list(capture_lines(buggy))
    assert finding["code"] == "POOL001" and "seq=4 " in text[finding["line"] - 1]


def test_a_lossy_capture_is_never_clean(tmp_path, capsys):
    path = write_etl(tmp_path / "lossy.etl", kit(CLEAN), events_lost=3)
    assert cli.main(["check", "--ignore", "TRACE007", str(path)]) == 2  # it cannot be turned off
    assert "TRACE007 cannot be turned off" in capsys.readouterr().err
    assert cli.main(["check", "--format", "json", str(path)]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["code"] for f in findings] == ["TRACE007"]
    assert "lost records=3" in list(capture_lines(path))[findings[0]["line"] - 1]


def test_a_seq_gap_is_a_trace007_at_the_gap(tmp_path, capsys):
    events = [e for e in kit(CLEAN * 2) if e.user_data[:8] != (3).to_bytes(8, "little")]  # seq 3 never arrived
    path = write_etl(tmp_path / "gap.etl", events)
    assert cli.main(["check", "--format", "json", str(path)]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["code"] == "TRACE007" and "seq 3" in finding["message"] + list(capture_lines(path))[finding["line"] - 1]


def test_a_directory_gives_its_captures_and_the_html_report_shows_their_lines(tmp_path):
    write_etl(tmp_path / "a.etl", kit([*CLEAN, DOUBLE_FREE]))
    report = tmp_path / "out.html"
    assert cli.main(["check", "--format", "html", "-o", str(report), str(tmp_path)]) == 1
    assert "ExFreePoolWithTag(P=0xffffb00012340000" in report.read_text()


def test_a_real_file_without_kit_events_is_nothing_to_check(capsys):
    status = cli.main(["check", str(REAL / "lxcore_kernel.etl")])
    err = capsys.readouterr().err
    assert status == 2
    assert "holds no events of Dmalint.Capture" in err and "Microsoft.Windows.Subsystem.LxCore (2 events)" in err
    assert "Traceback" not in err


def test_a_damaged_capture_is_a_clear_error_without_a_traceback(tmp_path):
    good = write_etl(tmp_path / "g.etl", kit(CLEAN * 50), buffer_size=4096).read_bytes()
    (tmp_path / "cut.etl").write_bytes(good[:-1000])
    run = subprocess.run([sys.executable, "-m", "checker", "check", str(tmp_path / "cut.etl")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "cut.etl: error: truncated buffer at byte" in run.stderr
    assert "Traceback" not in run.stderr


def test_dmalint_etl_lists_a_capture(tmp_path, capsys):
    other = tl_event("Contoso.Other", "Ping", [("Count", TL.UINT32, 7)], cpu=1)
    path = write_etl(tmp_path / "s.etl", [other, *kit(CLEAN)], cpus=2, events_lost=1)
    assert cli.main(["etl", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Contoso.Other" in text and "Ping" in text and "Dmalint.Capture" in text and "48c82022-b14f-56be-1364-624fff462dca" in text
    assert cli.main(["etl", "--format", "jsonl", str(path)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["fields"]["Seq"] for r in records if r.get("provider_name") == "Dmalint.Capture"] == [1, 2, 3]
    assert "summary" in records[-1]
    assert cli.main(["etl", "--summary", str(path)]) == 0
    assert "Seq=1" not in capsys.readouterr().out
    assert cli.main(["etl", "--format", "trace", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == list(capture_lines(path))


def test_dmalint_etl_on_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["etl", str(tmp_path / "nope.etl")]) == 2
    assert "nope.etl: error: no such file" in capsys.readouterr().err
