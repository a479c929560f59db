"""The model's memory of released objects is bounded (model/retained.py), and the findings that
look back still get their answer within each bound.

Each bound has a test that replays more releases than it keeps and checks the table holds at
most that many (it fails on a model that keeps them all), and a test that the object a rule
needs is still there after as many other releases as the bound allows.
"""

from __future__ import annotations

from model.events import AdapterDirective, Argument, Call, Context, DmaAccess, MdlRecord, MemAccess
from model.irql import DISPATCH_LEVEL, PASSIVE_LEVEL
from model.location import SourceLocation
from model.machine import Machine
from model.retained import FREED_MEMORY, RAISED_LEVELS, RETIRED_MAPPINGS, RETIRED_MEMORY
from model.values import NULL, Symbol

from .helpers import check_bytes, trace

HERE = SourceLocation("bounds.trace", 1)
AT_DISPATCH = Context(cpu=0, irql=DISPATCH_LEVEL)
AT_PASSIVE = Context(cpu=0, irql=PASSIVE_LEVEL)
ADAPTER, MDL, VA = 0xA0, 0xD0, 0x10000
FRAME = 0x100000  # list i maps the page of frame FRAME + i: every list its own bus range
OK = Symbol("STATUS_SUCCESS")


def call(name: str, *arguments: tuple[str, object], result=None, context: Context = AT_DISPATCH) -> Call:
    return Call(location=HERE, context=context, name=name, arguments=tuple(Argument(n, v) for n, v in arguments), result=result)


def machine_with_adapter() -> Machine:
    machine = Machine()
    machine.apply(AdapterDirective(location=HERE, kind="wdm", address=ADAPTER, dma64=True))
    return machine


def build(machine: Machine, index: int, buffer: int = 0xB000, result=OK):
    """A one-page list of frame FRAME + index in `buffer` (the MDL described again each time)."""
    machine.apply(MdlRecord(location=HERE, context=AT_DISPATCH, address=MDL, va=VA, offset=0, byte_count=0x1000,
                            pfns=(FRAME + index,)))
    return machine.apply(call(
        "BuildScatterGatherList", ("DmaAdapter", ADAPTER), ("DeviceObject", 0x1), ("Mdl", MDL), ("CurrentVa", VA),
        ("Length", 0x1000), ("ExecutionRoutine", 0x2), ("Context", 0x3), ("WriteToDevice", False),
        ("ScatterGatherBuffer", buffer), ("ScatterGatherLength", 0x100), result=result))


def put(machine: Machine, buffer: int = 0xB000):
    return machine.apply(call("PutScatterGatherList", ("DmaAdapter", ADAPTER), ("ScatterGather", buffer),
                              ("WriteToDevice", False)))


def build_and_put(machine: Machine, index: int, buffer: int = 0xB000) -> None:
    build(machine, index, buffer)
    put(machine, buffer)


def device_write(machine: Machine, index: int):
    return machine.apply(DmaAccess(location=HERE, context=AT_DISPATCH, access="write", address=(FRAME + index) << 12,
                                   length=0x10, fill=0xAB))


# --- retired bus mappings, and the put lists behind them -----------------------------------------


def test_retired_mappings_are_bounded_and_the_oldest_forgotten():
    machine = machine_with_adapter()
    for index in range(RETIRED_MAPPINGS + 100):
        build_and_put(machine, index)
    assert machine.bus.retired_entries() <= RETIRED_MAPPINGS
    assert len(machine.put_by_ordinal) <= RETIRED_MAPPINGS
    assert [piece.state for piece in device_write(machine, 0).accesses] == ["unmapped"]
    (piece,) = device_write(machine, RETIRED_MAPPINGS + 99).accesses
    assert piece.state == "retired" and machine.owner(piece.entry).put_at is not None


def test_a_device_access_after_put_finds_the_list_within_the_bound():
    machine = machine_with_adapter()
    build_and_put(machine, 0)
    for index in range(1, RETIRED_MAPPINGS):  # as many other mappings retired as the bound keeps
        build_and_put(machine, index)
    (piece,) = device_write(machine, 0).accesses
    owner = machine.owner(piece.entry)
    assert piece.state == "retired" and owner.put_at is not None and owner.put_by == "PutScatterGatherList"
    assert machine.driver_va(piece.entry, piece.start) == VA


