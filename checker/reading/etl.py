"""Reading .etl files (Windows Event Trace Logs) on any OS, streaming, one buffer at a time.

An ETL file is a run of buffers, each a WMI_BUFFER_HEADER (72 bytes: its size, where its data
ends, the processor it was filled on) and then records, each 8-byte aligned, up to the
buffer's SavedOffset; the rest of the buffer is padding (0xFF). The first buffer starts with a
SYSTEM_TRACE_HEADER record holding the TRACE_LOGFILE_HEADER: pointer size, processors, clock,
start time, events and buffers the session lost. Buffers are per CPU, so records are in time
order within a buffer but not across buffers.

What `EtlFile.events()` yields, one `EtlEvent` per record, in file order:

- `kind="event"`: an EVENT_HEADER record (manifest or TraceLogging provider). When it carries
  TraceLogging metadata (extended data type 11) its `name` and `fields` are decoded, and its
  provider traits (type 12) give `provider_name`. A payload that does not fit its schema, or a
  schema this reader cannot decode, leaves `fields` None and says why in `decode_error`.
- `kind="system"` / `"perfinfo"`: the kernel's SYSTEM_TRACE_HEADER (full or compact) and
  PERFINFO records, the log file header among them: no provider GUID; `task` holds the
  packet's group (EVENT_TRACE_GROUP_*), `opcode` its type, `name` is `GROUP/type`.
- `kind="trace"` (EVENT_TRACE_HEADER of classic providers), `"instance"`
  (EVENT_INSTANCE_HEADER), `"message"` (TraceMessage/WPP) and `"other"` (timed, error and
  WNODE headers): walked, with what their header says, the payload raw in `data`.

A structural problem (a buffer cut short, a record running past its buffer, an unknown record
header) raises `EtlError` naming the byte offset: never another exception.

`capture_lines(path)` turns a capture of the kit's provider (Dmalint.Capture) into dmatrace
text (see its docstring and /work/kit-contract.md section 4).
"""

from __future__ import annotations

import datetime
import heapq
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from model.location import SourceLocation

from ..errors import EtlError, NoCaptureEventsError, TraceNotFoundError
from .etl_tracelogging import TraceLoggingError, schema_for, traits_for

__all__ = [
    "BUFFER_HEADER_SIZE",
    "EtlEvent",
    "EtlFile",
    "EtlHeader",
    "KIT_EVENT_NAME",
    "KIT_PROVIDER_GUID",
    "KIT_PROVIDER_NAME",
    "REORDER_WINDOW",
    "capture_lines",
    "is_etl",
    "stream_is_etl",
]

KIT_PROVIDER_NAME = "Dmalint.Capture"
KIT_PROVIDER_GUID = uuid.UUID("48c82022-b14f-56be-1364-624fff462dca")
KIT_EVENT_NAME = "Line"
REORDER_WINDOW = 100_000  # kit events held back at most while waiting for a missing seq

BUFFER_HEADER_SIZE = 72
# WMI_BUFFER_HEADER: BufferSize, SavedOffset, CurrentOffset, ReferenceCount, TimeStamp,
# SequenceNumber, Clock, ClientContext (ProcessorNumber, Alignment, LoggerId), State, Offset,
# BufferFlag, BufferType, 16 bytes of reference time / padding
_BUFFER = struct.Struct("<IIIiqqQBBHIIHH16x")
_FLAG_PROC_INDEX, _FLAG_COMPRESSED = 0x20, 0x40

_SYSTEM_TYPES = {1: 32, 2: 32, 3: 24, 4: 24}  # SYSTEM_TRACE_HEADER full (32/64-bit), compact: header size
_PERFINFO_TYPES = {0x10, 0x11}
_EVENT_TYPES = {0x12: 4, 0x13: 8}  # EVENT_HEADER written by a 32-bit / 64-bit provider: pointer size
_TRACE_TYPES = {0x0A, 0x14}  # EVENT_TRACE_HEADER (classic, "full header")
_INSTANCE_TYPES = {0x0B, 0x15}
_OTHER_TYPES = {0x0C, 0x0D, 0x0E, 0x0F}  # timed, error, WNODE and message headers
_EVENT_HEADER_SIZE = 80
_EXT_SCHEMA_TL, _EXT_PROV_TRAITS = 11, 12

