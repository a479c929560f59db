"""A test-only ETL writer: .etl files in the layout Windows writes, from events described here.

Independent of `checker/reading/etl.py` on purpose (its own structs and constants), so a test that
writes with this and reads with that checks one reading of the format against another.

The file: a header buffer (WMI_BUFFER_HEADER, BufferType HEADER) holding the log file header
record (a SYSTEM_TRACE_HEADER, group 0 type 0, with the TRACE_LOGFILE_HEADER: pointer size,
processors, QPC clock, start time, EventsLost, BuffersLost, session and file names), then
per-CPU buffers of EVENT_HEADER records, each 8-byte aligned, a buffer padded with 0xFF from
its SavedOffset to its size. Events go into the buffer of their CPU; a buffer is written out
when the next event does not fit, and the partly filled ones at the end, so buffers are not in
time order across CPUs (as in real files); `shuffle_buffers` shuffles them further.

TraceLogging events carry their provider traits and event metadata as extended data items
(EVENT_HEADER_EXT_TYPE_PROV_TRAITS 12, EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL 11), in the layout
TraceLoggingProvider.h builds (`tl_provider_traits`, `tl_event_metadata`).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import random
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KIT_GUID",
    "KIT_LINE_METADATA",
    "KIT_TRAITS",
    "TL",
    "WriterEvent",
    "dump_to_etl",
    "kit_event",
    "provider_guid",
    "tl_event",
    "tl_event_metadata",
    "tl_provider_traits",
    "write_etl",
]

_NAMESPACE = bytes.fromhex("482C2DB2C39047C887F81A15BFC130FB")  # EventSource / TraceLogging names


def provider_guid(name: str) -> uuid.UUID:
    """The GUID TraceLogging and EventSource derive from a provider name (SHA-1, version 5 style)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.upper().encode("utf-16-be")).digest()[:16])
    digest[7] = (digest[7] & 0x0F) | 0x50
    return uuid.UUID(bytes_le=bytes(digest))


class TL:
    """TraceLogging in-types (TlgIn*), array flags and the out-types used here (TlgOut*)."""

    UNICODESTRING, ANSISTRING, INT8, UINT8, INT16, UINT16, INT32, UINT32 = 1, 2, 3, 4, 5, 6, 7, 8
    INT64, UINT64, FLOAT, DOUBLE, BOOL32, BINARY, GUID, POINTER = 9, 10, 11, 12, 13, 14, 15, 16
    FILETIME, SYSTEMTIME, SID, HEXINT32, HEXINT64, COUNTEDSTRING, COUNTEDANSISTRING = 17, 18, 19, 20, 21, 22, 23
    STRUCT, COUNTEDBINARY = 24, 25
    CCOUNT, VCOUNT = 0x20, 0x40
    OUT_STRING, OUT_BOOLEAN, OUT_HEX, OUT_UTF8 = 2, 3, 4, 35


KIT_GUID = provider_guid("Dmalint.Capture")


def _chained(value: int) -> bytes:
    """28-bit tags as 1-4 bytes, 7 bits each, the highest first, chained by bit 0x80."""
    groups = [(value >> shift) & 0x7F for shift in (21, 14, 7, 0)]
    while len(groups) > 1 and groups[-1] == 0:
        groups.pop()
    return bytes([byte | 0x80 for byte in groups[:-1]] + [groups[-1]])


def tl_provider_traits(name: str, group: uuid.UUID | None = None) -> bytes:
    """Provider traits: UINT16 size, the NUL-terminated name, then a group GUID trait if given."""
    body = name.encode("utf-8") + b"\0"
    if group is not None:
        body += struct.pack("<HB", 19, 1) + group.bytes_le
    return struct.pack("<H", 2 + len(body)) + body


