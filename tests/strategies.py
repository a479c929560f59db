"""Hypothesis strategies for valid dmatrace records (events, directives, comments)."""

from __future__ import annotations

from hypothesis import strategies as st

from model import events as ev
from model.irql import Irql
from model.location import SourceLocation
from model.values import NULL, Struct, Symbol

HERE = SourceLocation("generated.trace", 1)
_KEYWORDS = {"TRUE", "FALSE", "NULL"}

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(lambda n: n not in _KEYWORDS)
# DDI names the parameter table does not know, so bare arguments stay unnamed
ddi_names = names.map(lambda n: "Vendor" + n)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)

scalars = st.one_of(u64, st.booleans(), st.just(NULL), names.map(Symbol), text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.lists(st.tuples(names, inner), max_size=3, unique_by=lambda pair: pair[0]).map(lambda f: Struct(tuple(f))),
    ),
    max_leaves=6,
)

irqls = st.one_of(
    st.integers(min_value=0, max_value=31).map(Irql.from_number),
    st.sampled_from(["PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL", "DIRQL", "HIGH_LEVEL"]).map(Irql.from_name),
)
seconds = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
timestamps = st.from_regex(r"[0-9]{2}/[0-9]{2}/[0-9]{4}-[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?", fullmatch=True)
providers = st.from_regex(r"[A-Za-z0-9_.#-]([A-Za-z0-9_ .#-]{0,10}[A-Za-z0-9_.#-])?", fullmatch=True)
small = st.integers(min_value=0, max_value=2**32)


@st.composite
def contexts(draw) -> ev.Context:
    optional = lambda strategy: draw(st.one_of(st.none(), strategy))  # noqa: E731
    if draw(st.booleans()):
        return ev.Context(
            t=optional(seconds),
            seq=optional(small),
            cpu=draw(st.integers(0, 255)),
            tid=draw(st.integers(0, 0xFFFF)),
            irql=optional(irqls),
            pid=draw(st.integers(0, 0xFFFF)),
            timestamp=draw(timestamps),
            provider=draw(providers),
        )
    return ev.Context(t=optional(seconds), seq=optional(small), cpu=optional(small), tid=optional(small), irql=optional(irqls))


@st.composite
def argument_lists(draw) -> tuple[ev.Argument, ...]:
    bare = draw(st.lists(values, max_size=3))
    named = draw(st.lists(st.tuples(names, values, st.booleans()), max_size=4, unique_by=lambda a: a[0]))
    return tuple(ev.Argument(None, value, False, True) for value in bare) + tuple(
        ev.Argument(name, value, out) for name, value, out in named
    )


def _event(cls, **fields):
    return st.builds(cls, location=st.just(HERE), context=contexts(), **fields)


results = st.one_of(st.none(), values)
events = st.one_of(
    _event(ev.Call, name=ddi_names, arguments=argument_lists(), result=results),
    _event(ev.Enter, name=ddi_names, arguments=argument_lists()),
    _event(ev.Callback, name=ddi_names, arguments=argument_lists()),
    _event(ev.Leave, name=ddi_names, arguments=argument_lists(), result=results),
    _event(ev.Done, name=names),
    _event(ev.MemAccess, access=st.sampled_from(["read", "write"]), address=u64, length=u64),
    _event(
        ev.DmaAccess,
        access=st.sampled_from(["read", "write"]),
        address=u64,
        length=u64,
        fill=st.one_of(st.none(), st.integers(0, 255)),
    ),
    _event(ev.DmaAccess, access=st.just("write"), address=u64, length=u64, data=st.binary(min_size=1, max_size=8)),
    _event(
        ev.MdlRecord,
        address=u64,
        va=u64,
        offset=small,
        byte_count=small,
        pfns=st.lists(u64, max_size=5).map(tuple),
        next=st.one_of(st.none(), u64),
    ),
    _event(ev.SglRecord, address=u64, elements=st.lists(st.builds(ev.SgElement, u64, small), max_size=4).map(tuple)),
)

directives = st.one_of(
    st.builds(ev.VersionDirective, location=st.just(HERE), version=st.just(1)),
    st.builds(
        ev.TargetDirective,
        location=st.just(HERE),
        arch=st.one_of(st.none(), st.sampled_from(["x64", "x86", "arm64"])),
        page_size=st.one_of(st.none(), st.sampled_from([4096, 8192, 65536])),
    ),
    st.builds(
        ev.MemoryDirective,
        location=st.just(HERE),
        size=st.one_of(st.none(), u64),
        layout=st.one_of(st.none(), st.sampled_from(["fragmented", "contiguous", "high"])),
        seed=st.one_of(st.none(), small),
    ),
    st.builds(
        ev.AdapterDirective,
        location=st.just(HERE),
        kind=st.just("wdm"),
        address=u64,
        dma64=st.one_of(st.none(), st.booleans()),
        address_width=st.one_of(st.none(), st.integers(1, 64)),
        scatter_gather=st.one_of(st.none(), st.booleans()),
        maximum_length=st.one_of(st.none(), small),
        map_registers=st.one_of(st.none(), small),
        alignment=st.one_of(st.none(), small),
    ),
    st.builds(
        ev.DriverDirective,
        location=st.just(HERE),
        fields=st.lists(st.tuples(names, values), max_size=3, unique_by=lambda pair: pair[0]).map(tuple),
    ),
    st.builds(
        ev.UnknownDirective,
        location=st.just(HERE),
        directive=names.filter(lambda n: n not in ("dmatrace", "target", "memory", "adapter", "driver")),
        words=st.lists(values, max_size=2).map(tuple),
        fields=st.lists(st.tuples(names, values), max_size=2, unique_by=lambda pair: pair[0]).map(tuple),
    ),
)

comments = st.builds(ev.Comment, location=st.just(HERE), text=text)
records = st.one_of(events, events, directives, comments)



# --- calls of DDIs the parameter table knows (tests/test_fastpath.py) -------------------------
# Bare arguments are named from the table, named ones it does not list warn, and too many bare
# arguments or a name given twice are errors: the paths where both parsers must agree.


@st.composite
def known_ddi_calls(draw) -> str:
    from checker.reading.signatures import signatures
    from checker.reading.writer import format_context, format_value

    table = signatures()
    name = draw(st.sampled_from(sorted(table)))
    params = table[name].params
    bare = draw(st.integers(0, len(params) + 1))
    parts = [format_value(draw(values)) for _ in range(bare)]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(st.sampled_from(params) if params else names, names))
        parts.append(f"{key}{draw(st.sampled_from(['=', '=>']))}{format_value(draw(values))}")
    verb = draw(st.sampled_from(["call", "enter", "callback", "leave"]))
    arguments = "(" + ", ".join(parts) + ")"
    result = draw(st.one_of(st.none(), values))
    returns = "" if result is None or verb in ("enter", "callback") else f" -> {format_value(result)}"
    if verb == "leave":
        tail = f"{returns} {arguments}" if parts or draw(st.booleans()) else returns
        return f"{format_context(draw(contexts()))}leave {name}{tail}"
    return f"{format_context(draw(contexts()))}{verb} {name}{arguments}{returns}"