def test_a_put_list_is_kept_exactly_while_a_retired_mapping_names_it():
    machine = machine_with_adapter()
    build_and_put(machine, 0)
    (ordinal,) = machine.put_by_ordinal
    build(machine, 0, buffer=0xC000)  # a new list maps the same page: the old mapping is forgotten
    assert ordinal not in machine.put_by_ordinal and machine.bus.retired_entries() == 0
    put(machine, 0xC000)
    assert len(machine.put_by_ordinal) == 1 and ordinal not in machine.put_by_ordinal


def test_dev002_fires_within_the_bound():
    lines = ["@dmatrace 1", f"@adapter wdm address={ADAPTER:#x} dma64=TRUE"]
    for index in range(RETIRED_MAPPINGS):
        lines += [
            f"cpu=0 irql=DISPATCH mdl {MDL:#x} va={VA:#x} offset=0 bytes=0x1000 pfns=[{FRAME + index:#x}]",
            f"cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter={ADAPTER:#x}, DeviceObject=0x1, Mdl={MDL:#x}, "
            f"CurrentVa={VA:#x}, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, "
            "ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS",
            f"cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter={ADAPTER:#x}, ScatterGather=0xb000, WriteToDevice=FALSE)",
        ]
    lines.append(f"cpu=0 irql=DIRQL dma write {FRAME << 12:#x} 0x10 fill=0xab")  # the first list's page
    findings = [f for f in check_bytes(trace("\n".join(lines))) if f.code in ("DEV001", "DEV002")]
    assert [(f.code, f.location.line) for f in findings] == [("DEV002", len(lines))]


# --- put lists and failed builds, by buffer ------------------------------------------------------


def test_put_lists_are_bounded_by_buffer():
    machine = machine_with_adapter()
    for index in range(RETIRED_MEMORY + 10):
        build_and_put(machine, index % 16, buffer=0x1000000 + index * 0x100)
    assert len(machine.put_lists) == RETIRED_MEMORY
    assert put(machine, 0x1000000).fact("list-unknown") == 0x1000000  # the oldest forgotten


def test_a_second_put_is_found_within_the_bound():
    machine = machine_with_adapter()
    for index in range(RETIRED_MEMORY):
        build_and_put(machine, index % 16, buffer=0x1000000 + index * 0x100)
    again = put(machine, 0x1000000)
    assert again.fact("list-put-before").buffer == 0x1000000 and again.fact("list-unknown") is None


def test_failed_builds_are_bounded_and_found_within_the_bound():
    machine = machine_with_adapter()
    refused = Symbol("STATUS_INSUFFICIENT_RESOURCES")
    for index in range(RETIRED_MEMORY + 10):
        build(machine, 0, buffer=0x1000000 + index * 0x100, result=refused)
    assert len(machine.sgl_ddis.failed_lists) == RETIRED_MEMORY
    assert put(machine, 0x1000000).fact("list-failed") is None
    assert put(machine, 0x1000000 + 10 * 0x100).fact("list-failed").status == "STATUS_INSUFFICIENT_RESOURCES"


# --- calculations ------------------------------------------------------------------------------


def calculate(machine: Machine, index: int):
    return machine.apply(call("CalculateScatterGatherList", ("DmaAdapter", ADAPTER), ("Mdl", MDL),
                              ("CurrentVa", VA + index * 0x1000), ("Length", 0x1000), ("ScatterGatherListSize", 0x80),
                              ("NumberOfMapRegisters", 1), result=OK))


def test_calculations_are_bounded_and_found_within_the_bound():
    machine = machine_with_adapter()
    for index in range(RETIRED_MEMORY + 10):
        calculate(machine, index)
    assert len(machine.calculations) == RETIRED_MEMORY
    assert machine.calculation(ADAPTER, VA, 0x1000) is None
    assert machine.calculation(ADAPTER, VA + 10 * 0x1000, 0x1000).size == 0x80


# --- freed MDLs, common buffers, pool blocks -------------------------------------------------------