_RECORD_START = struct.Struct("<HBBH")  # Size (Version in system records), HeaderType, MarkerFlags, packet Size
_EVENT = struct.Struct("<HBBHHIIq16sHBBBBHQ")  # the EVENT_HEADER up to its descriptor (56 bytes)
_KIT_HEAD = struct.Struct("<HBBH10xq16s")  # Size, HeaderType, MarkerFlags, Flags, TimeStamp, ProviderId
_EXT_ITEM = struct.Struct("<HHHH")  # size, ExtType, Linkage, DataSize
_SEQ_COUNT = struct.Struct("<QH")

_CLOCKS = {1: "QPC", 2: "system time", 3: "CPU cycle counter"}
_GROUPS = ("HEADER", "IO", "MEMORY", "PROCESS", "FILE", "THREAD", "TCPIP", "JOB", "UDPIP", "REGISTRY",
           "DBGPRINT", "CONFIG", "SPARE1", "WNF", "POOL", "PERFINFO", "HEAP", "OBJECT", "POWER",
           "MODBOUND", "IMAGE", "DPC", "GDI", "CRITSEC", "STACKWALK", "UMS", "ALPC", "SPLITIO",
           "THREAD_POOL", "HYPERVISOR", "HYPERVISORX")
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


def _filetime(value: int) -> datetime.datetime | None:
    if value <= 0:
        return None
    try:
        return _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def _align8(value: int) -> int:
    return (value + 7) & ~7


@dataclass(frozen=True, slots=True)
class EtlHeader:
    """What the log file header (TRACE_LOGFILE_HEADER, the first record) says about the session.

    `start_timestamp` is the clock value when the session started (the header record's time
    stamp) and `frequency` the clock's ticks per second: an event's seconds since the session
    started are `(timestamp - start_timestamp) / frequency`.
    """

    path: str
    file_size: int
    buffer_size: int
    version: tuple[int, int, int, int]  # major, minor, sub, subminor of the logger
    provider_version: int  # the OS build
    number_of_processors: int
    pointer_size: int
    events_lost: int
    buffers_lost: int
    buffers_written: int
    log_file_mode: int
    timer_resolution: int  # 100 ns units
    max_file_size: int  # MB
    cpu_speed_mhz: int
    clock_type: int  # 1 QPC, 2 system time, 3 CPU cycle counter
    perf_freq: int
    frequency: int
    start_timestamp: int
    start_time: datetime.datetime | None  # UTC
    end_time: datetime.datetime | None
    boot_time: datetime.datetime | None
    timezone_bias: int  # minutes
    session_name: str
    log_file_name: str

    @property
    def clock_name(self) -> str:
        return _CLOCKS.get(self.clock_type, f"clock type {self.clock_type}")

    @property
    def arch(self) -> str:
        """The dmatrace `@target arch=` of the machine the capture ran on."""
        return "x86" if self.pointer_size == 4 else "x64"


@dataclass(frozen=True, slots=True)
class EtlEvent:
    """One record of an ETL file, as `EtlFile.events()` yields it (see the module docstring).

    `offset` is the record's byte offset in the file; `cpu` the processor of its buffer;
    `timestamp` the raw clock value and `time` the seconds since the session started; `fields`
    the decoded TraceLogging fields (name -> value, in order) or None; `data` the raw payload
    (user data); `extended` the extended data items other than TraceLogging's own, as
    (type, bytes).
    """

    offset: int
    kind: str
    cpu: int
    pid: int | None
    tid: int | None
    timestamp: int
    time: float
    provider: uuid.UUID | None
    provider_name: str | None
    name: str | None
    fields: dict[str, object] | None
    id: int = 0
    version: int = 0
    channel: int = 0
    level: int = 0
    opcode: int = 0
    task: int = 0
    keyword: int = 0
    flags: int = 0
    data: bytes = b""
    decode_error: str | None = None
    extended: tuple[tuple[int, bytes], ...] = ()

    @property
    def provider_label(self) -> str:
        """The provider's name, else its GUID; `system` for the kernel's own records."""
        if self.provider_name:
            return self.provider_name
        return str(self.provider) if self.provider is not None else "system"


def is_etl(head: bytes) -> bool:
    """Whether `head` (the first bytes of a file, 104 or more) starts an ETL file.

    True when it is a WMI_BUFFER_HEADER whose data holds, first, a SYSTEM_TRACE_HEADER record
    of group 0 type 0 (the TRACE_LOGFILE_HEADER) that fits in the buffer.
    """
    if len(head) < BUFFER_HEADER_SIZE + 32:
        return False
    size, saved = struct.unpack_from("<II", head)
    offset = int.from_bytes(head[48:52], "little")
    end = saved if BUFFER_HEADER_SIZE < saved <= size else offset
    if not BUFFER_HEADER_SIZE + 32 <= end <= size:
        return False
    htype, mflags, packet_size, hook_type, group = head[74], head[75], *struct.unpack_from("<HBB", head, 76)
    return htype in (1, 2) and mflags == 0xC0 and hook_type == 0 and group == 0 and 32 + 56 <= packet_size <= end - 72