def tl_event_metadata(name: str, fields: Sequence[tuple], *, tags: int = 0) -> bytes:
    """Event metadata: UINT16 size, tags, the NUL-terminated name, then each field.

    A field is (name, in_type) or (name, in_type, out_type), or for a constant-count array
    (name, in_type | TL.CCOUNT, out_type, count); out_type None leaves the out-type byte out.
    """
    body = _chained(tags) + name.encode("utf-8") + b"\0"
    for field in fields:
        field_name, in_type = field[0], field[1]
        out_type = field[2] if len(field) > 2 else None
        body += field_name.encode("utf-8") + b"\0"
        body += bytes([in_type | (0x80 if out_type is not None else 0)])
        if out_type is not None:
            body += bytes([out_type])
        if in_type & 0x60 == TL.CCOUNT:
            body += struct.pack("<H", field[3])
    return struct.pack("<H", 2 + len(body)) + body


KIT_TRAITS = tl_provider_traits("Dmalint.Capture")
KIT_LINE_METADATA = tl_event_metadata("Line", [("Seq", TL.UINT64), ("Line", TL.COUNTEDANSISTRING, TL.OUT_UTF8)])


@dataclass(frozen=True, slots=True)
class WriterEvent:
    """One EVENT_HEADER record to write: where and when, provider, descriptor, extended data, payload."""

    cpu: int
    pid: int
    tid: int
    timestamp: int  # clock ticks (10 MHz QPC in the files written here)
    provider: uuid.UUID
    descriptor: tuple[int, int, int, int, int, int, int]  # id, version, channel, level, opcode, task, keyword
    extended: tuple[tuple[int, bytes], ...]  # (EVENT_HEADER_EXT_TYPE_*, data)
    user_data: bytes
    header_type: int = 0x13  # EVENT_HEADER64 (0x12: written by a 32-bit provider)


def kit_event(seq: int, line: str, *, cpu: int = 0, pid: int = 4, tid: int = 4242, timestamp: int = 0,
              pointer_size: int = 8) -> WriterEvent:
    """The kit's `Line` event of Dmalint.Capture (kit contract, section 2)."""
    text = line.encode("utf-8")
    return WriterEvent(cpu, pid, tid, timestamp, KIT_GUID, (0, 0, 11, 5, 0, 0, 1),
                       ((12, KIT_TRAITS), (11, KIT_LINE_METADATA)), struct.pack("<QH", seq, len(text)) + text,
                       0x13 if pointer_size == 8 else 0x12)


def tl_event(provider: str, name: str, fields: Sequence[tuple], *, cpu: int = 0, pid: int = 100, tid: int = 200,
             timestamp: int = 0, level: int = 4, keyword: int = 0, opcode: int = 0, task: int = 0,
             pointer_size: int = 8, traits: bool = True) -> WriterEvent:
    """A TraceLogging event of any provider: fields are (name, in_type, value[, out_type]).

    Arrays: `in_type | TL.VCOUNT` (count in the payload) or `| TL.CCOUNT` (count in the
    metadata) with a list value. `traits=False` leaves the provider traits out.
    """
    spec, payload = [], b""
    for field in fields:
        field_name, in_type, value = field[:3]
        out_type = field[3] if len(field) > 3 else None
        if in_type & 0x60 == TL.CCOUNT:
            spec.append((field_name, in_type, out_type, len(value)))
            payload += b"".join(_encode(in_type & 0x1F, item, pointer_size) for item in value)
        elif in_type & 0x60 == TL.VCOUNT:
            spec.append((field_name, in_type, out_type))
            payload += struct.pack("<H", len(value)) + b"".join(_encode(in_type & 0x1F, item, pointer_size) for item in value)
        else:
            spec.append((field_name, in_type, out_type))
            payload += _encode(in_type, value, pointer_size)
    spec = [field if len(field) == 4 or field[2] is not None else field[:2] for field in spec]
    extended = ((12, tl_provider_traits(provider)),) if traits else ()
    extended += ((11, tl_event_metadata(name, spec)),)
    return WriterEvent(cpu, pid, tid, timestamp, provider_guid(provider), (0, 0, 11, level, opcode, task, keyword),
                       extended, payload, 0x13 if pointer_size == 8 else 0x12)