def allocate_and_free_mdl(machine: Machine, address: int) -> None:
    machine.apply(call("IoAllocateMdl", ("VirtualAddress", VA), ("Length", 0x1000), ("SecondaryBuffer", False),
                       ("ChargeQuota", False), ("Irp", NULL), result=address))
    machine.apply(call("IoFreeMdl", ("Mdl", address)))


def test_freed_mdls_are_bounded_and_a_double_free_found_within_the_bound():
    machine = Machine()
    for index in range(RETIRED_MEMORY + 10):
        allocate_and_free_mdl(machine, 0xD000000 + index * 0x100)
    assert len(machine.freed_mdls) == RETIRED_MEMORY
    assert machine.apply(call("IoFreeMdl", ("Mdl", 0xD000000))).fact("mdl-freed-before") is None
    assert machine.apply(call("IoFreeMdl", ("Mdl", 0xD000000 + 10 * 0x100))).fact("mdl-freed-before").freed_at == HERE


def test_freed_common_buffers_are_bounded_and_a_double_free_found_within_the_bound():
    machine = machine_with_adapter()
    for index in range(RETIRED_MEMORY + 10):
        va = 0xC0000000 + index * 0x1000
        machine.apply(call("AllocateCommonBuffer", ("DmaAdapter", ADAPTER), ("Length", 0x1000),
                           ("LogicalAddress", 0x80000000 + index * 0x1000), ("CacheEnabled", False), result=va,
                           context=AT_PASSIVE))
        machine.apply(call("FreeCommonBuffer", ("DmaAdapter", ADAPTER), ("Length", 0x1000),
                           ("LogicalAddress", 0x80000000 + index * 0x1000), ("VirtualAddress", va), ("CacheEnabled", False),
                           context=AT_PASSIVE))
    assert len(machine.adapter_ddis.freed_common_buffers) == RETIRED_MEMORY
    free_again = call("FreeCommonBuffer", ("DmaAdapter", ADAPTER), ("VirtualAddress", 0xC0000000 + 10 * 0x1000))
    assert machine.apply(free_again).fact("common-buffer-freed-before").va == 0xC0000000 + 10 * 0x1000


def allocate_and_free_block(machine: Machine, address: int) -> None:
    machine.apply(call("ExAllocatePool2", ("Flags", Symbol("POOL_FLAG_NON_PAGED")), ("NumberOfBytes", 0x100),
                       ("Tag", 0x41424344), result=address, context=AT_PASSIVE))
    machine.apply(call("ExFreePoolWithTag", ("P", address), ("Tag", 0x41424344), context=AT_PASSIVE))


def test_freed_blocks_are_bounded_and_found_within_the_bound():
    machine = Machine()
    for index in range(FREED_MEMORY + 10):
        allocate_and_free_block(machine, 0xFFFFB00000000000 + index * 0x1000)
    assert len(machine.pool._freed) == FREED_MEMORY and len(machine.pool._freed_ranges) == FREED_MEMORY
    oldest, kept = 0xFFFFB00000000000, 0xFFFFB00000000000 + 10 * 0x1000
    assert machine.freed_block_in(oldest) is None
    read = machine.apply(MemAccess(location=HERE, context=AT_PASSIVE, access="read", address=kept + 8, length=8))
    assert read.fact("freed-block").address == kept and machine.freed_block_in(kept + 8, 8).address == kept
    again = machine.apply(call("ExFreePoolWithTag", ("P", kept), ("Tag", 0x41424344), context=AT_PASSIVE))
    assert again.fact("block-freed-before").address == kept


# --- levels KeRaiseIrql saved ------------------------------------------------------------------


def test_raised_levels_are_bounded_and_the_innermost_kept():
    machine = Machine()
    raise_ = call("KeRaiseIrql", ("NewIrql", DISPATCH_LEVEL), ("OldIrql", 0x1000), context=Context(cpu=0))
    for _ in range(RAISED_LEVELS + 10):
        machine.apply(raise_)
    cpu = machine.cpu(0)
    assert len(cpu.raised) == len(cpu.raised_at) == RAISED_LEVELS
    lower = machine.apply(call("KeLowerIrql", ("NewIrql", DISPATCH_LEVEL), context=Context(cpu=0)))
    assert lower.fact("raised-at") == HERE and lower.fact("restores-other-irql") is None
