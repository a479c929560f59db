"""TraceLogging inside ETL events: event schemas, provider traits, and field decoding.

A TraceLogging event carries its own schema: the provider traits (extended data item
EVENT_HEADER_EXT_TYPE_PROV_TRAITS, 12) and the event metadata (EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL,
11), in the layout TraceLoggingProvider.h writes:

    event metadata:  UINT16 size (of the whole blob), UINT8 tags (chained while bit 0x80),
                     NUL-terminated UTF-8 event name, then per field:
                       NUL-terminated UTF-8 name,
                       UINT8 in-type (low 5 bits the type; 0x20 a constant-count array, 0x40 a
                         variable-count array, 0x60 a custom type; 0x80: an out-type byte follows),
                       [UINT8 out-type (low 7 bits; 0x80: tag bytes follow, chained while 0x80)],
                       [UINT16 count, for a constant-count array],
                       [UINT16 type-info size and the type info, for a custom type]
                     A struct field (in-type 24) gives its number of members in the out-type
                     byte; the members are the fields that follow it.
    provider traits: UINT16 size, NUL-terminated UTF-8 provider name, then traits, each
                     UINT16 size (itself included), UINT8 type (1: the provider group GUID), data.

Field values in the payload, in field order, unaligned: fixed-size scalars little-endian;
NUL-terminated strings (8-bit, or UTF-16LE for "unicode"); counted strings and binary as a
UINT16 byte count then the bytes; a variable-count array as a UINT16 element count then the
elements; a SID as its own variable-length structure.

`schema_for(blob)` parses a metadata blob once and caches it, so repeated events of one schema
cost one dict lookup; `EventSchema.decode` turns a payload into `{name: value}` in field order.
A schema that cannot be parsed, or a payload that does not fit its schema, raises
`TraceLoggingError`: the record itself is sound, so the ETL reader keeps the event undecoded
(its `decode_error` says why) instead of failing the file.
"""

from __future__ import annotations

import datetime
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DmalintError

__all__ = [
    "EventSchema",
    "FieldSpec",
    "HexInt",
    "ProviderTraits",
    "TraceLoggingError",
    "IN_TYPES",
    "OUT_TYPES",
    "schema_for",
    "traits_for",
]


class TraceLoggingError(DmalintError):
    """A TraceLogging schema or payload that cannot be decoded; `offset` is relative to its blob.

    The ETL reader catches it and keeps the event undecoded (the record itself is sound)."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


class HexInt(int):
    """An integer the schema says to show in hex (hexint32/64, pointers, HEX, NTSTATUS, ...)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return hex(self)

    __str__ = __repr__


# In-types (TlgIn*) and out-types (TlgOut*) of TraceLoggingProvider.h, by number.
IN_TYPES = {
    1: "unicodestring", 2: "ansistring", 3: "int8", 4: "uint8", 5: "int16", 6: "uint16",
    7: "int32", 8: "uint32", 9: "int64", 10: "uint64", 11: "float", 12: "double", 13: "bool32",
    14: "binary", 15: "guid", 16: "pointer", 17: "filetime", 18: "systemtime", 19: "sid",
    20: "hexint32", 21: "hexint64", 22: "countedstring", 23: "countedansistring", 24: "struct",
    25: "countedbinary",
}
OUT_TYPES = {
    0: "null", 1: "noprint", 2: "string", 3: "boolean", 4: "hex", 5: "pid", 6: "tid", 7: "port",
    8: "ipv4", 9: "ipv6", 10: "socketaddress", 11: "xml", 12: "json", 13: "win32error",
    14: "ntstatus", 15: "hresult", 16: "filetime", 17: "signed", 18: "unsigned", 35: "utf8",
    36: "pkcs7", 37: "codepointer", 38: "datetime_utc",
}
_OUT_BOOLEAN, _OUT_HEX, _OUT_UTF8 = 3, 4, 35
_HEX_OUT = {4, 13, 14, 15, 37}
_STRUCT = 24
_CCOUNT, _VCOUNT, _CUSTOM = 0x20, 0x40, 0x60
_MAX_DEPTH = 32  # struct nesting TraceLogging allows in practice; deeper is a corrupt blob