_FIXED = {TL.INT8: "b", TL.UINT8: "B", TL.INT16: "h", TL.UINT16: "H", TL.INT32: "i", TL.UINT32: "I",
          TL.INT64: "q", TL.UINT64: "Q", TL.FLOAT: "f", TL.DOUBLE: "d", TL.BOOL32: "i", TL.HEXINT32: "I",
          TL.HEXINT64: "Q", TL.FILETIME: "Q"}


def _encode(in_type: int, value: object, pointer_size: int) -> bytes:
    """One value in the payload layout of its in-type."""
    if in_type in _FIXED:
        if isinstance(value, datetime.datetime):
            epoch = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
            value = (value - epoch) // datetime.timedelta(microseconds=1) * 10
        return struct.pack("<" + _FIXED[in_type], value)
    if in_type == TL.POINTER:
        return struct.pack("<Q" if pointer_size == 8 else "<I", value)
    if in_type == TL.GUID:
        return value.bytes_le
    if in_type == TL.SYSTEMTIME:
        return struct.pack("<8H", value.year, value.month, value.isoweekday() % 7, value.day, value.hour,
                           value.minute, value.second, value.microsecond // 1000)
    if in_type == TL.ANSISTRING:
        return value.encode("utf-8") + b"\0"
    if in_type == TL.UNICODESTRING:
        return value.encode("utf-16-le") + b"\0\0"
    if in_type == TL.COUNTEDANSISTRING:
        raw = value.encode("utf-8")
        return struct.pack("<H", len(raw)) + raw
    if in_type == TL.COUNTEDSTRING:
        raw = value.encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw
    if in_type in (TL.BINARY, TL.COUNTEDBINARY):
        return struct.pack("<H", len(value)) + bytes(value)
    if in_type == TL.SID:
        parts = value.split("-")
        subs = [int(part) for part in parts[3:]]
        return bytes([int(parts[1]), len(subs)]) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)
    raise ValueError(f"the writer does not encode in-type {in_type}")


# ---------------------------------------------------------------------------------------------
# Records and buffers

_BUFFER_HEADER = struct.Struct("<IIIiqqQBBHIIHH16s")  # WMI_BUFFER_HEADER, 72 bytes
_EVENT_HEADER = struct.Struct("<HBBHHIIq16sHBBBBHQQ16s")  # EVENT_HEADER as stored, 80 bytes
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


def _pad8(data: bytes, fill: bytes = b"\0") -> bytes:
    return data + fill * (-len(data) % 8)


@functools.lru_cache(maxsize=256)
def _extended_bytes(items: tuple[tuple[int, bytes], ...]) -> bytes:
    """EVENT_HEADER_EXTENDED_DATA_ITEMs as stored: item size, type, linkage, data size, data (8-aligned)."""
    out = b""
    for index, (ext_type, data) in enumerate(items):
        size = 8 + len(data) + (-(8 + len(data)) % 8)
        out += _pad8(struct.pack("<HHHH", size, ext_type, int(index + 1 < len(items)), len(data)) + data)
    return out


def _event_record(event: WriterEvent) -> bytes:
    extended = _extended_bytes(event.extended) if event.extended else b""
    size = 80 + len(extended) + len(event.user_data)
    if size > 0xFFFF:
        raise ValueError(f"an event of {size} bytes does not fit a record (64 KiB)")
    event_id, version, channel, level, opcode, task, keyword = event.descriptor
    header = _EVENT_HEADER.pack(size, event.header_type, 0xC0, 1 if event.extended else 0, 0, event.tid, event.pid,
                                event.timestamp, event.provider.bytes_le, event_id, version, channel, level, opcode,
                                task, keyword, 0, bytes(16))
    return _pad8(header + extended + event.user_data)


def _buffer(records: list[bytes], *, size: int, cpu: int, timestamp: int, sequence: int, buffer_type: int = 0,
            flags: int = 0x20) -> bytes:
    body = b"".join(records)
    end = 72 + len(body)
    header = _BUFFER_HEADER.pack(size, end, end, 0, timestamp, sequence, 0, cpu & 0xFF, cpu >> 8, 0x14, 3, end,
                                 flags, buffer_type, bytes(16))
    return header + body + b"\xff" * (size - end)


