"""`dmalint etl FILE`: what an .etl file holds, as text, JSON Lines, or the dmatrace text it checks as.

The first thing to run when a capture looks wrong:

- `text`: a header block (file, bytes, pointer size, CPUs, clock, start time, session, events
  and buffers lost), one line per record (seconds since the session started, cpu, tid,
  provider, event name, fields as `Name=value`), then a summary table: per provider its name,
  GUID, number of records and event names with their counts.
- `jsonl`: one JSON object per record, then `{"summary": ...}` (the header facts and the
  table). Integers of 2^53 and more, and hex-typed fields, are `"0x..."` strings; bytes are
  hex strings; GUIDs and times are strings.
- `trace`: exactly the lines of `checker.reading.etl.capture_lines`, what `dmalint check` reads (its
  line numbers are the ones findings give).

`summary_only` prints the header and the summary alone (text and jsonl). Problems are raised
as `DmalintError`s (`EtlError` for a corrupt file, `TraceNotFoundError`), for the CLI to print.
"""

from __future__ import annotations

import datetime
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import TextIO

from ..errors import UsageError
from .etl import EtlEvent, EtlFile, EtlHeader, capture_lines
from .etl_tracelogging import HexInt

__all__ = ["FORMATS", "ProviderSummary", "run_etl_listing"]

FORMATS = ("text", "jsonl", "trace")
_SHOWN = 200  # characters of a string or binary field shown in the text listing


@dataclass(slots=True)
class ProviderSummary:
    """What one provider (or the kernel's system records) contributed to the file."""

    label: str
    guid: uuid.UUID | None
    events: int = 0
    names: dict[str, int] = field(default_factory=dict)

    def add(self, event: EtlEvent) -> None:
        self.events += 1
        name = event.name or (event.kind if event.provider is None else f"id {event.id}")
        self.names[name] = self.names.get(name, 0) + 1


def run_etl_listing(path: str, fmt: str, summary_only: bool, out: TextIO) -> int:
    """List the .etl file at `path` to `out` in `fmt` (see the module docstring); exit status 0."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if fmt == "trace":
        if summary_only:
            raise UsageError("--summary goes with --format text or jsonl; --format trace prints the whole text")
        for line in capture_lines(path):
            out.write(line + "\n")
        return 0
    etl = EtlFile(path)
    providers: dict[tuple[str, uuid.UUID | None], ProviderSummary] = {}
    if fmt == "text":
        out.write(_header_text(etl.header))
        if not summary_only:
            out.write("\n")
    for event in etl.events():
        key = (event.provider_label, event.provider)
        summary = providers.get(key)
        if summary is None:
            summary = providers[key] = ProviderSummary(event.provider_label, event.provider)
        summary.add(event)
        if summary_only:
            continue
        if fmt == "text":
            out.write(_event_text(event) + "\n")
        else:
            out.write(json.dumps(_event_json(event), ensure_ascii=False) + "\n")
    table = sorted(providers.values(), key=lambda item: (item.guid is None, item.label.lower(), str(item.guid)))
    if fmt == "text":
        out.write("\n" + _summary_text(table))
    else:
        summary = {"header": _header_json(etl.header), "records": sum(item.events for item in table),
                   "providers": [_provider_json(item) for item in table]}
        out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
    return 0


# -- text ------------------------------------------------------------------------------------


def _when(moment: datetime.datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else "unknown"


def _header_text(header: EtlHeader) -> str:
    rows = [
        ("file", header.path),
        ("bytes", f"{header.file_size:,}"),
        ("pointer size", f"{header.pointer_size} ({header.arch})"),
        ("CPUs", str(header.number_of_processors)),
        ("clock", f"{header.clock_name} at {header.frequency:,} Hz"),
        ("start time", _when(header.start_time)),
        ("end time", _when(header.end_time)),
        ("session", header.session_name or "(unnamed)"),
        ("buffer size", f"{header.buffer_size:,}"),
        ("events lost", str(header.events_lost)),
        ("buffers lost", str(header.buffers_lost)),
    ]
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:<{width}}  {value}\n" for name, value in rows)


def _value_text(value: object) -> str:
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bytes):
        text = "0x" + value.hex() if value else '""'
    elif isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    elif isinstance(value, datetime.datetime):
        return value.isoformat()
    elif isinstance(value, list):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    elif isinstance(value, dict):
        return "{" + ", ".join(f"{name}={_value_text(item)}" for name, item in value.items()) + "}"
    else:
        return str(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "\u2026"


def _event_text(event: EtlEvent) -> str:
    tid = "-" if event.tid is None else str(event.tid)
    name = event.name or (event.kind if event.provider is None else f"id={event.id}")
    head = f"{event.time:.7f} cpu={event.cpu} tid={tid} {event.provider_label} {name}"
    if event.fields is not None:
        return " ".join([head, *(f"{field_name}={_value_text(value)}" for field_name, value in event.fields.items())])
    if event.decode_error:
        return f"{head} (not decoded: {event.decode_error}; {len(event.data)} bytes of payload)"
    return f"{head} ({len(event.data)} bytes of payload)"


def _summary_text(table: list[ProviderSummary]) -> str:
    rows = [("provider", "guid", "records", "event names")]
    for item in table:
        names = ", ".join(f"{name} ({count})" for name, count in sorted(item.names.items()))
        rows.append((item.label, str(item.guid) if item.guid else "-", str(item.events), names))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    total = sum(item.events for item in table)
    lines = [f"summary: {total} record{'s' if total != 1 else ''} from {len(table)} provider{'s' if len(table) != 1 else ''}"]
    for row in rows:
        lines.append(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------------------


def _json_value(value: object) -> object:
    """A field's value as JSON holds it without loss (see the module docstring)."""
    if isinstance(value, HexInt):
        return hex(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else hex(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {name: _json_value(item) for name, item in value.items()}
    return str(value)


def _event_json(event: EtlEvent) -> dict:
    record = {
        "offset": event.offset, "kind": event.kind, "cpu": event.cpu, "pid": event.pid, "tid": event.tid,
        "timestamp": event.timestamp, "time": round(event.time, 7),
        "provider": str(event.provider) if event.provider else None, "provider_name": event.provider_name,
        "name": event.name, "id": event.id, "version": event.version, "channel": event.channel, "level": event.level,
        "opcode": event.opcode, "task": event.task, "keyword": hex(event.keyword),
        "fields": _json_value(event.fields),
    }
    if event.fields is None:
        record["payload_bytes"] = len(event.data)
    if event.decode_error:
        record["decode_error"] = event.decode_error
    return record


def _header_json(header: EtlHeader) -> dict:
    return {
        "file": header.path, "bytes": header.file_size, "pointer_size": header.pointer_size, "arch": header.arch,
        "cpus": header.number_of_processors, "clock": header.clock_name, "frequency": header.frequency,
        "start_time": _json_value(header.start_time), "end_time": _json_value(header.end_time),
        "session": header.session_name, "log_file": header.log_file_name, "buffer_size": header.buffer_size,
        "buffers_written": header.buffers_written, "events_lost": header.events_lost,
        "buffers_lost": header.buffers_lost, "os_version": ".".join(map(str, header.version)),
        "os_build": header.provider_version,
    }


def _provider_json(item: ProviderSummary) -> dict:
    return {"provider": item.label, "guid": str(item.guid) if item.guid else None, "records": item.events,
            "events": dict(sorted(item.names.items()))}