# struct codes of the fixed-size scalars ("P": the pointer size of the event)
_SCALAR = {3: "b", 4: "B", 5: "h", 6: "H", 7: "i", 8: "I", 9: "q", 10: "Q", 11: "f", 12: "d",
           13: "i", 15: "16s", 16: "P", 17: "Q", 18: "16s", 20: "I", 21: "Q"}
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a TraceLogging event: its name, types, array count and (structs) members.

    `count` is None for a single value, a number for a constant-count array, -1 for a
    variable-count array (the count is in the payload).
    """

    name: str
    in_type: int
    out_type: int = 0
    tags: int = 0
    count: int | None = None
    custom: bool = False
    members: tuple[FieldSpec, ...] = ()

    @property
    def type_name(self) -> str:
        base = IN_TYPES.get(self.in_type, f"intype{self.in_type}")
        return base if self.count is None else f"{base}[{'' if self.count < 0 else self.count}]"


@dataclass(frozen=True, slots=True)
class ProviderTraits:
    """A provider's traits: its name and, when given, its provider group GUID."""

    name: str
    group: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, eq=False)
class EventSchema:
    """A parsed event metadata blob: event name, tags, fields, and decoders per pointer size."""

    name: str
    tags: int
    fields: tuple[FieldSpec, ...]
    _decoders: dict

    def decode(self, data: bytes, start: int, end: int, pointer_size: int) -> dict[str, object]:
        """The fields of the payload `data[start:end]`, name -> value in field order."""
        decoder = self._decoders.get(pointer_size)
        if decoder is None:
            decoder = self._decoders[pointer_size] = _Compiler(pointer_size).compile(self.fields)
        values: dict[str, object] = {}
        pos = start
        for step in decoder:
            pos = step(data, pos, end, values)
        return values  # bytes after the last field are ignored, as TDH does


# ---------------------------------------------------------------------------------------------
# Parsing the metadata blobs