def _logfile_header(*, buffer_size: int, cpus: int, pointer_size: int, events_lost: int, buffers_lost: int,
                    buffers_written: int, start_timestamp: int, frequency: int, start_time: datetime.datetime,
                    end_time: datetime.datetime, session_name: str, log_file_name: str) -> bytes:
    """The SYSTEM_TRACE_HEADER record holding TRACE_LOGFILE_HEADER, for a pointer size of 4 or 8."""
    def filetime(moment: datetime.datetime) -> int:
        return (moment - _FILETIME_EPOCH) // datetime.timedelta(microseconds=1) * 10

    pointer = "Q" if pointer_size == 8 else "I"
    mof = struct.pack(f"<IIIIqIIIIIIII{pointer}{pointer}", buffer_size, 0x0501000A, 19041, cpus, filetime(end_time),
                      156250, 0, 1, buffers_written, 1, pointer_size, events_lost, 3000, 0, 0)
    zone = struct.pack("<i64s16si64s16si", 0, "UTC".encode("utf-16-le"), bytes(16), 0, "UTC".encode("utf-16-le"), bytes(16), 0)
    mof = _pad8(mof + zone)
    boot = filetime(start_time) - start_timestamp * 10_000_000 // frequency
    mof += struct.pack("<qqqII", boot, frequency, filetime(start_time), 1, buffers_lost)
    mof += session_name.encode("utf-16-le") + b"\0\0" + log_file_name.encode("utf-16-le") + b"\0\0"
    size = 32 + len(mof)
    header = struct.pack("<HBBHBBIIqII", 2, 2 if pointer_size == 8 else 1, 0xC0, size, 0, 0, 8, 4, start_timestamp, 1, 0)
    return _pad8(header + mof)


def write_etl(path: str | os.PathLike, events: Iterable[WriterEvent], *, cpus: int = 4, pointer_size: int = 8,
              buffer_size: int = 65536, events_lost: int = 0, buffers_lost: int = 0, shuffle_buffers: bool = False,
              seed: int = 0, start_timestamp: int = 1_000_000, frequency: int = 10_000_000,
              start_time: datetime.datetime = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.UTC),
              session_name: str = "DmalintCapture", log_file_name: str = r"C:\dmalint\capture.etl") -> Path:
    """Write `events` (streamed) as an ETL file at `path`; returns the path.

    `shuffle_buffers` keeps every event buffer in memory and writes them in a seeded random
    order (without it, buffers go out as they fill, which already mixes CPUs).
    """
    path = Path(path)
    pending: dict[int, list[bytes]] = {}
    used: dict[int, int] = {}
    first_stamp: dict[int, int] = {}
    held: list[bytes] = []
    written = 0
    last_stamp = start_timestamp

    with path.open("wb") as out:
        out.write(bytes(buffer_size))  # the header buffer, written last (it counts the buffers)

        def flush(cpu: int) -> None:
            nonlocal written
            records = pending.pop(cpu, [])
            used.pop(cpu, None)
            if not records:
                return
            written += 1
            data = _buffer(records, size=buffer_size, cpu=cpu, timestamp=first_stamp.pop(cpu), sequence=written)
            if shuffle_buffers:
                held.append(data)
            else:
                out.write(data)

        for event in events:
            if not 0 <= event.cpu < cpus:
                raise ValueError(f"event on CPU {event.cpu} in a capture of {cpus} CPUs")
            record = _event_record(event)
            if 72 + len(record) > buffer_size:
                raise ValueError(f"a record of {len(record)} bytes does not fit a buffer of {buffer_size}")
            if used.get(event.cpu, 72) + len(record) > buffer_size:
                flush(event.cpu)
            pending.setdefault(event.cpu, []).append(record)
            used[event.cpu] = used.get(event.cpu, 72) + len(record)
            first_stamp.setdefault(event.cpu, event.timestamp)
            last_stamp = max(last_stamp, event.timestamp)
        for cpu in sorted(pending):
            flush(cpu)
        if shuffle_buffers:
            random.Random(seed).shuffle(held)
            for data in held:
                out.write(data)
        end_time = start_time + datetime.timedelta(seconds=(last_stamp - start_timestamp) / frequency)
        header = _logfile_header(buffer_size=buffer_size, cpus=cpus, pointer_size=pointer_size, events_lost=events_lost,
                                 buffers_lost=buffers_lost, buffers_written=written + 1, start_timestamp=start_timestamp,
                                 frequency=frequency, start_time=start_time, end_time=end_time,
                                 session_name=session_name, log_file_name=log_file_name)
        out.seek(0)
        out.write(_buffer([header], size=buffer_size, cpu=0, timestamp=0, sequence=0, buffer_type=4, flags=0x21))
    return path


