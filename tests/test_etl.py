"""The ETL reader: real Windows files, round trips through the test writer, the kit's text, errors."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.errors import EtlError, InputError, NoCaptureEventsError
from checker.reading.etl import KIT_PROVIDER_GUID, EtlFile, _SeqMerge, capture_lines, is_etl
from checker.reading.etl_listing import run_etl_listing
from checker.reading.etl_tracelogging import HexInt
from checker.reading.parser import LineParser
from model.location import SourceLocation

from .etl_writer import TL, dump_to_etl, kit_event, provider_guid, tl_event, tl_event_metadata, write_etl
from .helpers import ROOT, check_bytes

DATA = ROOT / "tests" / "fixtures" / "etl"  # copied from ../shared/data/etl (Apache-2.0, licence beside them)
LXCORE = DATA / "lxcore_kernel.etl"
AMSI = DATA / "AMSITrace.etl"
START = 1_000_000  # the writer's session start, in 10 MHz ticks
LXCORE_GUID = uuid.UUID("0cd1c309-0878-4515-83db-749843b3f5c9")


def kit_line(seq: int, cpu: int = 0, verb: str = "call KeLowerIrql(NewIrql=PASSIVE_LEVEL)") -> str:
    return f"seq={seq} cpu={cpu} tid=4242 irql=DISPATCH_LEVEL {verb}"


def kit_capture(tmp_path: Path, seqs, *, cpus: int = 4, name: str = "kit.etl", extra=(), **options) -> Path:
    """A capture of kit events with these seq numbers (in this order), CPU seq % cpus, 10 µs apart."""
    events = [kit_event(seq, kit_line(seq, seq % cpus), cpu=seq % cpus, timestamp=START + 100 * seq) for seq in seqs]
    return write_etl(tmp_path / name, [*events, *extra], cpus=cpus, **options)


def body(path: Path, **options) -> list[str]:
    """capture_lines without its two directives, the header comment and the summary comment."""
    lines = list(capture_lines(path, **options))
    assert lines[:2] == ["@dmatrace 1", "@target arch=x64"] or lines[1] == "@target arch=x86"
    assert lines[2].startswith(f"# capture {path}: ETL,")
    assert lines[-1].startswith("# capture summary: ")
    return lines[3:-1]


def event_lines(seqs, cpus: int = 4) -> list[str]:
    """The text `kit_capture` events come out as."""
    return [f"t={100 * seq / 1e7:.7f} {kit_line(seq, seq % cpus)}" for seq in seqs]


# -- real files ----------------------------------------------------------------------------------


def test_lxcore_header():
    header = EtlFile(LXCORE).header
    assert (header.pointer_size, header.number_of_processors, header.events_lost, header.buffers_lost) == (8, 6, 0, 0)
    assert (header.buffer_size, header.clock_name, header.frequency) == (8192, "QPC", 10_000_000)
    assert header.session_name == "lxcore_kernel"
    assert header.log_file_name == r"C:\Prog\lxcore_kernel.etl"
    assert header.start_time.isoformat() == "2020-07-14T12:04:31.138736+00:00"
    assert header.version == (10, 0, 1, 5) and header.provider_version == 19041


def test_lxcore_breakpoint_events():
    records = list(EtlFile(LXCORE).events())
    assert [record.kind for record in records] == ["system", "system", "event", "event"]
    assert [record.name for record in records[:2]] == ["HEADER/0", "HEADER/80"]
    first, second = records[2:]
    assert (first.cpu, first.timestamp, second.cpu, second.timestamp) == (3, 111046477804, 5, 111046465597)
    assert first.offset == 0x2048 and second.offset == 0x4048
    for event in (first, second):
        assert event.provider == LXCORE_GUID and str(event.provider) == "0cd1c309-0878-4515-83db-749843b3f5c9"
        assert event.provider_name == "Microsoft.Windows.Subsystem.LxCore"
        assert event.name == "BreakPoint"
        assert (event.pid, event.tid, event.level, event.channel, event.keyword) == (5876, 2868, 2, 11, 0x400000000000)
        assert event.decode_error is None
    assert first.fields == {
        "ErrorLevel": 2, "instanceId": uuid.UUID(int=0), "LxPid": -1, "LxTid": -1, "LxNs": 0, "ExecutablePath": "",
        "Function": "LxpInstanceStart", "Line": 2659, "Message": "[0xc0000034] LxpInstanceInitialize\n",
    }
    assert list(first.fields) == list(second.fields)
    assert second.fields["Function"] == "LxpDrvFsTypeMount"
    assert second.fields["Line"] == 10528
    assert second.fields["Message"] == "Failed to open volume C:\\WINDOWS\\system32\\lxss\\tools, result -2\n"
    assert round(first.time, 7) == 5.7651354 and round(second.time, 7) == 5.7639147


def test_amsi_events():
    etl = EtlFile(AMSI)
    assert etl.header.events_lost == 3 and etl.header.number_of_processors == 8
    events = [record for record in etl.events() if record.kind == "event"]
    assert len(events) == 19
    assert {(event.provider_name, event.name) for event in events} == {("AmsiTrace", "AmsiScript")}
    engines = {event.fields["Engine"] for event in events}
    assert "PowerShell_C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe_10.0.18362.1" in engines
    assert "VBScript" in engines
    scripts = [event.fields["Script"] for event in events]
    assert "Get-Alias" in scripts and "$global:?" in scripts and 'msgbox "Is VBScript Dead?"\r\n' in scripts
    by_script = {event.fields["Script"]: event.fields["Raw Script"] for event in events}
    assert by_script["Get-Alias"] == "Get-Alias"  # a char16 array (UINT16, out-type STRING), shown as text


def test_real_files_hold_no_kit_events():
    lines = []
    with pytest.raises(NoCaptureEventsError) as caught:
        for line in capture_lines(LXCORE):
            lines.append(line)
    assert lines[:2] == ["@dmatrace 1", "@target arch=x64"]
    assert str(caught.value) == (
        f"{LXCORE}: error: the file holds no events of Dmalint.Capture {{48c82022-b14f-56be-1364-624fff462dca}}: "
        "it holds Microsoft.Windows.Subsystem.LxCore (2 events), 2 system records; "
        "was the session started with the kit's provider?")
    assert caught.value.providers == {"Microsoft.Windows.Subsystem.LxCore": 2, "system": 2}
    lines = []
    with pytest.raises(NoCaptureEventsError, match=r"it holds AmsiTrace \(19 events\), 2 system records"):
        for line in capture_lines(AMSI):
            lines.append(line)
    assert 'lost records=3 reason="the ETW session lost 3 events (log file header EventsLost)"' in lines


def test_is_etl():
    assert is_etl(LXCORE.read_bytes()[:4096]) and is_etl(AMSI.read_bytes()[:200])
    assert not is_etl(b"@dmatrace 1\n@target arch=x64\n" * 10)
    assert not is_etl(b"") and not is_etl(LXCORE.read_bytes()[:80])
    assert not is_etl((ROOT / "traces" / "format-example.trace").read_bytes()[:4096])


# -- the writer ----------------------------------------------------------------------------------


def test_provider_guid_is_the_tracelogging_name_hash():
    assert str(provider_guid("MyCompany.MyComponent.MyProvider")) == "d5b90669-1aad-5db8-16c9-6286a7fcfe33"
    assert provider_guid("Dmalint.Capture") == KIT_PROVIDER_GUID
    assert provider_guid("dmalint.capture") == KIT_PROVIDER_GUID  # the name is upper-cased first


def test_writer_files_are_read_as_written(tmp_path):
    path = kit_capture(tmp_path, range(1, 9), buffer_size=1024)
    etl = EtlFile(path)
    assert etl.header.buffers_written == path.stat().st_size // 1024
    kit = [record for record in etl.events() if record.kind == "event"]
    assert sorted(record.fields["Seq"] for record in kit) == list(range(1, 9))
    for record in kit:
        seq = record.fields["Seq"]
        assert (record.cpu, record.timestamp, record.provider, record.provider_name) == (seq % 4, START + 100 * seq, KIT_PROVIDER_GUID, "Dmalint.Capture")
        assert (record.name, record.level, record.keyword, record.channel, record.id) == ("Line", 5, 1, 11, 0)
        assert record.fields["Line"] == kit_line(seq, seq % 4)


def test_every_in_type_round_trips(tmp_path):
    guid = uuid.UUID("12345678-9abc-def0-1122-334455667788")
    fields = [
        ("i8", TL.INT8, -5), ("u8", TL.UINT8, 250), ("i16", TL.INT16, -300), ("u16", TL.UINT16, 65000),
        ("i32", TL.INT32, -70000), ("u32", TL.UINT32, 4_000_000_000), ("i64", TL.INT64, -(2**40)),
        ("u64", TL.UINT64, 2**63), ("f", TL.FLOAT, 1.5), ("d", TL.DOUBLE, -2.25), ("b", TL.BOOL32, 1),
        ("h32", TL.HEXINT32, 0xDEAD), ("h64", TL.HEXINT64, 0xFFFFB00012340000), ("p", TL.POINTER, 0xFFFFE00C4F7C2010),
        ("g", TL.GUID, guid), ("ft", TL.FILETIME, 133_000_000_000_000_000), ("sid", TL.SID, "S-1-5-21-7-8-9"),
        ("a", TL.ANSISTRING, "ansi"), ("w", TL.UNICODESTRING, "wide ü"), ("ca", TL.COUNTEDANSISTRING, "abc"),
        ("cw", TL.COUNTEDSTRING, "counted"), ("bin", TL.BINARY, b"\x00\x01\xff"), ("cb", TL.COUNTEDBINARY, b"xy"),
        ("va", TL.UINT32 | TL.VCOUNT, [1, 2, 3]), ("fa", TL.INT16 | TL.CCOUNT, [-1, 7]),
        ("vs", TL.ANSISTRING | TL.VCOUNT, ["x", "yz"]), ("empty", TL.UINT64 | TL.VCOUNT, []),
        ("bytes", TL.UINT8 | TL.VCOUNT, [1, 2]), ("hexarray", TL.HEXINT64 | TL.VCOUNT, [16, 32]),
        ("flag", TL.UINT8, 1, TL.OUT_BOOLEAN), ("status", TL.UINT32, 0xC0000034, TL.OUT_HEX),
        ("utf8", TL.COUNTEDANSISTRING, "é", TL.OUT_UTF8),
    ]
    path = write_etl(tmp_path / "types.etl", [tl_event("Types.Provider", "AllTypes", fields, cpu=2, timestamp=START + 5)])
    (event,) = [record for record in EtlFile(path).events() if record.kind == "event"]
    assert event.decode_error is None
    values = event.fields
    assert list(values) == [field[0] for field in fields]
    expected = {field[0]: field[2] for field in fields}
    expected.update(b=True, flag=True, bytes=b"\x01\x02", ft=values["ft"])
    assert values == expected
    assert values["ca"] == "abc"  # not "\x00abc", etl-parser's counted-string bug
    assert values["ft"].isoformat() == "2022-06-18T04:26:40+00:00"
    for name in ("h32", "h64", "p", "status"):
        assert isinstance(values[name], HexInt)
    assert str(values["h64"]) == "0xffffb00012340000" and str(values["p"]) == "0xffffe00c4f7c2010"
    assert [str(item) for item in values["hexarray"]] == ["0x10", "0x20"]
    assert event.provider == provider_guid("Types.Provider") and event.provider_name == "Types.Provider"


def test_pointer_size_comes_from_the_event_header(tmp_path):
    event = tl_event("P", "E", [("p", TL.POINTER, 0x1234_5678), ("after", TL.UINT8, 9)], pointer_size=4)
    path = write_etl(tmp_path / "p32.etl", [event], pointer_size=4)
    (record,) = [record for record in EtlFile(path).events() if record.kind == "event"]
    assert record.fields == {"p": 0x1234_5678, "after": 9}


def test_fixed_count_arrays_take_their_count_from_the_metadata(tmp_path):
    metadata = tl_event_metadata("E", [("pair", TL.UINT16 | TL.CCOUNT, None, 2), ("tail", TL.UINT8)])
    event = tl_event("P", "E", [("pair", TL.UINT16 | TL.CCOUNT, [5, 6]), ("tail", TL.UINT8, 7)])
    assert dict(event.extended)[11] == metadata
    assert event.user_data == struct.pack("<HHB", 5, 6, 7)  # no count in the payload
    (record,) = [r for r in EtlFile(write_etl(tmp_path / "c.etl", [event])).events() if r.kind == "event"]
    assert record.fields == {"pair": [5, 6], "tail": 7}


def test_a_payload_shorter_than_its_schema_is_kept_undecoded(tmp_path):
    event = tl_event("Short.Provider", "E", [("a", TL.UINT32, 1)])
    event = type(event)(**{**{slot: getattr(event, slot) for slot in event.__slots__}, "user_data": b"\x01\x00"})
    (record,) = [r for r in EtlFile(write_etl(tmp_path / "s.etl", [event])).events() if r.kind == "event"]
    assert record.fields is None and record.data == b"\x01\x00"
    assert record.decode_error == "field 'a' needs 4 bytes, 2 remain"


# -- the kit's text ------------------------------------------------------------------------------


def test_buffers_out_of_order_come_out_in_seq_order(tmp_path):
    path = kit_capture(tmp_path, range(1, 301), buffer_size=2048, shuffle_buffers=True, seed=3)
    in_file = [record.fields["Seq"] for record in EtlFile(path).events() if record.kind == "event"]
    assert in_file != sorted(in_file)  # the file really is out of order
    assert body(path) == event_lines(range(1, 301))


def test_summary_and_header_comments(tmp_path):
    path = kit_capture(tmp_path, range(1, 11), cpus=3)
    lines = list(capture_lines(path, display="cap.etl"))
    assert lines[2] == ("# capture cap.etl: ETL, 3 CPUs, pointer size 8, QPC clock at 10000000 Hz, "
                        "session 'DmalintCapture' started 2026-11-24T09:00:00.000000Z")
    assert lines[-1] == "# capture summary: 10 events of Dmalint.Capture on 3 CPUs; skipped: 1 system record"


def test_time_has_seven_decimals_since_the_session_start(tmp_path):
    events = [kit_event(1, kit_line(1), timestamp=START + 12_345_678), kit_event(2, kit_line(2), timestamp=START - 5)]
    path = write_etl(tmp_path / "t.etl", events)
    assert body(path) == [f"t=1.2345678 {kit_line(1)}", f"t=0.0000000 {kit_line(2)}"]


def test_session_losses_become_lost_lines(tmp_path):
    path = kit_capture(tmp_path, [1, 2], events_lost=3, buffers_lost=1)
    assert body(path)[:2] == [
        'lost records=3 reason="the ETW session lost 3 events (log file header EventsLost)"',
        'lost buffers=1 reason="the ETW session lost 1 buffer (log file header BuffersLost)"',
    ]


def test_seq_gaps_become_lost_lines(tmp_path):
    path = kit_capture(tmp_path, [3, 4, 6, 10])
    assert body(path) == [
        'lost records=2 reason="the capture has no records with seq 1..2"',
        *event_lines([3, 4]),
        'lost records=1 reason="the capture has no records with seq 5"',
        *event_lines([6]),
        'lost records=3 reason="the capture has no records with seq 7..9"',
        *event_lines([10]),
    ]


def test_a_duplicate_seq_is_written_once_and_commented(tmp_path):
    path = kit_capture(tmp_path, [1, 2, 2, 3])
    assert body(path) == [
        *event_lines([1, 2]),
        'lost records=1 reason="seq 2 came after seq 2 had been written (a duplicate, or later than the reorder '
        'window of 100000 records allowed); it was not checked"',
        *event_lines([3]),
    ]


def test_directives_are_written_as_they_are(tmp_path):
    events = [kit_event(1, '@driver name="demo.sys"', timestamp=START + 1), kit_event(2, kit_line(2, 2), cpu=1, timestamp=START + 200)]
    assert body(write_etl(tmp_path / "d.etl", events)) == ['@driver name="demo.sys"', *event_lines([2])]


def test_other_providers_are_counted_and_skipped(tmp_path):
    others = [tl_event("Other.Provider", "Ping", [("N", TL.UINT32, n)], cpu=n % 2, timestamp=START + n) for n in range(3)]
    others.append(tl_event("Bare", "NoTraits", [("X", TL.UINT8, 1)], traits=False))
    path = kit_capture(tmp_path, range(1, 6), extra=others)
    lines = list(capture_lines(path))
    assert lines[3:-1] == event_lines(range(1, 6))
    assert lines[-1] == (f"# capture summary: 5 events of Dmalint.Capture on 4 CPUs; skipped: {provider_guid('Bare')} "
                         "(1 event), Other.Provider (3 events), 1 system record")


def test_x86_capture(tmp_path):
    events = [kit_event(seq, kit_line(seq), timestamp=START + 100 * seq, pointer_size=4) for seq in (1, 2)]
    path = write_etl(tmp_path / "x86.etl", events, pointer_size=4)
    assert EtlFile(path).header.pointer_size == 4
    lines = list(capture_lines(path))
    assert lines[1] == "@target arch=x86"
    assert lines[3:5] == [f"t=0.0000100 {kit_line(1)}", f"t=0.0000200 {kit_line(2)}"]


def test_no_kit_events_names_what_the_file_holds(tmp_path):
    others = [tl_event("Other.Provider", "Ping", [("N", TL.UINT32, 1)]) for _ in range(2)]
    path = write_etl(tmp_path / "none.etl", others)
    with pytest.raises(NoCaptureEventsError) as caught:
        list(capture_lines(path))
    assert isinstance(caught.value, InputError)
    assert "no events of Dmalint.Capture {48c82022-b14f-56be-1364-624fff462dca}: it holds Other.Provider (2 events), " \
           "1 system record; was the session started with the kit's provider?" in str(caught.value)


def test_a_kit_line_event_of_another_shape_is_an_error(tmp_path):
    wrong = tl_event("Dmalint.Capture", "Line", [("Seq", TL.UINT64, 1), ("Line", TL.UINT32, 7)])
    with pytest.raises(EtlError, match=r"Dmalint.Capture event Line at byte 0x10048 has fields \(Seq=int, Line=int\)"):
        list(capture_lines(write_etl(tmp_path / "w.etl", [wrong])))


def test_other_events_of_the_kit_provider_are_counted(tmp_path):
    other = tl_event("Dmalint.Capture", "Hello", [("V", TL.UINT32, 1)])
    lines = list(capture_lines(kit_capture(tmp_path, [1], extra=[other])))
    assert lines[-1].endswith("skipped: Dmalint.Capture Hello (1 event), 1 system record")


def test_the_fast_path_gives_what_the_general_path_gives(tmp_path):
    """capture_lines reads most kit events directly; the same text must come out of events()."""
    events, seq = [], 0
    for step in range(600):
        seq += 1
        text = '@adapter wdm address=0x1 dma64=TRUE' if step % 97 == 0 else kit_line(seq, step % 3, f"call F(A={step:#x}, S=\"é{step}\")")
        events.append(kit_event(seq, text, cpu=(step * 7) % 3, timestamp=START + 13 * step))
        if step % 50 == 0:
            events.append(tl_event("Noise", "N", [("S", TL.ANSISTRING, "x" * step)], cpu=step % 3, timestamp=START + 13 * step))
    path = write_etl(tmp_path / "diff.etl", events, cpus=3, buffer_size=4096, shuffle_buffers=True, seed=5)
    etl = EtlFile(path)
    expected = {}
    for record in etl.events():
        if record.provider == KIT_PROVIDER_GUID:
            line = record.fields["Line"]
            expected[record.fields["Seq"]] = line if line.startswith("@") else f"t={record.time:.7f} {line}"
    assert body(path) == [expected[key] for key in sorted(expected)]


def test_reorder_window_bounds_what_is_held(tmp_path):
    merge = _SeqMerge(window=4)
    out = list(merge.feed([(2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f"), (1, "a"), (7, "g")])) + list(merge.finish())
    assert merge.high_water == 5  # never more than window + 1
    assert out == ['lost records=1 reason="the capture has no records with seq 1"', "b", "c", "d", "e", "f",
                   'lost records=1 reason="seq 1 came after seq 6 had been written (a duplicate, or later than the '
                   'reorder window of 4 records allowed); it was not checked"', "g"]
    # the same through a file: seq 1 written last, after 20 later ones, with a window of 8
    path = kit_capture(tmp_path, [*range(2, 22), 1], cpus=1)
    lines = body(path, window=8)
    assert lines[0] == 'lost records=1 reason="the capture has no records with seq 1"'
    assert lines[1:21] == event_lines(range(2, 22), cpus=1)
    assert lines[21].startswith('lost records=1 reason="seq 1 came after seq 21 had been written')
    assert body(path, window=100) == event_lines(range(1, 22), cpus=1)  # within the window: put back in place


def test_the_text_checks_with_dmalint_at_its_own_line_numbers(tmp_path):
    lines = [
        '@driver name="demo.sys"',
        "seq=2 cpu=0 tid=4 irql=PASSIVE_LEVEL call ExAllocatePool2(Flags=0x40, NumberOfBytes=0x100, Tag=0x41424344) -> 0xffffb00012340000",
        "seq=3 cpu=1 tid=8 irql=PASSIVE_LEVEL call ExFreePoolWithTag(P=0xffffb00012340000, Tag=0x41424344)",
        "seq=5 cpu=0 tid=4 irql=PASSIVE_LEVEL call ExFreePoolWithTag(P=0xffffb00012340000, Tag=0x41424344)",
    ]
    seqs = [1, 2, 3, 5]
    events = [kit_event(seq, line, cpu=[0, 0, 1, 0][n], timestamp=START + 100 * n) for n, (seq, line) in enumerate(zip(seqs, lines, strict=True))]
    path = write_etl(tmp_path / "k.etl", reversed(events))
    text = list(capture_lines(path, display="k.etl"))
    parser = LineParser("k.etl")
    for number, line in enumerate(text, 1):
        parser.parse(line, number)  # every line parses
    findings = check_bytes(("\n".join(text) + "\n").encode(), "k.etl")
    assert [(f.code, f.location.line) for f in findings] == [("TRACE007", 7), ("POOL001", 8)]
    assert text[6] == 'lost records=1 reason="the capture has no records with seq 4"'


# -- errors --------------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    (tmp_path / "empty.etl").write_bytes(b"")
    with pytest.raises(EtlError) as caught:
        EtlFile(tmp_path / "empty.etl", display="empty.etl")
    assert str(caught.value) == "empty.etl: error: not an ETL file: it is empty"
    assert caught.value.offset == 0 and caught.value.location.line == 0


def test_garbage_and_text_are_not_etl(tmp_path):
    (tmp_path / "text.etl").write_bytes(b"@dmatrace 1\n" * 100)
    with pytest.raises(EtlError, match="not an ETL file: it does not start with a WMI buffer header"):
        list(capture_lines(tmp_path / "text.etl"))


def test_truncated_file_names_the_buffer(tmp_path):
    path = kit_capture(tmp_path, range(1, 5))
    data = path.read_bytes()
    path.write_bytes(data[:65536 + 1234])
    with pytest.raises(EtlError) as caught:
        list(EtlFile(path, display="cut.etl").events())
    assert str(caught.value) == "cut.etl: error: truncated buffer at byte 0x10000: header says 65536 bytes, 1234 remain"
    assert caught.value.offset == 0x10000


def test_unknown_record_header_type(tmp_path):
    path = kit_capture(tmp_path, [1])
    data = bytearray(path.read_bytes())
    data[65536 + 72 + 2] = 0x7E
    path.write_bytes(bytes(data))
    with pytest.raises(EtlError, match=r"unknown record header type 0x7e at byte 0x10048") as caught:
        list(capture_lines(path))
    assert caught.value.offset == 0x10048


def test_record_running_past_its_buffer(tmp_path):
    path = kit_capture(tmp_path, [1])
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 65536 + 72, 0xFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(EtlError, match=r"record at byte 0x10048 says it is 65520 bytes, but only \d+ remain"):
        list(EtlFile(path).events())


def test_errors_pickle_whole():
    error = EtlError("truncated", SourceLocation("x.etl", 0), 12)
    again = pickle.loads(pickle.dumps(error))
    assert (again.offset, str(again)) == (12, "x.etl: error: truncated")


_FUZZ: tuple[bytes, list[int]] | None = None


def _fuzz_base(tmp_path_factory) -> tuple[bytes, list[int]]:
    """A small capture (1 KiB buffers, 3 CPUs, kit events among other providers' events of many
    field types) and the byte offsets of its records."""
    global _FUZZ
    if _FUZZ is None:
        others = [tl_event("Other", "E", [("S", TL.ANSISTRING, "text"), ("V", TL.UINT32 | TL.VCOUNT, [1, 2]),
                                          ("W", TL.UNICODESTRING, "w"), ("G", TL.GUID, KIT_PROVIDER_GUID),
                                          ("N", TL.INT64, -n), ("C", TL.COUNTEDANSISTRING, "ab"), ("B", TL.BINARY, b"z")],
                           cpu=n % 3, timestamp=START + 100 * n + 50) for n in range(1, 25, 4)]
        path = kit_capture(tmp_path_factory.mktemp("fuzz"), range(1, 25), cpus=3, buffer_size=1024, extra=others)
        _FUZZ = path.read_bytes(), [record.offset for record in EtlFile(path).events()]
    return _FUZZ


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.one_of(st.none(), st.integers(0, 9000)),
       flips=st.lists(st.tuples(st.sampled_from(["anywhere", "buffer", "record"]), st.integers(0, 9000),
                                st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupt_files_give_etl_errors_only(tmp_path_factory, cut, flips):
    """Truncated and byte-flipped files: reading gives EtlError or succeeds, never another exception.

    Flips land anywhere, in the first bytes of a buffer (its header and first record's header),
    or in the first 160 bytes of a record (header, extended data, start of the payload)."""
    good, records = _fuzz_base(tmp_path_factory)
    data = bytearray(good)
    for where, position, value in flips:
        if where == "buffer":
            position = (position // 1024) * 1024 + position % 160
        elif where == "record":
            position = records[position % len(records)] + position % 160
        data[position % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path_factory.mktemp("case") / "case.etl"
    path.write_bytes(bytes(data))
    try:
        for _ in EtlFile(path).events():
            pass
    except EtlError as error:
        assert 0 <= error.offset <= len(data) and str(error).startswith(f"{path}: error: ")
    try:
        for line in capture_lines(path):
            assert "\n" not in line
    except (EtlError, NoCaptureEventsError):
        pass  # a file whose kit events all broke says so: NoCaptureEventsError, an InputError too


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, 24575), flips=st.lists(st.tuples(st.integers(0, 24575), st.integers(0, 255)), max_size=4))
def test_corrupt_real_files_give_etl_errors_only(cut, flips, tmp_path_factory):
    data = bytearray(LXCORE.read_bytes())
    for position, value in flips:
        data[position] = value
    path = tmp_path_factory.mktemp("real") / "lx.etl"
    path.write_bytes(bytes(data[:cut]))
    try:
        list(EtlFile(path).events())
    except EtlError:
        pass


# -- the fake kernel's dump ----------------------------------------------------------------------


def test_dump_to_etl(tmp_path):
    from .etl_writer import KIT_LINE_METADATA, KIT_TRAITS

    def record(seq: int, line: str, cpu: int) -> bytes:
        text = line.encode()
        items = [(2, KIT_TRAITS), (1, KIT_LINE_METADATA), (0, struct.pack("<Q", seq)), (0, struct.pack("<H", len(text))), (0, text)]
        body = struct.pack("<IIIQ16sHBBBBHQI", cpu, 4, 77, 100 * seq, KIT_PROVIDER_GUID.bytes_le, 0, 0, 11, 5, 0, 0, 1, len(items))
        body += b"".join(struct.pack("<B3xI", kind, len(data)) + data for kind, data in items)
        return struct.pack("<I", len(body)) + body

    dump = tmp_path / "fake.dump"
    dump.write_bytes(b"DMALDUMP" + record(2, kit_line(2, 1), 1) + record(1, kit_line(1, 0), 0))
    path = dump_to_etl(dump, tmp_path / "fake.etl")
    etl = EtlFile(path)
    assert etl.header.number_of_processors == 2
    (first,) = [r for r in etl.events() if r.kind == "event" and r.fields["Seq"] == 1]
    assert (first.tid, first.pid, first.timestamp, first.level, first.keyword) == (77, 4, 100, 5, 1)
    assert list(capture_lines(path))[3:5] == [f"t=0.0000100 {kit_line(1, 0)}", f"t=0.0000200 {kit_line(2, 1)}"]


# -- the listing ---------------------------------------------------------------------------------


def listing(path, fmt: str, summary_only: bool = False) -> str:
    out = io.StringIO()
    assert run_etl_listing(str(path), fmt, summary_only, out) == 0
    return out.getvalue()


def test_listing_text():
    text = listing(LXCORE, "text")
    head, records, summary = text.split("\n\n")
    assert head.splitlines()[:4] == [f"file          {LXCORE}", "bytes         24,576", "pointer size  8 (x64)", "CPUs          6"]
    assert "clock         QPC at 10,000,000 Hz" in head and "events lost   0" in head and "buffers lost  0" in head
    assert "start time    2020-07-14T12:04:31.138736Z" in head
    assert records.splitlines()[2] == (
        '5.7651354 cpu=3 tid=2868 Microsoft.Windows.Subsystem.LxCore BreakPoint ErrorLevel=2 '
        'instanceId=00000000-0000-0000-0000-000000000000 LxPid=-1 LxTid=-1 LxNs=0 ExecutablePath="" '
        'Function="LxpInstanceStart" Line=2659 Message="[0xc0000034] LxpInstanceInitialize\\n"')
    assert summary.splitlines() == [
        "summary: 4 records from 2 providers",
        "  provider                            guid                                  records  event names",
        "  Microsoft.Windows.Subsystem.LxCore  0cd1c309-0878-4515-83db-749843b3f5c9        2  BreakPoint (2)",
        "  system                              -                                           2  HEADER/0 (1), HEADER/80 (1)",
    ]


def test_listing_summary_only():
    text = listing(AMSI, "text", summary_only=True)
    assert "events lost   3" in text and "AmsiScript (19)" in text and "cpu=" not in text
    (line,) = listing(AMSI, "jsonl", summary_only=True).splitlines()
    summary = json.loads(line)["summary"]
    assert summary["header"]["events_lost"] == 3 and summary["records"] == 21
    assert summary["providers"][0] == {"provider": "AmsiTrace", "guid": "8e805eb3-6a8f-4a1e-90fa-a831d94e54a1",
                                       "records": 19, "events": {"AmsiScript": 19}}


def test_listing_jsonl():
    lines = [json.loads(line) for line in listing(LXCORE, "jsonl").splitlines()]
    assert len(lines) == 5 and "summary" in lines[-1]
    event = lines[3]
    assert event["provider"] == str(LXCORE_GUID) and event["name"] == "BreakPoint" and event["cpu"] == 5
    assert event["fields"]["Line"] == 10528 and event["keyword"] == "0x400000000000" and event["time"] == 5.7639147
    assert lines[0]["kind"] == "system" and lines[0]["fields"] is None


def test_listing_jsonl_values(tmp_path):
    path = write_etl(tmp_path / "v.etl", [tl_event("V", "E", [("h", TL.HEXINT64, 255), ("big", TL.UINT64, 2**60),
                                                              ("b", TL.BINARY, b"\x01\xff"), ("g", TL.GUID, KIT_PROVIDER_GUID)])])
    event = json.loads(listing(path, "jsonl").splitlines()[1])
    assert event["fields"] == {"h": "0xff", "big": "0x1000000000000000", "b": "01ff", "g": str(KIT_PROVIDER_GUID)}


def test_listing_trace_is_the_capture_text(tmp_path):
    path = kit_capture(tmp_path, [1, 2, 4])
    assert listing(path, "trace").splitlines() == list(capture_lines(path))


# -- the benchmark -------------------------------------------------------------------------------


def test_bench_script_reports_a_rate(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "etl_speed.py"), "--events", "3000", "--json", str(tmp_path / "f.json")],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "events/s" in result.stdout and "peak RSS" in result.stdout
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["kit_events"] == 3000 and figures["records"] == 3001
    assert figures["capture_lines_events_per_s"] > 0 and figures["events_per_s"] > 0


def test_a_line_break_inside_a_kit_line_stays_one_line(tmp_path):
    """Found by the fuzz test above: a damaged byte that becomes a line break inside a kit
    record must not split it into two trace lines (the second would be read as a record).
    The first event is read the general way, the later ones by the fast path: both."""
    broken = kit_line(1).replace("KeLowerIrql", "Ke\nLowerIrql")
    events = [kit_event(1, broken, timestamp=START), kit_event(2, kit_line(2), timestamp=START),
              kit_event(3, kit_line(3).replace("cpu=0", "cpu=0\r"), timestamp=START)]
    lines = body(write_etl(tmp_path / "t.etl", events))
    assert lines == [f"t=0.0000000 {broken.replace(chr(10), chr(0xFFFD))}", f"t=0.0000000 {kit_line(2)}",
                     f"t=0.0000000 {kit_line(3).replace('cpu=0', 'cpu=0' + chr(0xFFFD))}"]