def _cstring(blob: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    nul = blob.find(b"\0", pos, end)
    if nul < 0:
        raise TraceLoggingError(f"{what} runs past the end of the metadata", pos)
    return blob[pos:nul].decode("utf-8", "replace"), nul + 1


def _chained(blob: bytes, pos: int, end: int) -> tuple[int, int]:
    """Tag bytes chained while bit 0x80: 7 bits each, first byte the highest (28 bits)."""
    value, taken = 0, 0
    while True:
        if pos >= end:
            raise TraceLoggingError("tag bytes run past the end of the metadata", pos)
        byte = blob[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        taken += 1
        if not byte & 0x80:
            break
    return (value << (7 * (4 - taken)) if taken < 4 else value), pos


def parse_event_metadata(blob: bytes) -> EventSchema:
    """An event metadata blob (extended data type 11) as an `EventSchema`."""
    if len(blob) < 4:
        raise TraceLoggingError(f"event metadata of {len(blob)} bytes is too short")
    size = int.from_bytes(blob[:2], "little")
    if not 4 <= size <= len(blob):
        raise TraceLoggingError(f"event metadata says {size} bytes, the item holds {len(blob)}")
    tags, pos = _chained(blob, 2, size)
    name, pos = _cstring(blob, pos, size, "the event name")
    flat: list[FieldSpec] = []
    while pos < size:
        field_name, pos = _cstring(blob, pos, size, "a field name")
        if pos >= size:
            raise TraceLoggingError(f"field {field_name!r} has no in-type", pos)
        in_byte = blob[pos]
        pos += 1
        out_type = field_tags = 0
        if in_byte & 0x80:
            if pos >= size:
                raise TraceLoggingError(f"field {field_name!r} has no out-type", pos)
            out_byte = blob[pos]
            pos += 1
            out_type = out_byte & 0x7F
            if out_byte & 0x80:
                field_tags, pos = _chained(blob, pos, size)
        count: int | None = None
        custom = False
        kind = in_byte & 0x60
        if kind == _CCOUNT:
            if pos + 2 > size:
                raise TraceLoggingError(f"field {field_name!r} has no array count", pos)
            count = int.from_bytes(blob[pos:pos + 2], "little")
            pos += 2
        elif kind == _VCOUNT:
            count = -1
        elif kind == _CUSTOM:
            if pos + 2 > size:
                raise TraceLoggingError(f"field {field_name!r} has no type-info size", pos)
            pos += 2 + int.from_bytes(blob[pos:pos + 2], "little")
            if pos > size:
                raise TraceLoggingError(f"the type info of field {field_name!r} runs past the metadata", pos)
            custom = True
        in_type = in_byte & 0x1F
        if not custom and in_type not in IN_TYPES:
            raise TraceLoggingError(f"field {field_name!r} has in-type {in_type}, which TraceLogging does not define", pos)
        flat.append(FieldSpec(field_name, in_type, out_type, field_tags, count, custom))
    fields, _used = _nest(flat, 0, len(flat))
    return EventSchema(name, tags, fields, {})


def _nest(flat: list[FieldSpec], index: int, limit: int, depth: int = 0) -> tuple[tuple[FieldSpec, ...], int]:
    """Gather struct members (a struct's out-type byte counts the fields that follow it)."""
    if depth > _MAX_DEPTH:
        raise TraceLoggingError(f"structs nested more than {_MAX_DEPTH} deep")
    fields: list[FieldSpec] = []
    while index < len(flat) and len(fields) < limit:
        spec = flat[index]
        index += 1
        if spec.in_type == _STRUCT and not spec.custom:
            if spec.out_type == 0:
                raise TraceLoggingError(f"struct field {spec.name!r} has no members")
            members, index = _nest(flat, index, spec.out_type, depth + 1)
            if len(members) < spec.out_type:
                raise TraceLoggingError(f"struct field {spec.name!r} wants {spec.out_type} members, {len(members)} follow")
            spec = FieldSpec(spec.name, spec.in_type, spec.out_type, spec.tags, spec.count, False, members)
        fields.append(spec)
    return tuple(fields), index


def parse_provider_traits(blob: bytes) -> ProviderTraits:
    """A provider traits blob (extended data type 12) as `ProviderTraits`."""
    if len(blob) < 3:
        raise TraceLoggingError(f"provider traits of {len(blob)} bytes are too short")
    size = int.from_bytes(blob[:2], "little")
    if not 3 <= size <= len(blob):
        raise TraceLoggingError(f"provider traits say {size} bytes, the item holds {len(blob)}")
    name, pos = _cstring(blob, 2, size, "the provider name")
    group = None
    while pos + 3 <= size:
        trait_size = int.from_bytes(blob[pos:pos + 2], "little")
        if trait_size < 3 or pos + trait_size > size:
            raise TraceLoggingError(f"a provider trait says {trait_size} bytes", pos)
        if blob[pos + 2] == 1 and trait_size >= 19:
            group = uuid.UUID(bytes_le=bytes(blob[pos + 3:pos + 19]))
        pos += trait_size
    return ProviderTraits(name, group)


_SCHEMAS: dict[bytes, EventSchema | TraceLoggingError] = {}
_TRAITS: dict[bytes, ProviderTraits | TraceLoggingError] = {}
_CACHE_LIMIT = 4096


def _parsed(cache: dict, parse: Callable[[bytes], object], blob: bytes) -> object:
    """`parse(blob)`, once per distinct blob (bounded cache); a blob that does not parse raises
    its TraceLoggingError again each time it is asked for."""
    found = cache.get(blob)
    if found is None:
        try:
            found = parse(blob)
        except TraceLoggingError as error:
            found = error
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[blob] = found
    if isinstance(found, TraceLoggingError):
        raise found
    return found


def schema_for(blob: bytes) -> EventSchema:
    """The schema of an event metadata blob, parsed once per distinct blob (bounded cache)."""
    return _parsed(_SCHEMAS, parse_event_metadata, blob)  # type: ignore[return-value]


def traits_for(blob: bytes) -> ProviderTraits:
    """The provider traits of a blob, parsed once per distinct blob (bounded cache)."""
    return _parsed(_TRAITS, parse_provider_traits, blob)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Decoding payloads: a schema compiles to a list of steps, each `step(data, pos, end, values) -> pos`

Step = Callable[[bytes, int, int, dict], int]


def _filetime(value: int) -> object:
    try:
        return _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)
    except OverflowError:
        return value


def _systemtime(raw: bytes) -> object:
    year, month, _weekday, day, hour, minute, second, millis = struct.unpack("<8H", raw)
    try:
        return datetime.datetime(year, month, day, hour, minute, second, millis * 1000)
    except ValueError:
        return (year, month, day, hour, minute, second, millis)


def _ansi(raw: bytes, out_type: int) -> str:
    if out_type == _OUT_UTF8:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _sid(data: bytes, pos: int, end: int) -> tuple[str, int]:
    if pos + 8 > end:
        raise TraceLoggingError("a SID runs past the payload", pos)
    revision, count = data[pos], data[pos + 1]
    size = 8 + 4 * count
    if pos + size > end:
        raise TraceLoggingError("a SID runs past the payload", pos)
    authority = int.from_bytes(data[pos + 2:pos + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, pos + 8)
    return "-".join(["S", str(revision), str(authority), *map(str, subs)]), pos + size


class _Compiler:
    """Turns fields into decoding steps for one pointer size."""

    def __init__(self, pointer_size: int) -> None:
        self.pointer = "I" if pointer_size == 4 else "Q"

    def compile(self, fields: tuple[FieldSpec, ...]) -> list[Step]:
        steps: list[Step] = []
        run: list[FieldSpec] = []
        for spec in fields:
            if spec.count is None and not spec.custom and spec.in_type in _SCALAR:
                run.append(spec)
                continue
            if run:
                steps.append(self._scalars(run))
                run = []
            steps.append(self._single(spec))
        if run:
            steps.append(self._scalars(run))
        return steps

    def _code(self, spec: FieldSpec) -> str:
        code = _SCALAR[spec.in_type]
        return self.pointer if code == "P" else code

    def _convert(self, spec: FieldSpec) -> Callable[[object], object] | None:
        in_type, out_type = spec.in_type, spec.out_type
        if in_type == 13 or (out_type == _OUT_BOOLEAN and in_type in (4, 6, 8)):
            return bool
        if in_type == 15:
            return lambda raw: uuid.UUID(bytes_le=raw)
        if in_type == 17:
            return _filetime
        if in_type == 18:
            return _systemtime
        if in_type in (16, 20, 21) or (out_type in _HEX_OUT and in_type in (4, 6, 8, 10)):
            return HexInt
        return None

    def _scalars(self, run: list[FieldSpec]) -> Step:
        layout = struct.Struct("<" + "".join(self._code(spec) for spec in run))
        names = tuple(spec.name for spec in run)
        converts = tuple(self._convert(spec) for spec in run)
        size, unpack = layout.size, layout.unpack_from
        plain = all(convert is None for convert in converts)

        def step(data: bytes, pos: int, end: int, values: dict) -> int:
            if pos + size > end:
                raise TraceLoggingError(f"field {names[0]!r} needs {size} bytes, {end - pos} remain", pos)
            raw = unpack(data, pos)
            if plain:
                values.update(zip(names, raw, strict=True))
            else:
                for name, convert, value in zip(names, converts, raw, strict=True):
                    values[name] = value if convert is None else convert(value)
            return pos + size

        return step

    def _single(self, spec: FieldSpec) -> Step:
        read = self._reader(spec)
        name = spec.name
        if spec.count is None:
            def step(data: bytes, pos: int, end: int, values: dict) -> int:
                values[name], pos = read(data, pos, end)
                return pos
            return step
        fixed = spec.count
        whole = self._whole_array(spec)

        def array_step(data: bytes, pos: int, end: int, values: dict) -> int:
            count = fixed
            if count < 0:
                if pos + 2 > end:
                    raise TraceLoggingError(f"array {name!r} has no count", pos)
                count = data[pos] | data[pos + 1] << 8
                pos += 2
            if whole is not None:
                width, make = whole
                stop = pos + width * count
                if stop > end:
                    raise TraceLoggingError(f"array {name!r} of {count} needs {width * count} bytes, {end - pos} remain", pos)
                values[name] = make(data, pos, count)
                return stop
            items = []
            for _ in range(count):
                item, pos = read(data, pos, end)
                items.append(item)
            values[name] = items
            return pos

        return array_step

    def _whole_array(self, spec: FieldSpec) -> tuple[int, Callable[[bytes, int, int], object]] | None:
        """(element width, maker) for arrays read in one go: char arrays as str, UINT8 as bytes,
        other fixed-size scalars unpacked at once; None for the rest."""
        in_type, out_type = spec.in_type, spec.out_type
        if spec.custom or in_type not in _SCALAR:
            return None
        if in_type in (3, 4) and out_type == 2:  # TraceLoggingChar8Array
            return 1, lambda data, pos, count: _ansi(data[pos:pos + count], out_type)
        if in_type == 6 and out_type == 2:  # TraceLoggingChar16Array
            return 2, lambda data, pos, count: data[pos:pos + 2 * count].decode("utf-16-le", "replace")
        if in_type == 4 and out_type not in _HEX_OUT and out_type != _OUT_BOOLEAN:
            return 1, lambda data, pos, count: bytes(data[pos:pos + count])
        code = self._code(spec)
        width = struct.calcsize("<" + code)
        convert = self._convert(spec)

        def make(data: bytes, pos: int, count: int) -> object:
            raw = struct.unpack_from(f"<{count}{code}", data, pos) if code != "16s" else [
                data[pos + 16 * index:pos + 16 * index + 16] for index in range(count)]
            return list(raw) if convert is None else [convert(value) for value in raw]

        return width, make

    def _reader(self, spec: FieldSpec) -> Callable[[bytes, int, int], tuple[object, int]]:
        """Reads one value of the field's type: (value, next position)."""
        in_type, out_type, name = spec.in_type, spec.out_type, spec.name

        def need(pos: int, size: int, end: int) -> None:
            if pos + size > end:
                raise TraceLoggingError(f"field {name!r} needs {size} bytes, {max(end - pos, 0)} remain", pos)

        if spec.custom:
            def custom(data: bytes, pos: int, end: int) -> tuple[object, int]:
                need(pos, 2, end)
                size = data[pos] | data[pos + 1] << 8
                need(pos + 2, size, end)
                return bytes(data[pos + 2:pos + 2 + size]), pos + 2 + size
            return custom
        if in_type == _STRUCT:
            steps = self.compile(spec.members)

            def struct_value(data: bytes, pos: int, end: int) -> tuple[object, int]:
                members: dict[str, object] = {}
                for step in steps:
                    pos = step(data, pos, end, members)
                return members, pos
            return struct_value
        if in_type in _SCALAR:
            layout = struct.Struct("<" + self._code(spec))
            size, unpack = layout.size, layout.unpack_from
            convert = self._convert(spec)

            def scalar(data: bytes, pos: int, end: int) -> tuple[object, int]:
                need(pos, size, end)
                value = unpack(data, pos)[0]
                return (value if convert is None else convert(value)), pos + size
            return scalar
        if in_type == 2:
            def ansi(data: bytes, pos: int, end: int) -> tuple[object, int]:
                nul = data.find(b"\0", pos, end)
                if nul < 0:
                    raise TraceLoggingError(f"string {name!r} has no terminating NUL", pos)
                return _ansi(data[pos:nul], out_type), nul + 1
            return ansi
        if in_type == 1:
            def unicode(data: bytes, pos: int, end: int) -> tuple[object, int]:
                nul = data.find(b"\0\0", pos, end)
                while nul >= 0 and (nul - pos) & 1:
                    nul = data.find(b"\0\0", nul + 1, end)
                if nul < 0:
                    raise TraceLoggingError(f"string {name!r} has no terminating NUL", pos)
                return data[pos:nul].decode("utf-16-le", "replace"), nul + 2
            return unicode
        if in_type in (14, 22, 23, 25):
            def counted(data: bytes, pos: int, end: int) -> tuple[object, int]:
                need(pos, 2, end)
                size = data[pos] | data[pos + 1] << 8
                start = pos + 2
                need(start, size, end)
                raw = data[start:start + size]
                if in_type == 23:
                    return _ansi(raw, out_type), start + size
                if in_type == 22:
                    return raw.decode("utf-16-le", "replace"), start + size
                return bytes(raw), start + size
            return counted
        if in_type == 19:
            return _sid
        raise TraceLoggingError(f"field {name!r} has in-type {in_type}, which this reader does not decode")