# ---------------------------------------------------------------------------------------------
# The fake kernel's dump (kit contract, section 3)

_DUMP_MAGIC = b"DMALDUMP"
_DUMP_RECORD = struct.Struct("<IIIQ16sHBBBBHQI")  # cpu, pid, tid, timestamp, GUID, descriptor, count
_DUMP_ITEM = struct.Struct("<B3xI")
_DUMP_EXT = {1: 11, 2: 12}  # event metadata -> EVENT_SCHEMA_TL, provider metadata -> PROV_TRAITS


def read_dump(dump_path: str | os.PathLike, *, pointer_size: int = 8) -> list[WriterEvent]:
    """The events of a fake-kernel dump: b"DMALDUMP", then size-prefixed records."""
    data = Path(dump_path).read_bytes()
    if not data.startswith(_DUMP_MAGIC):
        raise ValueError(f"{dump_path}: not a DMALDUMP file")
    events, pos = [], len(_DUMP_MAGIC)
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError(f"{dump_path}: record at byte {pos} is cut short")
        size = int.from_bytes(data[pos:pos + 4], "little")
        body_end = pos + 4 + size
        if body_end > len(data) or size < _DUMP_RECORD.size:
            raise ValueError(f"{dump_path}: record at byte {pos} says {size} bytes, {len(data) - pos - 4} remain")
        cpu, pid, tid, timestamp, guid, *descriptor, count = _DUMP_RECORD.unpack_from(data, pos + 4)
        cursor = pos + 4 + _DUMP_RECORD.size
        metadata: dict[int, bytes] = {}
        user = b""
        for _ in range(count):
            if cursor + _DUMP_ITEM.size > body_end:
                raise ValueError(f"{dump_path}: record at byte {pos}: data descriptors run past the record")
            kind, length = _DUMP_ITEM.unpack_from(data, cursor)
            cursor += _DUMP_ITEM.size
            if cursor + length > body_end:
                raise ValueError(f"{dump_path}: record at byte {pos}: a descriptor of {length} bytes runs past the record")
            chunk = data[cursor:cursor + length]
            cursor += length
            if kind == 0:
                user += chunk
            elif kind in _DUMP_EXT:
                metadata[_DUMP_EXT[kind]] = chunk
            else:
                raise ValueError(f"{dump_path}: record at byte {pos}: data descriptor type {kind}")
        extended = tuple((ext, metadata[ext]) for ext in (12, 11) if ext in metadata)
        events.append(WriterEvent(cpu, pid, tid, timestamp, uuid.UUID(bytes_le=guid), tuple(descriptor), extended, user,
                                  0x13 if pointer_size == 8 else 0x12))
        pos = body_end
    return events


def dump_to_etl(dump_path: str | os.PathLike, etl_path: str | os.PathLike, **options) -> Path:
    """Turn a fake-kernel dump into an ETL file (options as for `write_etl`; `cpus` defaults to
    what the dump needs, `start_timestamp` to 0, the fake boot)."""
    events = read_dump(dump_path, pointer_size=options.get("pointer_size", 8))
    options.setdefault("cpus", max([event.cpu for event in events], default=0) + 1)
    options.setdefault("start_timestamp", 0)
    return write_etl(etl_path, events, **options)