_HEAD = 512  # bytes of a file enough for `is_etl`


def stream_is_etl(stream: object) -> bool:
    """Whether a binary stream opened on a file starts an ETL file, without consuming it (it
    peeks; a stream that cannot peek, such as a pipe read another way, is taken as text)."""
    peek = getattr(stream, "peek", None)
    return peek is not None and is_etl(peek(_HEAD)[:_HEAD])


class EtlFile:
    """An ETL file opened for reading: `header` now, `events()` streamed buffer by buffer."""

    def __init__(self, path: str | os.PathLike, display: str | None = None) -> None:
        self.path = os.fspath(path)
        self.display = display if display is not None else self.path
        self._location = SourceLocation(self.display, 0)
        try:
            with open(self.path, "rb") as stream:
                self.file_size = os.fstat(stream.fileno()).st_size
                first = self._first_buffer(stream)
        except FileNotFoundError:
            raise TraceNotFoundError("no such file", self._location) from None
        except IsADirectoryError:
            raise TraceNotFoundError("is a directory, not an .etl file", self._location) from None
        except OSError as error:
            raise TraceNotFoundError(f"cannot read: {error.strerror}", self._location) from None
        self.header = self._parse_header(first)
        self._start = self.header.start_timestamp
        self._frequency = self.header.frequency

    # -- errors and buffers ------------------------------------------------------------------

    def error(self, message: str, offset: int) -> EtlError:
        return EtlError(message, self._location, offset)

    def _first_buffer(self, stream) -> bytes:
        """The first buffer's bytes up to the end of its data, checked to be an ETL file's."""
        first = stream.read(BUFFER_HEADER_SIZE + 32)
        if not first:
            raise self.error("not an ETL file: it is empty", 0)
        if not is_etl(first):
            raise self.error("not an ETL file: it does not start with a WMI buffer header holding the log file header record", 0)
        buffer_size = int.from_bytes(first[:4], "little")
        if buffer_size > self.file_size:
            raise self.error(f"truncated buffer at byte 0x0: header says {buffer_size} bytes, {self.file_size} remain", 0)
        return first + stream.read(self._data_end(first, 0) - len(first))

    def _parse_header(self, first: bytes) -> EtlHeader:
        buffer_size = int.from_bytes(first[:4], "little")
        end = len(first)
        record = BUFFER_HEADER_SIZE
        packet_size = int.from_bytes(first[record + 4:record + 6], "little")
        mof, stop = record + 32, record + packet_size
        if stop > end:
            raise self.error(f"the log file header record at byte {record:#x} says {packet_size} bytes, the buffer's data ends at {end}", record)
        (buffer_bytes, version, provider_version, processors, end_time, timer_resolution, max_file_size,
         log_file_mode, buffers_written, _start_buffers, pointer_size, events_lost, cpu_mhz) = struct.unpack_from(
            "<IIIIqIIIIIIII", first, mof)
        if pointer_size not in (4, 8):
            raise self.error(f"the log file header gives a pointer size of {pointer_size} (not 4 or 8)", mof + 44)
        zone = mof + 56 + 2 * pointer_size
        tail = _align8(zone + 172 - mof) + mof
        if tail + 32 > stop:
            raise self.error(f"the log file header record at byte {record:#x} is {packet_size} bytes, too short for its fields", record)
        bias = struct.unpack_from("<i", first, zone)[0]
        boot_time, perf_freq, start_time, clock_type, buffers_lost = struct.unpack_from("<qqqII", first, tail)
        names = first[tail + 32:stop]
        session_name, log_file_name = (_utf16z(names, index) for index in (0, 1))
        frequency = {2: 10_000_000, 3: cpu_mhz * 1_000_000}.get(clock_type, perf_freq)
        if frequency <= 0:
            raise self.error(f"the log file header gives a clock ({_CLOCKS.get(clock_type, clock_type)}) of {frequency} Hz", tail + 8)
        start_timestamp = struct.unpack_from("<q", first, record + 16)[0]
        return EtlHeader(
            path=self.display, file_size=self.file_size, buffer_size=buffer_bytes or buffer_size,
            version=tuple(version.to_bytes(4, "little")), provider_version=provider_version,
            number_of_processors=processors, pointer_size=pointer_size, events_lost=events_lost,
            buffers_lost=buffers_lost, buffers_written=buffers_written, log_file_mode=log_file_mode,
            timer_resolution=timer_resolution, max_file_size=max_file_size, cpu_speed_mhz=cpu_mhz,
            clock_type=clock_type, perf_freq=perf_freq, frequency=frequency, start_timestamp=start_timestamp,
            start_time=_filetime(start_time), end_time=_filetime(end_time), boot_time=_filetime(boot_time),
            timezone_bias=bias, session_name=session_name, log_file_name=log_file_name,
        )

    def _data_end(self, buffer: bytes, base: int) -> int:
        """Where the buffer's records end: SavedOffset, else the Offset field, else an error."""
        size, saved = struct.unpack_from("<II", buffer)
        if BUFFER_HEADER_SIZE <= saved <= size:
            return saved
        offset = int.from_bytes(buffer[48:52], "little")
        if BUFFER_HEADER_SIZE <= offset <= size:
            return offset
        raise self.error(f"corrupt buffer at byte {base:#x}: its data ends at {saved} (SavedOffset), outside its {size} bytes", base + 4)

    def buffers(self) -> Iterator[tuple[int, bytes, int, int]]:
        """Each buffer as (file offset, its bytes up to the end of its data, cpu, data end)."""
        with open(self.path, "rb") as stream:
            base = 0
            size = self.file_size
            while base < size:
                head = stream.read(BUFFER_HEADER_SIZE)
                if len(head) < BUFFER_HEADER_SIZE:
                    raise self.error(f"truncated buffer at byte {base:#x}: {len(head)} bytes remain, a buffer header takes {BUFFER_HEADER_SIZE}", base)
                buffer_size, _saved, _current, _refs, _time, _seq, _clock, number, alignment, _logger, _state, _offset, flags, _type = _BUFFER.unpack(head)
                if buffer_size < BUFFER_HEADER_SIZE:
                    raise self.error(f"corrupt buffer at byte {base:#x}: its header says {buffer_size} bytes, less than the header itself", base)
                if buffer_size > size - base:
                    raise self.error(f"truncated buffer at byte {base:#x}: header says {buffer_size} bytes, {size - base} remain", base)
                end = self._data_end(head, base)
                if flags & _FLAG_COMPRESSED:
                    raise self.error(f"buffer at byte {base:#x} is compressed (ETW_BUFFER_FLAG_COMPRESSED), which this reader does not read", base + 52)
                data = head + stream.read(end - BUFFER_HEADER_SIZE)
                if len(data) < end:
                    raise self.error(f"truncated buffer at byte {base:#x}: header says {buffer_size} bytes, {size - base} remain", base)
                if end < buffer_size:
                    stream.seek(base + buffer_size)
                cpu = number | alignment << 8 if flags & _FLAG_PROC_INDEX else number
                yield base, data, cpu, end
                base += buffer_size

    # -- records -----------------------------------------------------------------------------

    def events(self) -> Iterator[EtlEvent]:
        """Every record of the file as an `EtlEvent`, buffer by buffer, in file order."""
        record = self._record
        for base, data, cpu, end in self.buffers():
            pos = BUFFER_HEADER_SIZE
            while pos + 4 <= end:
                event, pos = record(data, pos, end, base, cpu)
                if event is None:
                    break
                yield event

    def _size(self, data: bytes, pos: int, end: int, base: int) -> tuple[int, int, int]:
        """(HeaderType, MarkerFlags, record size) of the record at `pos`; checks it fits."""
        where = base + pos
        if pos + 8 > end:
            raise self.error(f"record at byte {where:#x}: only {end - pos} bytes remain in its buffer's data, too few for a record", where)
        size, htype, mflags, packet = _RECORD_START.unpack_from(data, pos)
        if mflags & 0xC0 == 0xC0:
            if htype in _SYSTEM_TYPES or htype in _PERFINFO_TYPES:
                size, least = packet, (_SYSTEM_TYPES.get(htype) or 16)
            elif htype in _EVENT_TYPES:
                least = _EVENT_HEADER_SIZE
            elif htype in _TRACE_TYPES:
                least = 48
            elif htype in _INSTANCE_TYPES:
                least = 56
            elif htype in _OTHER_TYPES:
                least = 8
            else:
                raise self.error(f"unknown record header type {htype:#04x} at byte {where:#x}", where)
        elif mflags & 0x80:
            htype, least = -1, 8  # a TraceMessage (WPP) record
        else:
            marker = int.from_bytes(data[pos:pos + 4], "little")
            raise self.error(f"bad record marker {marker:#010x} at byte {where:#x} (not a trace header)", where)
        if size < least:
            raise self.error(f"record at byte {where:#x} says it is {size} bytes, less than its {least}-byte header", where)
        if pos + size > end:
            raise self.error(f"record at byte {where:#x} says it is {size} bytes, but only {end - pos} remain in its buffer's data", where)
        return htype, mflags, size

    def _record(self, data: bytes, pos: int, end: int, base: int, cpu: int) -> tuple[EtlEvent | None, int]:
        """The record at `pos` and where the next one starts; (None, end) at padding."""
        if data[pos:pos + 4] == b"\xff\xff\xff\xff":
            return None, end
        htype, _mflags, size = self._size(data, pos, end, base)
        stop = pos + size
        offset = base + pos
        start, frequency = self._start, self._frequency
        if htype in _EVENT_TYPES:
            event = self._event(data, pos, stop, offset, cpu, _EVENT_TYPES[htype])
        elif htype in _SYSTEM_TYPES or htype in _PERFINFO_TYPES:
            version, hook_type, group = struct.unpack_from("<H4xBB", data, pos)
            if htype in _PERFINFO_TYPES:
                kind, pid, tid, timestamp, header = "perfinfo", None, None, struct.unpack_from("<q", data, pos + 8)[0], 16
            else:
                kind, header = "system", _SYSTEM_TYPES[htype]
                tid, pid, timestamp = struct.unpack_from("<IIq", data, pos + 8)
            name = f"{_GROUPS[group] if group < len(_GROUPS) else group}/{hook_type}"
            event = EtlEvent(offset, kind, cpu, pid, tid, timestamp, (timestamp - start) / frequency, None, None, name,
                             None, version=version, opcode=hook_type, task=group, data=data[pos + header:stop])
        elif htype in _TRACE_TYPES or htype in _INSTANCE_TYPES:
            hook_type, level, version, tid, pid, timestamp = struct.unpack_from("<BBHIIq", data, pos + 4)
            provider = uuid.UUID(bytes_le=data[pos + 24:pos + 40]) if htype in _TRACE_TYPES else None
            kind, header = ("trace", 48) if htype in _TRACE_TYPES else ("instance", 56)
            event = EtlEvent(offset, kind, cpu, pid, tid, timestamp, (timestamp - start) / frequency, provider, None, None,
                             None, version=version, level=level, opcode=hook_type, data=data[pos + header:stop])
        elif htype == -1:
            event = self._message(data, pos, stop, offset, cpu)
        else:
            event = EtlEvent(offset, "other", cpu, None, None, 0, 0.0, None, None, None, None, data=data[pos + 8:stop])
        return event, pos + _align8(size)

    def _message(self, data: bytes, pos: int, stop: int, offset: int, cpu: int) -> EtlEvent:
        """A TraceMessage record: its header says which of its optional fields follow."""
        number, options = struct.unpack_from("<HH", data, pos + 4)
        cursor, provider, pid, tid, timestamp = pos + 8, None, None, None, 0
        wanted = (4 if options & 1 else 0) + (16 if options & 2 else 4 if options & 4 else 0) + (8 if options & 8 else 0) + (8 if options & 32 else 0)
        if cursor + wanted > stop:
            raise self.error(f"message record at byte {offset:#x} is too short for the fields its flags {options:#x} announce", offset)
        if options & 1:
            cursor += 4
        if options & 2:
            provider = uuid.UUID(bytes_le=data[cursor:cursor + 16])
            cursor += 16
        elif options & 4:
            cursor += 4
        if options & 8:
            timestamp = struct.unpack_from("<q", data, cursor)[0]
            cursor += 8
        if options & 32:
            tid, pid = struct.unpack_from("<II", data, cursor)
            cursor += 8
        time = (timestamp - self._start) / self._frequency if timestamp else 0.0
        return EtlEvent(offset, "message", cpu, pid, tid, timestamp, time, provider, None, None, None, id=number,
                        flags=options, data=data[cursor:stop])

    def _extended(self, data: bytes, pos: int, stop: int, offset: int) -> tuple[list[tuple[int, bytes]], int]:
        """The EVENT_HEADER_EXTENDED_DATA_ITEMs after the header: [(type, data)], user data start."""
        items = []
        cursor = pos + _EVENT_HEADER_SIZE
        while True:
            if cursor + 8 > stop:
                raise self.error(f"event at byte {offset:#x}: its extended data runs past the record ({stop - pos} bytes)", offset)
            _size, ext_type, linkage, length = _EXT_ITEM.unpack_from(data, cursor)
            if cursor + 8 + length > stop:
                raise self.error(f"event at byte {offset:#x}: extended data item of type {ext_type} says {length} bytes, "
                                 f"only {stop - cursor - 8} remain in the record", offset)
            items.append((ext_type, data[cursor + 8:cursor + 8 + length]))
            cursor = min(cursor + _align8(8 + length), stop)
            if not linkage & 1:
                return items, cursor

    def _event(self, data: bytes, pos: int, stop: int, offset: int, cpu: int, pointer_size: int) -> EtlEvent:
        (_size, _htype, _mflags, flags, _property, tid, pid, timestamp, guid,
         event_id, version, channel, level, opcode, task, keyword) = _EVENT.unpack_from(data, pos)
        provider = uuid.UUID(bytes_le=guid)
        items, user = self._extended(data, pos, stop, offset) if flags & 1 else ([], pos + _EVENT_HEADER_SIZE)
        provider_name = name = fields = error = None
        schema_blob = None
        others = []
        for ext_type, blob in items:
            if ext_type == _EXT_SCHEMA_TL:
                schema_blob = blob
            elif ext_type == _EXT_PROV_TRAITS:
                try:
                    provider_name = traits_for(blob).name
                except TraceLoggingError as problem:
                    error = f"provider traits: {problem.message}"
            else:
                others.append((ext_type, blob))
        if schema_blob is not None:
            try:
                schema = schema_for(schema_blob)
                name = schema.name
                fields = schema.decode(data, user, stop, pointer_size)
            except TraceLoggingError as problem:
                error = problem.message
        return EtlEvent(offset, "event", cpu, pid, tid, timestamp, (timestamp - self._start) / self._frequency, provider,
                        provider_name, name, fields, event_id, version, channel, level, opcode, task, keyword, flags,
                        data[user:stop], error, tuple(others))


def _utf16z(names: bytes, index: int) -> str:
    """The index-th NUL-terminated UTF-16LE string of `names` ("" when missing)."""
    pos = 0
    for _ in range(index + 1):
        nul = names.find(b"\0\0", pos)
        while nul >= 0 and (nul - pos) & 1:
            nul = names.find(b"\0\0", nul + 1)
        if nul < 0:
            return ""
        text, pos = names[pos:nul], nul + 2
    return text.decode("utf-16-le", "replace")


# ---------------------------------------------------------------------------------------------
# The capture kit's text


def _one_line(text: str) -> str:
    """A kit line holding a line break (the kit never writes one: a damaged record) as one
    line, each break shown as U+FFFD as undecodable bytes are, so it fails to parse where it is."""
    return text.replace("\r", "\ufffd").replace("\n", "\ufffd")


def capture_lines(path: str | os.PathLike, *, display: str | None = None, window: int = REORDER_WINDOW) -> Iterator[str]:
    """The dmatrace text of a capture, line by line, streaming (kit contract, section 4).

    Lines: `@dmatrace 1`, `@target arch=x64|x86` (from the header's pointer size), a
    `# capture FILE: ...` comment with what the log file header says, a `lost` line for each of
    the session's lost events and lost buffers, then the kit's lines in `Seq` order (buffers of
    all CPUs merged): an event line as `t=SECONDS LINE` (seconds since the session started, 7
    decimals; an event stamped before the start says 0), a directive (`@...`) as written. Last
    comes a `# capture summary: ...` comment counting the kit's events, the CPUs they came
    from, and what was skipped (per provider, and system records): those counts are only
    known at the end, and the file is read once.

    Merging: events wait in a heap; the smallest is written as soon as it is the next seq
    expected (the first expected is 1). When more than `window` wait, or at the end of the
    file, the smallest is written anyway, after a `lost records=N` line for the seq numbers
    skipped. A seq at or below one already written (a duplicate, or one that came later than
    the window allowed) is not checked: a `lost records=1` line says so in its place.

    Raises `EtlError` for a corrupt file and `NoCaptureEventsError` when the file holds no
    Dmalint.Capture event (after the header lines have been yielded).
    """
    etl = EtlFile(path, display)
    header = etl.header
    yield "@dmatrace 1"
    yield f"@target arch={header.arch}"
    started = header.start_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if header.start_time else "unknown"
    yield (f"# capture {etl.display}: ETL, {header.number_of_processors} CPUs, pointer size {header.pointer_size}, "
           f"{header.clock_name} clock at {header.frequency} Hz, session {header.session_name or '(unnamed)'!r} started {started}")
    if header.events_lost:
        yield _lost("records", header.events_lost, f"the ETW session lost {_count(header.events_lost, 'event')} (log file header EventsLost)")
    if header.buffers_lost:
        yield _lost("buffers", header.buffers_lost, f"the ETW session lost {_count(header.buffers_lost, 'buffer')} (log file header BuffersLost)")
    scan = _KitScan(etl)
    merge = _SeqMerge(window)
    for batch in scan.batches():
        yield from merge.feed(batch)
    yield from merge.finish()
    if scan.kit_events == 0:
        holds = scan.others_summary() or "nothing else"
        raise NoCaptureEventsError(
            f"the file holds no events of {KIT_PROVIDER_NAME} {{{KIT_PROVIDER_GUID}}}: it holds {holds}; "
            "was the session started with the kit's provider?",
            SourceLocation(etl.display, 0), scan.provider_counts())
    skipped = scan.others_summary()
    yield (f"# capture summary: {_count(scan.kit_events, 'event')} of {KIT_PROVIDER_NAME} on {_count(len(scan.cpus), 'CPU')}"
           f"; skipped: {skipped or 'nothing'}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _lost(unit: str, number: int, reason: str) -> str:
    return f'lost {unit}={number} reason="{reason}"'


class _KitScan:
    """Walks the buffers for the kit's events: (seq, line) batches, one per buffer; counts the rest.

    The kit's events all carry the same extended data (traits and `Line` schema): once one has
    been decoded the general way, later events with byte-identical extended data are read
    directly (Seq and the counted string at known offsets). Anything else goes through
    `EtlFile._record`, which decodes and checks it fully.
    """

    def __init__(self, etl: EtlFile) -> None:
        self.etl = etl
        self.kit_events = 0
        self.cpus: set[int] = set()
        self.others: dict[tuple[str, str], int] = {}
        self.system_records = 0
        self._known: bytes | None = None  # the kit events' extended data, once seen
        self._guid = KIT_PROVIDER_GUID.bytes_le

    def provider_counts(self) -> dict[str, int]:
        counts = {label: number for (label, _guid), number in self.others.items()}
        if self.system_records:
            counts["system"] = self.system_records
        return counts

    def others_summary(self) -> str:
        parts = [f"{label} ({_count(number, 'event')})" for (label, _guid), number in sorted(self.others.items())]
        if self.system_records:
            parts.append(_count(self.system_records, "system record"))
        return ", ".join(parts)

    def batches(self) -> Iterator[list[tuple[int, str]]]:
        etl = self.etl
        start, frequency = etl._start, etl._frequency
        guid = self._guid
        unpack_head, unpack_seq = _KIT_HEAD.unpack_from, _SEQ_COUNT.unpack_from
        for base, data, cpu, end in etl.buffers():
            batch: list[tuple[int, str]] = []
            append = batch.append
            known = self._known
            user_at = _EVENT_HEADER_SIZE + len(known) if known is not None else 0
            pos = BUFFER_HEADER_SIZE
            while pos + 4 <= end:
                if known is not None and pos + 40 <= end:
                    size, htype, mflags, flags, timestamp, provider = unpack_head(data, pos)
                    if provider == guid and flags & 1 and mflags == 0xC0 and (htype == 0x13 or htype == 0x12):
                        user = pos + user_at
                        stop = pos + size
                        if user + 10 <= stop <= end and data[pos + _EVENT_HEADER_SIZE:user] == known:
                            seq, length = unpack_seq(data, user)
                            if user + 10 + length == stop:
                                try:
                                    text = data[user + 10:stop].decode("utf-8")
                                except UnicodeDecodeError:
                                    text = data[user + 10:stop].decode("utf-8", "replace")
                                if "\n" in text or "\r" in text:
                                    text = _one_line(text)
                                if text[:1] != "@":
                                    text = f"t={(timestamp - start) / frequency if timestamp > start else 0.0:.7f} {text}"
                                append((seq, text))
                                pos += (size + 7) & ~7
                                continue
                item, pos = self._general(data, pos, end, base, cpu)
                if item is not None:
                    append(item)
                    if known is None and self._known is not None:
                        known = self._known
                        user_at = _EVENT_HEADER_SIZE + len(known)
            if batch:
                self.kit_events += len(batch)
                self.cpus.add(cpu)
                yield batch

    def _general(self, data: bytes, pos: int, end: int, base: int, cpu: int) -> tuple[tuple[int, str] | None, int]:
        """A record read the general way: the kit's (seq, line), or None after counting it."""
        event, following = self.etl._record(data, pos, end, base, cpu)
        if event is None:
            return None, end
        if event.provider is None:
            self.system_records += 1
            return None, following
        if event.provider != KIT_PROVIDER_GUID or event.name != KIT_EVENT_NAME:
            key = (event.provider_label, str(event.provider))
            if event.provider == KIT_PROVIDER_GUID:
                key = (f"{KIT_PROVIDER_NAME} {event.name or event.kind}", str(event.provider))
            self.others[key] = self.others.get(key, 0) + 1
            return None, following
        fields = event.fields
        where = base + pos
        if fields is None:
            raise self.etl.error(f"{KIT_PROVIDER_NAME} event {KIT_EVENT_NAME} at byte {where:#x} cannot be decoded: {event.decode_error}", where)
        seq, text = fields.get("Seq"), fields.get("Line")
        if list(fields) != ["Seq", "Line"] or not isinstance(seq, int) or not isinstance(text, str):
            shape = ", ".join(f"{name}={type(value).__name__}" for name, value in fields.items())
            raise self.etl.error(f"{KIT_PROVIDER_NAME} event {KIT_EVENT_NAME} at byte {where:#x} has fields ({shape}); "
                                 "the kit writes Seq (uint64) and Line (counted UTF-8 string)", where)
        if self._known is None:
            self._learn(data, pos, event)
        if "\n" in text or "\r" in text:
            text = _one_line(text)
        if text[:1] != "@":
            seconds = event.time if event.timestamp > self.etl._start else 0.0
            text = f"t={seconds:.7f} {text}"
        return (seq, text), following

    def _learn(self, data: bytes, pos: int, event: EtlEvent) -> None:
        """Remember the extended data of a kit event decoded the general way, for the fast path.

        Only when the schema is exactly the kit's (Seq uint64, Line counted string shown as
        UTF-8), which the fast path reads the same way the general path does.
        """
        stop = pos + int.from_bytes(data[pos:pos + 2], "little")
        items, user = self.etl._extended(data, pos, stop, pos)
        blobs = dict(items)
        shape = [(spec.name, spec.in_type, spec.out_type, spec.count, spec.custom) for spec in schema_for(blobs[_EXT_SCHEMA_TL]).fields]
        if shape == [("Seq", 10, shape[0][2], None, False), ("Line", 23, 35, None, False)] and set(blobs) == {_EXT_SCHEMA_TL, _EXT_PROV_TRAITS}:
            self._known = bytes(data[pos + _EVENT_HEADER_SIZE:user])


class _SeqMerge:
    """Puts (seq, line) pairs back in seq order with a bounded heap (see `capture_lines`)."""

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self.heap: list[tuple[int, str]] = []
        self.next = 1  # the seq expected next
        self.high_water = 0  # the most pairs the heap has held at once

    def feed(self, batch: list[tuple[int, str]]) -> Iterator[str]:
        heap = self.heap
        expected = self.next
        for item in batch:
            seq = item[0]
            if seq == expected and not heap:
                expected += 1
                yield item[1]
                continue
            if seq < expected:
                yield self._late(seq, expected)
                continue
            heapq.heappush(heap, item)
            if heap[0][0] == expected or len(heap) > self.window:
                if len(heap) > self.high_water:
                    self.high_water = len(heap)
                self.next = expected
                yield from self._drain(everything=False)
                expected = self.next
        if len(heap) > self.high_water:
            self.high_water = len(heap)
        self.next = expected

    def finish(self) -> Iterator[str]:
        yield from self._drain(everything=True)

    def _drain(self, everything: bool) -> Iterator[str]:
        """Write what can be written: the next seq, and past a gap when forced or over the window."""
        heap = self.heap
        while heap:
            seq = heap[0][0]
            if seq < self.next:
                heapq.heappop(heap)
                yield self._late(seq, self.next)
            elif seq == self.next or everything or len(heap) > self.window:
                line = heapq.heappop(heap)[1]
                if seq > self.next:
                    missing = f"seq {self.next}" if seq == self.next + 1 else f"seq {self.next}..{seq - 1}"
                    yield _lost("records", seq - self.next, f"the capture has no records with {missing}")
                self.next = seq + 1
                yield line
            else:
                return

    def _late(self, seq: int, expected: int) -> str:
        """A record that cannot go in its place is not checked: a `lost` line says so, so the
        capture is never reported clean without it."""
        return _lost("records", 1, f"seq {seq} came after seq {expected - 1} had been written (a duplicate, or later "
                     f"than the reorder window of {self.window} records allowed); it was not checked")
