"""The reference model on worked examples: lists, bounce data, pool, MDLs, adapters, IRQL."""

import dataclasses
import inspect
import textwrap

import numpy as np
import pytest

from model.adapter import adapter_from_description
from model.effects import Effects
from model.events import SgElement
from model.frozen import fast_init
from model.irql import APC_LEVEL, DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL
from model.location import SourceLocation
from model.machine import Machine
from model.memory import AddressSpace, PhysicalMemory
from model.platform import Target
from model.values import Struct, Symbol

from .helpers import ROOT, TRACES, format_examples, parse_line

HERE = SourceLocation("t", 1)


def replay(text: str, machine: Machine | None = None):
    """The machine after the trace, and each event's Effects in order."""
    machine = machine or Machine()
    effects = []
    for number, line in enumerate(textwrap.dedent(text).strip().splitlines(), start=1):
        record = parse_line(line.strip(), number) if line.strip() else None
        if record is not None:
            effects.append(machine.apply(record))
    return machine, effects


def format_example(*, dma64: bool):
    page = ROOT / "docs" / "trace-format.md"
    example = page.read_text(encoding="utf-8").partition("## What captures added to version 1")[0]
    lines = [line for line in format_examples(page, example) if not line.startswith("#")]
    trace = "\n".join(lines[:-1])  # without the tracefmt variant of the put
    if dma64:
        trace = trace.replace("Dma32BitAddresses=TRUE, Dma64BitAddresses=FALSE", "Dma32BitAddresses=FALSE, Dma64BitAddresses=TRUE")
        trace = trace.replace("0x7f000000", "0x2a0001000")
    return trace


def effects_of(effects, verb, name=None):
    return [e for e in effects if getattr(e.record, "verb", None) == verb and (name is None or getattr(e.record, "name", None) == name)]


# --- the worked examples of the issue ---------------------------------------------------------


def test_format_example_with_32bit_adapter_bounces_the_two_high_pages():
    machine, effects = replay(format_example(dma64=False))
    (build,) = effects_of(effects, "enter", "BuildScatterGatherList")
    result = build.fact("build")
    assert result.map_registers == 3
    assert [e.length for e in result.elements] == [0x1000, 0x2000]
    assert result.elements[0] == SgElement(0x0A340000, 0x1000)
    assert [s.bounced for s in result.segments] == [False, True]
    assert result.elements[1].address < 1 << 32  # map registers sit where a 32-bit device reaches
    assert result.status == "STATUS_SUCCESS" and result.bytes_needed == 16 + 24 * 2
    (sgl,) = effects_of(effects, "sgl")
    assert sgl.fact("sgl-differs") is None  # the capture agrees with the model


def test_format_example_with_64bit_adapter_builds_two_direct_elements():
    machine, effects = replay(format_example(dma64=True))
    (build,) = effects_of(effects, "enter", "BuildScatterGatherList")
    assert build.fact("build").elements == (SgElement(0x0A340000, 0x1000), SgElement(0x2A0001000, 0x2000))
    assert build.fact("build").bounced_bytes == 0


def test_format_example_facts_for_the_rules():
    machine, effects = replay(format_example(dma64=False))
    (read,) = effects_of(effects, "mem")
    (live,) = read.fact("live-lists")
    assert live.ddi == "BuildScatterGatherList" and live.built_at.line == 10
    frees = effects_of(effects, "call", "ExFreePoolWithTag")
    assert frees[0].released and frees[0].fact("block-freed-before") is None
    double = frees[1].fact("block-freed-before")
    assert double is not None and double.freed_at.line == frees[0].record.location.line
    assert machine.live_sgls() == ()


def test_bounced_read_reaches_the_cpu_only_at_put():
    machine, effects = replay(format_example(dma64=False))
    # after the whole trace the list was put: the device's bytes are in the buffer
    va = 0xFFFFB00012340000
    assert machine.cpu_view(va, 4) == b"\xab" * 4  # direct page, written in place
    assert machine.cpu_view(va + 0x1000, 4) == b"\xcd" * 4  # bounced, copied back at the put
    # replay up to just before the put: the bounced bytes are only in the map registers
    lines = format_example(dma64=False).splitlines()
    put_index = next(i for i, line in enumerate(lines) if "call PutScatterGatherList" in line)
    before, _ = replay("\n".join(lines[:put_index]))
    assert before.cpu_view(va + 0x1000, 4) == b"\x00" * 4
    assert before.device_view(va + 0x1000, 4) == b"\xcd" * 4
    assert before.cpu_view(va, 4) == b"\xab" * 4


def test_write_to_device_copies_the_driver_bytes_into_map_registers():
    machine, effects = replay(
        """
        @adapter wdm address=0xa0 dma64=FALSE map_registers=8
        cpu=0 irql=DISPATCH call IoAllocateMdl(VirtualAddress=0x10000, Length=0x2000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x2000 pfns=[0x200000, 0x200001]
        cpu=0 irql=DISPATCH dma write 0x200000000 0x2000 fill=0x5a
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x2000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=TRUE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS
        """
    )
    sgl = machine.sgl_at(0xB000)
    (segment,) = sgl.segments
    assert segment.bounced and segment.length == 0x2000  # two high pages, one run of map registers
    assert machine.bounce_memory.read(segment.bus, 0x2000) == b"\x5a" * 0x2000


def test_captured_bounce_addresses_are_adopted_for_device_accesses():
    machine, effects = replay(format_example(dma64=False))
    (dma_high,) = [e for e in effects_of(effects, "dma") if e.record.address == 0x7F000000]
    (piece,) = dma_high.accesses
    assert piece.state == "live" and machine.owner(piece.entry).ddi == "BuildScatterGatherList"


def test_device_access_after_put_resolves_to_the_put_list():
    machine, effects = replay(format_example(dma64=True) + "\ncpu=1 dma write 0x0a340010 0x10 fill=0x1\ncpu=1 dma read 0x5000 0x10")
    late, stray = effects_of(effects, "dma")[-2:]
    (piece,) = late.accesses
    assert piece.state == "retired" and machine.owner(piece.entry).put_at is not None
    assert [p.state for p in stray.accesses] == ["unmapped"]


# --- building lists -----------------------------------------------------------------------


def _adapter(**description):
    fields = {"Version": Symbol("DEVICE_DESCRIPTION_VERSION2"), "Master": True, "ScatterGather": True, **description}
    return Struct(tuple(fields.items()))


@pytest.mark.parametrize(
    "description, width",
    [
        (dict(Dma64BitAddresses=True), 64),
        (dict(Dma32BitAddresses=True, Dma64BitAddresses=False), 32),
        (dict(), 32),
        (dict(Version=Symbol("DEVICE_DESCRIPTION_VERSION3"), DmaAddressWidth=36), 36),
        (dict(Version=Symbol("DEVICE_DESCRIPTION_VERSION3"), DmaAddressWidth=48, Dma64BitAddresses=False), 48),
    ],
)
def test_adapter_reach(description, width):
    adapter = adapter_from_description(0xA0, _adapter(**description), 17, HERE)
    assert adapter.address_width == width and adapter.limit == (1 << width) - 1 and adapter.map_registers == 17


LIST_TRACE = """
@adapter wdm address=0xa0 dma64={dma64} map_registers={registers} scatter_gather={sg}
cpu=0 irql=DISPATCH call IoAllocateMdl(VirtualAddress={va}, Length={length}, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
cpu=0 irql=DISPATCH mdl 0xd0 va={va} offset={offset} bytes={length} pfns={pfns}
cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa={va}, Length={length}, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength={buffer})
"""


def build_of(pfns, va=0x10000, length=None, dma64="TRUE", registers=33, sg="TRUE", buffer=0x1000):
    length = length if length is not None else 0x1000 * len(pfns) - (va & 0xFFF)
    text = LIST_TRACE.format(dma64=dma64, registers=registers, sg=sg, va=hex(va), length=hex(length), offset=hex(va & 0xFFF),
                             pfns="[" + ", ".join(hex(p) for p in pfns) + "]", buffer=hex(buffer))
    machine, effects = replay(text)
    return effects[-1].fact("build")


def test_contiguous_ascending_pages_coalesce():
    build = build_of([0x100, 0x101, 0x102, 0x200, 0x1FF])
    assert build.elements == (SgElement(0x100000, 0x3000), SgElement(0x200000, 0x1000), SgElement(0x1FF000, 0x1000))


def test_offset_into_the_first_page_is_kept():
    build = build_of([0x100, 0x101], va=0x10200, length=0x1800)
    assert build.elements == (SgElement(0x100200, 0x1800),)
    assert build.map_registers == 2


def test_device_without_scatter_gather_bounces_everything_into_one_element():
    build = build_of([0x100, 0x300, 0x200], sg="FALSE")
    assert len(build.segments) == 1 and build.segments[0].bounced and build.segments[0].length == 0x3000


def test_mixed_low_and_high_pages_on_a_32bit_device():
    build = build_of([0x100, 0x100001, 0x100005, 0x101], dma64="FALSE")
    assert [(s.bounced, s.length) for s in build.segments] == [(False, 0x1000), (True, 0x2000), (False, 0x1000)]


@pytest.mark.parametrize(
    "pages, registers, buffer, status",
    [
        (4, 4, 0x1000, "STATUS_SUCCESS"),
        (5, 4, 0x1000, "STATUS_INSUFFICIENT_RESOURCES"),
        (2, 4, 16 + 24 * 2, "STATUS_SUCCESS"),
        (2, 4, 16 + 24 * 2 - 1, "STATUS_BUFFER_TOO_SMALL"),
    ],
)
def test_status_the_real_routine_would_return(pages, registers, buffer, status):
    build = build_of([0x100 + 2 * i for i in range(pages)], registers=registers, buffer=buffer)
    assert build.status == status


def test_range_outside_the_mdl_is_reported():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH call IoAllocateMdl(VirtualAddress=0x10000, Length=0x1000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
        cpu=0 irql=DISPATCH call MmBuildMdlForNonPagedPool(MemoryDescriptorList=0xd0)
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10800, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        """
    )
    assert "past the end of the MDL chain" in effects[-1].fact("outside-mdl")


def test_mdl_chain_is_walked():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10800 offset=0x800 bytes=0x800 pfns=[0x100] next=0xd1
        cpu=0 irql=DISPATCH mdl 0xd1 va=0x20000 offset=0 bytes=0x1000 pfns=[0x101]
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10800, Length=0x1800, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        """
    )
    assert effects[-1].fact("build").elements == (SgElement(0x100800, 0x1800),)


def test_failed_build_creates_no_list_and_put_of_it_names_the_failure():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x8) -> STATUS_BUFFER_TOO_SMALL
        cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
        """
    )
    assert effects[1].fact("failed") == Symbol("STATUS_BUFFER_TOO_SMALL") and machine.live_sgls() == ()
    failed = effects[2].fact("list-failed")
    assert effects[2].fact("list-unknown") is None and failed.status == "STATUS_BUFFER_TOO_SMALL" and failed.built_at.line == 2


def test_double_put_and_reused_buffer():
    trace = """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=TRUE)
        cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
    """
    machine, effects = replay(trace)
    assert effects[2].fact("buffer-live").built_at.line == 2
    assert effects[3].fact("put-direction") is True and effects[3].released[0].write_to_device is False
    assert effects[4].fact("list-put-before").put_at.line == 4
    assert len(machine.live_sgls()) == 1  # the first list was never put


def test_get_scatter_gather_list_takes_its_pointer_from_the_callback():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        cpu=0 irql=DISPATCH enter GetScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE)
        cpu=0 irql=DISPATCH callback AdapterListControl(DeviceObject=0x1, Irp=NULL, ScatterGather=0xc000, Context=0x3)
        cpu=0 irql=DISPATCH done AdapterListControl
        cpu=0 irql=DISPATCH leave GetScatterGatherList -> STATUS_SUCCESS
        cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xc000, WriteToDevice=FALSE)
        """
    )
    assert effects[-1].released and machine.live_sgls() == ()


def test_a_queued_get_routine_runs_later_on_another_cpu_and_binds_its_list():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        cpu=0 irql=DISPATCH enter GetScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE)
        cpu=0 irql=DISPATCH leave GetScatterGatherList -> STATUS_SUCCESS
        cpu=1 irql=DISPATCH callback AdapterListControl(DeviceObject=0x1, Irp=NULL, ScatterGather=0xc000, Context=0x3)
        """
    )
    deferred = effects[-1].fact("deferred-routine")
    assert (deferred.ddi, deferred.entered_at.line, deferred.left_at.line) == ("GetScatterGatherList", 2, 3)
    assert machine.open_routine(1).runs_for == "GetScatterGatherList"
    machine, effects = replay(
        """
        cpu=1 irql=DISPATCH done AdapterListControl
        cpu=1 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xc000, WriteToDevice=FALSE)
        """,
        machine,
    )
    assert effects[-1].released and machine.live_sgls() == () and machine.deferred_routines == {}


def test_a_routine_that_ran_inside_its_ddi_is_not_waited_for():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        cpu=0 irql=DISPATCH enter BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xc000, ScatterGatherLength=0x100)
        cpu=0 irql=DISPATCH callback AdapterListControl(DeviceObject=0x1, Irp=NULL, ScatterGather=0xc000, Context=0x3)
        cpu=0 irql=DISPATCH done AdapterListControl
        cpu=0 irql=DISPATCH leave BuildScatterGatherList -> STATUS_SUCCESS
        cpu=0 irql=DISPATCH enter BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x4, WriteToDevice=FALSE, ScatterGatherBuffer=0xd000, ScatterGatherLength=0x100)
        cpu=0 irql=DISPATCH leave BuildScatterGatherList -> STATUS_INSUFFICIENT_RESOURCES
        """
    )
    assert machine.deferred_routines == {}  # one ran inside, the other failed: none is queued


def test_a_queued_adapter_control_decides_the_channel_when_it_returns():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH enter AllocateAdapterChannel(DmaAdapter=0xa0, DeviceObject=0x1, NumberOfMapRegisters=1, ExecutionRoutine=0x2, Context=0x3)
        cpu=0 irql=DISPATCH leave AllocateAdapterChannel -> STATUS_SUCCESS
        cpu=2 irql=DISPATCH callback AdapterControl(DeviceObject=0x1, Irp=NULL, MapRegisterBase=0x77, Context=0x3)
        cpu=2 irql=DISPATCH done AdapterControl -> DeallocateObject
        """
    )
    action = effects[-1].fact("allocation-action")
    assert (action.name, action.assumed, action.adapter) == ("DeallocateObject", False, 0xA0)
    assert machine.channel_opened_at(0xA0) is None


# --- pool, MDLs, common buffers ------------------------------------------------------------


def test_pool_lifecycle_facts():
    machine, effects = replay(
        """
        irql=PASSIVE call ExAllocatePool2(Flags=POOL_FLAG_PAGED, NumberOfBytes=0x100, Tag=0x41414141) -> 0x5000
        call StorPortAllocatePool(HwDeviceExtension=0x1, NumberOfBytes=0x40, Tag=0x42424242, BufferPointer=>0x6000) -> STOR_STATUS_SUCCESS
        mem write 0x5080 0x10
        call ExFreePoolWithTag(P=0x5000, Tag=0x43434343)
        mem read 0x5080 0x10
        call ExFreePool(P=0x6000)
        call ExFreePool(P=0x5000)
        call ExFreePool(P=0x5010)
        """
    )
    allocated = effects[0].created[0]
    assert allocated.paged and allocated.family == "ex" and allocated.tag == 0x41414141
    assert effects[2].fact("pool-block") == allocated
    assert effects[3].fact("free-tag") == 0x43434343 and effects[3].released[0].freed_at.line == 4
    assert effects[4].fact("freed-block").address == 0x5000
    assert effects[5].fact("free-family") == "ex" and effects[5].previous[0].family == "storport"
    assert effects[5].released  # a free by the wrong family still frees
    assert effects[6].fact("block-freed-before").freed_at.line == 4
    assert effects[7].fact("not-allocated") == 0x5010
    assert machine.pool.live_bytes == 0 and machine.live_blocks() == ()


def test_mdl_record_with_wrong_pfn_count_and_binding():
    machine, effects = replay("mdl 0xd0 va=0x10800 offset=0x800 bytes=0x1000 pfns=[0x100]")
    assert effects[0].fact("pfn-count") == (2, 1)
    assert machine.space.bound(0x10) == 0x100


def test_mdl_free_while_mapped_and_twice():
    machine, effects = replay(
        """
        call IoAllocateMdl(VirtualAddress=0x10000, Length=0x1000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
        call MmBuildMdlForNonPagedPool(MemoryDescriptorList=0xd0)
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        call IoFreeMdl(Mdl=0xd0)
        call IoFreeMdl(Mdl=0xd0)
        call MmProbeAndLockPages(MemoryDescriptorList=0xd1, AccessMode=KernelMode, Operation=IoWriteAccess)
        """
    )
    assert effects[1].previous[0].source is None and machine.freed_mdls[0xD0].source == "nonpaged"
    assert effects[3].fact("mdl-live-lists")[0].buffer == 0xB000
    assert effects[4].fact("mdl-freed-before").freed_at.line == 4
    assert effects[5].fact("mdl-unknown") == 0xD1


def test_common_buffer_is_shared_memory_and_must_be_freed_as_allocated():
    machine, effects = replay(
        """
        irql=PASSIVE call IoGetDmaAdapter(PhysicalDeviceObject=0x1, DeviceDescription={Version=DEVICE_DESCRIPTION_VERSION2, Master=TRUE, ScatterGather=TRUE, Dma64BitAddresses=TRUE}, NumberOfMapRegisters=>16) -> 0xa0
        irql=PASSIVE call AllocateCommonBuffer(DmaAdapter=0xa0, Length=0x2000, LogicalAddress=>0x3f000000, CacheEnabled=FALSE) -> 0xffff800000100000
        dma write 0x3f001000 0x4 data=deadbeef
        irql=PASSIVE call FreeCommonBuffer(DmaAdapter=0xa0, Length=0x1000, LogicalAddress=0x3f000000, VirtualAddress=0xffff800000100000, CacheEnabled=FALSE)
        irql=PASSIVE call FreeCommonBuffer(DmaAdapter=0xa0, Length=0x2000, LogicalAddress=0x3f000000, VirtualAddress=0xffff800000100000, CacheEnabled=FALSE)
        dma read 0x3f000000 0x10
        irql=PASSIVE call PutDmaAdapter(DmaAdapter=0xa0)
        irql=PASSIVE call GetDmaAlignment(DmaAdapter=0xa0)
        """
    )
    assert effects[2].accesses[0].state == "live"
    assert machine.cpu_view(0xFFFF800000101000, 4) == bytes.fromhex("deadbeef")  # coherent: the CPU sees it at once
    assert effects[3].fact("common-buffer-mismatch") == (("Length", 0x1000, 0x2000),)
    assert effects[4].fact("common-buffer-freed-before").freed_at.line == 4
    assert effects[5].accesses[0].state == "retired"
    assert effects[7].fact("adapter-put").put_at.line == 7


def test_put_dma_adapter_with_outstanding_list():
    machine, effects = replay(
        """
        irql=PASSIVE call IoGetDmaAdapter(PhysicalDeviceObject=0x1, DeviceDescription={Version=DEVICE_DESCRIPTION_VERSION2, Dma64BitAddresses=TRUE}, NumberOfMapRegisters=>16) -> 0xa0
        mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        irql=PASSIVE call PutDmaAdapter(DmaAdapter=0xa0)
        """
    )
    lists, buffers, channels = effects[-1].fact("outstanding")
    assert [s.buffer for s in lists] == [0xB000] and buffers == () and channels == ()


# --- IRQL and locks ---------------------------------------------------------------------


def test_irql_bookkeeping_without_captured_levels():
    machine, effects = replay(
        """
        cpu=2 irql=PASSIVE call KeAcquireSpinLock(SpinLock=0x90, OldIrql=>PASSIVE_LEVEL)
        cpu=2 call KeAcquireSpinLockAtDpcLevel(SpinLock=0x91)
        cpu=2 call KeReleaseSpinLockFromDpcLevel(SpinLock=0x91)
        cpu=2 call KeReleaseSpinLock(SpinLock=0x90, NewIrql=PASSIVE_LEVEL)
        cpu=2 call KeRaiseIrql(NewIrql=APC_LEVEL, OldIrql=>PASSIVE_LEVEL)
        cpu=2 callback HwStorInterrupt(DeviceExtension=0x1)
        cpu=2 done HwStorInterrupt
        cpu=2 irql=DISPATCH call KeLowerIrql(NewIrql=PASSIVE_LEVEL)
        """
    )
    levels = [e.irql for e in effects]
    assert levels[:5] == [PASSIVE_LEVEL, DISPATCH_LEVEL, DISPATCH_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL]
    assert levels[5] == DIRQL and effects[6].fact("done-irql") == (DIRQL, DIRQL)
    assert effects[7].fact("irql-differs") == APC_LEVEL  # the capture says DISPATCH, the model APC
    assert machine.irql(2) == PASSIVE_LEVEL and machine.held_locks(2) == ()


def test_lock_facts():
    machine, effects = replay(
        """
        irql=PASSIVE call KeAcquireSpinLock(SpinLock=0x90, OldIrql=>PASSIVE_LEVEL)
        call KeAcquireSpinLock(SpinLock=0x90, OldIrql=>DISPATCH_LEVEL)
        call KeReleaseSpinLockFromDpcLevel(SpinLock=0x90)
        call KeReleaseSpinLock(SpinLock=0x92, NewIrql=PASSIVE_LEVEL)
        callback DpcForIsr(Dpc=0x1, DeviceObject=0x2, Irp=NULL, Context=NULL)
        call StorPortAcquireSpinLock(DeviceExtension=0x1, SpinLock=InterruptLock, LockContext=NULL, LockHandle=>0x70)
        done DpcForIsr
        """
    )
    assert effects[1].fact("lock-held").acquired_at.line == 1
    assert effects[2].fact("lock-family") == ("ke", "dpc")
    assert effects[3].fact("lock-not-held") == 0x92
    assert effects[5].irql == DISPATCH_LEVEL and machine.cpu(0).frames == []
    (held,) = effects[6].fact("locks-held-at-done")
    assert held.ddi == "StorPortAcquireSpinLock"


def test_routine_run_by_a_ddi_is_known_by_its_position():
    machine, effects = replay(
        """
        cpu=1 irql=DISPATCH enter StorPortBuildScatterGatherList(HwDeviceExtension=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x10, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherBufferLength=0x100)
        cpu=1 irql=PASSIVE callback MyDmaStarted(DeviceObject=0x1, Irp=NULL, ScatterGather=0xb000, Context=0x3)
        cpu=1 done MyDmaStarted
        cpu=1 irql=DISPATCH leave StorPortBuildScatterGatherList -> STOR_STATUS_SUCCESS
        cpu=1 leave NeverEntered
        """
    )
    assert effects[1].fact("routine-irql") == (DISPATCH_LEVEL, PASSIVE_LEVEL)
    assert machine.cpu(1).frames == [] and effects[4].fact("no-open-enter") == "NeverEntered"
    assert machine.sgl_at(0xB000) is not None


# --- the value classes -----------------------------------------------------------------------


def test_fast_init_keeps_the_frozen_dataclass_contract():
    @dataclasses.dataclass(frozen=True, slots=True)
    class Plain:
        a: int
        b: str = "x"
        c: tuple = ()

    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Fast:
        a: int
        b: str = "x"
        c: tuple = ()

    assert str(inspect.signature(Fast.__init__)) == str(inspect.signature(Plain.__init__))
    assert repr(Fast(1)) == repr(Plain(1)).replace("Plain", "Fast") and Fast(1, c=(2,)) == Fast(1, "x", (2,))
    assert hash(Fast(1)) == hash(Fast(1)) and dataclasses.replace(Fast(1), b="y") == Fast(1, "y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fast(1).a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        fast_init(dataclasses.dataclass(frozen=True)(type("Loose", (), {"__annotations__": {"a": int}})))
    effects = Effects("record", 0)
    assert effects.facts == () and effects.cpu == 0 and effects.irql is None


# --- memory -------------------------------------------------------------------------------


def test_memory_is_sparse_and_byte_exact():
    memory = PhysicalMemory(16 << 30)
    memory.write(0x3FFE, b"\x01\x02\x03\x04")  # across a page boundary
    assert memory.read(0x3FFD, 6) == b"\x00\x01\x02\x03\x04\x00" and memory.pages_touched == 2
    memory.fill(0x400000000 - 2, 2, 0xFF)
    assert memory.read(0x400000000 - 4, 4) == b"\x00\x00\xff\xff"


@pytest.mark.parametrize("layout", ["fragmented", "contiguous", "high"])
def test_layouts_are_deterministic_and_never_share_a_frame(layout):
    def frames(seed):
        space = AddressSpace(PhysicalMemory(16 << 30), layout, seed)
        return [space.pfn(vpn) for vpn in range(0x1000, 0x1040)]

    first = frames(3)
    assert first == frames(3) and len(set(first)) == len(first)
    if layout == "high":
        assert min(first) >= 0x100000
    if layout == "contiguous":
        assert first == list(range(first[0], first[0] + len(first)))


@pytest.mark.parametrize("layout, size, seed", [("fragmented", 16 << 30, 0), ("fragmented", 0x200 << 12, 5),
                                                ("high", 16 << 30, 7), ("high", (1 << 32) + (0x300 << 12), 1)])
def test_layouts_draw_the_frames_one_generator_call_each_would(layout, size, seed):
    """Frames are drawn from numpy in batches: the same frames, in the same order, as a call per
    page (small memories make the layout draw again and again for a free frame)."""
    reserved = range(0x180, 0x190)
    space = AddressSpace(PhysicalMemory(size), layout, seed, reserved=reserved)
    pages = size >> 12
    low, high = (1 << 20, pages) if layout == "high" else (0x100, max(pages, 0x101))
    rng, expected = np.random.default_rng(seed), []
    for _ in range(min(high - low - len(reserved), 600)):
        pfn = int(rng.integers(low, high))
        while pfn in expected or pfn in reserved:
            pfn = int(rng.integers(low, high))
        expected.append(pfn)
    assert [space.pfn(vpn) for vpn in range(len(expected))] == expected


def test_captured_frame_moves_a_page_the_layout_had_given():
    space = AddressSpace(PhysicalMemory(16 << 30), "contiguous")
    taken = space.pfn(0x50)
    space.bind(0x99, taken)  # the capture says another virtual page owns that frame
    assert space.pfn(0x99) == taken and space.pfn(0x50) != taken


def test_target_sizes():
    assert Target("x64").sgl_bytes(3) == 16 + 24 * 3
    assert Target("x86").sgl_bytes(3) == 8 + 16 * 3
    assert Target().span_pages(0x10FFF, 2) == 2


# --- the bundled traces -------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(TRACES.glob("*.trace")), ids=lambda p: p.name)
def test_bundled_trace_replays_and_agrees_with_the_model(path):
    machine, effects = Machine(), []
    from .helpers import read_all

    for item in read_all(path.read_bytes(), path.name):
        if hasattr(item, "location") and type(item).__name__ not in ("Diagnostic",):
            effects.append(machine.apply(item))
    assert not [e.fact("sgl-differs") for e in effects if e.fact("sgl-differs")]
    pieces = [piece for e in effects for piece in e.accesses]
    assert pieces and all(piece.state == "live" for piece in pieces)
    if path.name != "format-example.trace":
        assert machine.live_sgls() == () and machine.live_blocks() == () and machine.live_mdls() == ()
        assert not [e for e in effects if e.fact("irql-differs") or e.fact("routine-irql")]


def test_v1_map_transfer_path_bounces_and_flushes():
    machine, effects = replay(
        """
        cpu=0 irql=PASSIVE call IoGetDmaAdapter(PhysicalDeviceObject=0x1, DeviceDescription={Version=DEVICE_DESCRIPTION_VERSION1, Master=TRUE, ScatterGather=FALSE, Dma32BitAddresses=TRUE}, NumberOfMapRegisters=>4) -> 0xa0
        cpu=0 irql=PASSIVE mdl 0xd0 va=0x10000 offset=0 bytes=0x2000 pfns=[0x200000, 0x300000]
        cpu=0 irql=DISPATCH enter AllocateAdapterChannel(DmaAdapter=0xa0, DeviceObject=0x1, NumberOfMapRegisters=2, ExecutionRoutine=0x2, Context=0x3)
        cpu=0 irql=DISPATCH callback AdapterControl(DeviceObject=0x1, Irp=NULL, MapRegisterBase=0x77, Context=0x3)
        cpu=0 irql=DISPATCH call MapTransfer(DmaAdapter=0xa0, Mdl=0xd0, MapRegisterBase=0x77, CurrentVa=0x10000, Length=0x2000, WriteToDevice=FALSE) -> 0x7f100000
        cpu=0 irql=DISPATCH done AdapterControl
        cpu=0 irql=DISPATCH leave AllocateAdapterChannel -> STATUS_SUCCESS
        cpu=0 irql=DISPATCH call AllocateAdapterChannel(DmaAdapter=0xa0, DeviceObject=0x1, NumberOfMapRegisters=2, ExecutionRoutine=0x2, Context=0x3) -> STATUS_SUCCESS
        dma write 0x7f100000 0x2000 fill=0x66
        cpu=0 irql=DISPATCH call FreeMapRegisters(DmaAdapter=0xa0, MapRegisterBase=0x77, NumberOfMapRegisters=2)
        """
    )
    mapped = effects_of(effects, "call", "MapTransfer")[0].created[0]
    assert mapped.bounced and mapped.length == 0x2000  # no scatter/gather: everything through map registers
    assert effects[5].fact("channel-released-at-return") == 0xA0  # a bus master: DeallocateObjectKeepRegisters
    assert effects_of(effects, "call", "AllocateAdapterChannel")[0].fact("channel-open") is None
    (write,) = effects_of(effects, "dma")
    assert [p.state for p in write.accesses] == ["live"]
    assert machine.cpu_view(0x11000, 4) == b"\x00" * 4  # not flushed yet ...
    assert effects[-1].fact("unflushed")  # ... when the map registers are freed
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH call FlushAdapterBuffers(DmaAdapter=0xa0, Mdl=0xd0, MapRegisterBase=0x77, CurrentVa=0x10000, Length=0x2000, WriteToDevice=FALSE) -> TRUE
        dma read 0x7f100000 0x10
        cpu=0 irql=DISPATCH call FreeAdapterChannel(DmaAdapter=0xa0)
        """,
        machine,
    )
    assert machine.cpu_view(0x11000, 4) == b"\x66" * 4  # FlushAdapterBuffers copied the bounce data back
    assert [p.state for p in effects[1].accesses] == ["retired"]
    assert effects[2].fact("unflushed") is None and machine.channels == {}


def test_build_from_an_mdl_chain_with_a_page_that_is_not_resident():
    machine, effects = replay(
        """
        call IoAllocateMdl(VirtualAddress=0x10000, Length=0x1000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
        call MmBuildMdlForNonPagedPool(MemoryDescriptorList=0xd0)
        call IoAllocateMdl(VirtualAddress=0x20000, Length=0x1000, SecondaryBuffer=TRUE, ChargeQuota=FALSE, Irp=NULL) -> 0xd1
        mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100] next=0xd1
        mdl 0xd1 va=0x20000 offset=0 bytes=0x1000 pfns=[0x101]
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x2000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        call MmProbeAndLockPages(MemoryDescriptorList=0xd1, AccessMode=KernelMode, Operation=IoWriteAccess)
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x2000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xc000, ScatterGatherLength=0x100)
        """
    )
    assert effects[5].fact("mdl-not-resident").address == 0xD1  # the second MDL of the chain was never locked
    assert effects[5].fact("build").elements == (SgElement(0x100000, 0x2000),)
    assert effects[7].fact("mdl-not-resident") is None


def test_a_device_address_leads_back_to_the_pool_block():
    machine, effects = replay(
        """
        call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x1000, Tag=0x41414141) -> 0x10000
        mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x345]
        call ExFreePool(P=0x10000)
        dma write 0x345010 0x10 fill=0x1
        """
    )
    (piece,) = effects[-1].accesses
    va = machine.va_of_physical(piece.start)
    assert va == 0x10010 and machine.pool.freed_containing(va).freed_at.line == 3
    assert machine.va_of_physical(0x999000) is None


def test_build_leave_and_calculation_for_the_sgl_size_rules():
    machine, effects = replay(
        """
        @adapter storport dma64=TRUE map_registers=4
        irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x3000 pfns=[0x100, 0x300, 0x500]
        irql=DISPATCH call CalculateScatterGatherList(DmaAdapter=0xa0, Mdl=0xd0, CurrentVa=0x10000, Length=0x3000, ScatterGatherListSize=>0x80, NumberOfMapRegisters=>3) -> STATUS_SUCCESS
        irql=DISPATCH call CalculateScatterGatherList(DmaAdapter=0xa0, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ScatterGatherListSize=>0x60) -> STATUS_INSUFFICIENT_RESOURCES
        irql=DISPATCH enter BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x3000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x58)
        irql=DISPATCH leave BuildScatterGatherList -> STATUS_SUCCESS
        irql=DISPATCH call StorPortBuildScatterGatherList(HwDeviceExtension=0x5000, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xc000, ScatterGatherBufferLength=0x28) -> STOR_STATUS_SUCCESS
        """
    )
    calculation = machine.calculation(0xA0, 0x10000, 0x3000)
    assert (calculation.size, calculation.map_registers, calculation.calculated_at.line) == (0x80, 3, 3)
    assert machine.calculation(0xA0, 0x10000, 0x1000) is None  # a failed calculation reports nothing
    assert effects[4].fact("build").bytes_needed == 16 + 3 * 24  # the enter reports the build ...
    frame, settled = effects[5].previous  # ... and its leave the list the enter made
    assert frame.kind == "enter" and settled.buffer == 0xB000 and settled.buffer_length == 0x58
    assert settled.built_at.line == 5 and settled.build.bytes_needed == 16 + 3 * 24
    assert machine.storport_dma_adapter().map_registers == 4
    assert Machine().storport_dma_adapter() is None


def test_lower_irql_names_the_raise_it_undoes():
    machine, effects = replay(
        """
        cpu=0 irql=PASSIVE call KeRaiseIrql(NewIrql=APC_LEVEL, OldIrql=>PASSIVE_LEVEL)
        cpu=0 call KeRaiseIrqlToDpcLevel()
        cpu=0 call KeLowerIrql(NewIrql=PASSIVE_LEVEL)
        cpu=0 call KeLowerIrql(NewIrql=PASSIVE_LEVEL)
        cpu=0 call KeLowerIrql(NewIrql=PASSIVE_LEVEL)
        """
    )
    assert effects[2].fact("raised-at").line == 2 and effects[2].fact("restores-other-irql") == (APC_LEVEL, PASSIVE_LEVEL)
    assert effects[3].fact("raised-at").line == 1 and effects[3].fact("restores-other-irql") is None
    assert effects[4].fact("raised-at") is None  # nothing left to undo


def test_spin_locks_are_one_lock_whatever_handle_acquired_them():
    machine, effects = replay(
        """
        cpu=1 irql=DISPATCH call KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock=0x3000, LockHandle=0xf100)
        cpu=1 irql=DISPATCH call KeAcquireInStackQueuedSpinLock(SpinLock=0x3000, LockHandle=0xf140)
        cpu=0 irql=DISPATCH call StorPortAcquireSpinLock(DeviceExtension=0x1, SpinLock=DpcLock, LockContext=0x2, LockHandle=>0xf780)
        cpu=0 irql=DISPATCH call StorPortAcquireSpinLock(DeviceExtension=0x1, SpinLock=DpcLock, LockContext=0x2, LockHandle=>0xf7c0)
        cpu=0 irql=DISPATCH call KeReleaseSpinLock(SpinLock=0x3000, NewIrql=DISPATCH_LEVEL)
        """
    )
    assert effects[1].fact("lock-held").acquired_at.line == 1 and effects[1].fact("lock-held").lock == 0x3000
    held = effects[3].fact("lock-held")
    assert held.lock == "DpcLock" and held.acquired_at.line == 3
    assert effects[3].fact("storport-locks-held") == ("DpcLock",)
    assert effects[4].fact("lock-not-held") == 0x3000  # the queued lock is held on CPU 1, not 0
    machine, effects = replay("cpu=1 irql=DISPATCH call KeReleaseSpinLock(SpinLock=0x3000, NewIrql=DISPATCH_LEVEL)", machine)
    assert effects[0].fact("lock-family") == ("queued", "ke") and effects[0].released[0].released_at.line == 1


def test_a_second_release_finds_the_first():
    machine, effects = replay(
        """
        cpu=0 irql=PASSIVE call KeAcquireSpinLock(SpinLock=0x1000, OldIrql=>PASSIVE_LEVEL)
        cpu=0 irql=DISPATCH call KeReleaseSpinLock(SpinLock=0x1000, NewIrql=PASSIVE_LEVEL)
        cpu=0 irql=PASSIVE call KeReleaseSpinLock(SpinLock=0x1000, NewIrql=PASSIVE_LEVEL)
        cpu=0 irql=DISPATCH call StorPortAcquireSpinLock(DeviceExtension=0x1, SpinLock=InterruptLock, LockContext=NULL, LockHandle=>0xf7a8)
        cpu=0 call StorPortReleaseSpinLock(DeviceExtension=0x1, LockHandle=0xf7a8)
        cpu=0 call StorPortReleaseSpinLock(DeviceExtension=0x1, LockHandle=0xf7a8)
        cpu=1 irql=PASSIVE call KeReleaseSpinLock(SpinLock=0x1000, NewIrql=PASSIVE_LEVEL)
        """
    )
    before = effects[2].fact("lock-released-before")
    assert effects[2].fact("lock-not-held") == 0x1000 and (before.acquired_at.line, before.released_at.line) == (1, 2)
    before = effects[5].fact("lock-released-before")
    assert before.lock == "InterruptLock" and before.released_at.line == 5
    assert machine.irql(0) == DISPATCH_LEVEL  # the release restored the level before the acquire
    assert effects[6].fact("lock-released-before") is None  # another CPU never released it


def test_a_lock_a_routine_leaks_is_reported_at_its_done_only():
    machine, effects = replay(
        """
        cpu=0 irql=DISPATCH callback DpcForIsr(Dpc=0x1, DeviceObject=0x2, Irp=NULL, Context=0x3)
        cpu=0 irql=DISPATCH call KeAcquireSpinLockAtDpcLevel(SpinLock=0x1000)
        cpu=0 irql=DISPATCH done DpcForIsr
        cpu=0 irql=DISPATCH callback StartIo(DeviceObject=0x2, Irp=0x5)
        cpu=0 irql=DISPATCH call KeAcquireSpinLockAtDpcLevel(SpinLock=0x2000)
        cpu=0 irql=DISPATCH done StartIo
        """
    )
    assert [lock.lock for lock in effects[2].fact("locks-held-at-done")] == [0x1000]
    assert [lock.lock for lock in effects[5].fact("locks-held-at-done")] == [0x2000]
    assert [lock.lock for lock in machine.held_locks(0)] == [0x1000, 0x2000]  # both still held


def test_a_leave_acts_on_the_arguments_its_enter_logged():
    machine, effects = replay(
        """
        call ExAllocatePoolWithTag(PoolType=NonPagedPoolNx, NumberOfBytes=0x100, Tag=0x41424344) -> 0x10000
        enter ExFreePoolWithTag(P=0x10000, Tag=0x44434241)
        leave ExFreePoolWithTag
        mdl 0xd0 va=0x20000 offset=0 bytes=0x1000 pfns=[0x100]
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x20000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS
        irql=DISPATCH enter PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
        irql=DISPATCH leave PutScatterGatherList
        """
    )
    assert effects[1].released == () and machine.pool.live_at(0x10000) is None
    assert effects[2].released[0].address == 0x10000 and effects[2].fact("free-tag") == 0x44434241
    assert effects[6].released[0].buffer == 0xB000 and effects[6].fact("list-unknown") is None
    assert machine.live_sgls() == ()


def test_a_put_list_still_owns_its_bus_range_after_its_buffer_is_reused():
    machine, effects = replay(
        """
        mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
        mdl 0xd1 va=0x20000 offset=0 bytes=0x1000 pfns=[0x300]
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS
        irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd1, CurrentVa=0x20000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=TRUE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS
        irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=TRUE)
        dma write 0x100000 0x10 fill=0x1
        """
    )
    (piece,) = effects[-1].accesses
    first = machine.owner(piece.entry)
    assert piece.state == "retired" and first.built_at.line == 3 and first.put_at.line == 4
    assert machine.mapping_direction(piece.entry) == "from-device"


def test_a_device_piece_leads_to_the_driver_address_it_carries():
    machine, effects = replay(
        """
        @adapter wdm address=0xa0 dma64=FALSE
        call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x2000, Tag=0x41414141) -> 0x10000
        mdl 0xd0 va=0x10000 offset=0 bytes=0x2000 pfns=[0x100, 0x200000]
        irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x2000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100) -> STATUS_SUCCESS
        call ExFreePool(P=0x10000)
        dma write 0x100010 0x10 fill=0x1
        call AllocateCommonBuffer(DmaAdapter=0xa0, Length=0x1000, LogicalAddress=>0x3e7c1000, CacheEnabled=FALSE) -> 0xffff5000
        dma read 0x3e7c1800 0x8
        """
    )
    bounced = machine.live_sgls()[0].segments[1]
    assert bounced.bounced and machine.driver_va(machine.resolve_bus_range(bounced.bus + 4, 1)[0].entry, bounced.bus + 4) == 0x11004
    (direct,) = effects[-3].accesses
    assert machine.driver_va(direct.entry, direct.start) == 0x10010
    assert machine.freed_block_in(0x10010, 0x10).freed_at.line == 5 and machine.freed_block_in(0x30000) is None
    (common,) = effects[-1].accesses
    assert machine.driver_va(common.entry, common.start) == 0xFFFF5800


def test_mdl_source_at_and_common_buffer_inside_and_v1_queries():
    machine, effects = replay(
        """
        cpu=0 irql=PASSIVE call IoAllocateMdl(VirtualAddress=0x1f0000, Length=0x1000, SecondaryBuffer=FALSE, ChargeQuota=FALSE, Irp=NULL) -> 0xd0
        cpu=0 irql=PASSIVE call MmProbeAndLockPages(MemoryDescriptorList=0xd0, AccessMode=UserMode, Operation=IoWriteAccess)
        cpu=0 irql=PASSIVE call MmUnlockPages(MemoryDescriptorList=0xd0)
        cpu=0 irql=PASSIVE call MmUnlockPages(MemoryDescriptorList=0xd0)
        cpu=0 irql=PASSIVE call AllocateCommonBuffer(DmaAdapter=0xa0, Length=0x2000, LogicalAddress=>0x1f3a52000, CacheEnabled=FALSE) -> 0xffffd00000400000
        cpu=0 irql=PASSIVE call FreeCommonBuffer(DmaAdapter=0xa0, Length=0x1000, LogicalAddress=0x1f3a53000, VirtualAddress=0xffffd00000401000, CacheEnabled=FALSE)
        cpu=0 irql=DISPATCH enter AllocateAdapterChannel(DmaAdapter=0xa0, DeviceObject=0x1, NumberOfMapRegisters=1, ExecutionRoutine=0x2, Context=0x3)
        cpu=0 irql=DISPATCH callback AdapterControl(DeviceObject=0x1, Irp=NULL, MapRegisterBase=0x77, Context=0x3)
        cpu=0 irql=DISPATCH call MapTransfer(DmaAdapter=0xa0, Mdl=0xd0, MapRegisterBase=0x77, CurrentVa=0x1f0000, Length=0x1000, WriteToDevice=TRUE)
        """
    )
    assert effects[1].previous[0].source_at is None  # never made resident before the lock
    assert machine.mdl(0xD0).source is None and machine.mdl(0xD0).source_at.line == 4  # the last unlock
    assert effects[3].fact("mdl-lock") and effects[3].previous[0].source_at.line == 3  # unlocked twice: the first unlock
    inside = effects[5].fact("common-buffer-inside")
    assert inside.va == 0xFFFFD00000400000 and inside.allocated_at.line == 5
    assert effects[5].fact("common-buffer-unknown") == 0xFFFFD00000401000 and len(machine.live_common_buffers()) == 1
    assert machine.open_enter(0).name == "AllocateAdapterChannel" and machine.open_enter(1) is None
    assert machine.channel_opened_at(0xA0).line == 7 and machine.channel_opened_at(0xB0) is None
    assert machine.transfer_mapped_at((0xA0, 0x77, 0x1F0000)).line == 9 and machine.transfer_mapped_at((0xA0, 0x78, 0)) is None


def test_open_routine_is_the_innermost_callback_on_that_cpu():
    machine, effects = replay(
        """
        cpu=0 callback HwStorInterrupt(DeviceExtension=0x1)
        cpu=1 irql=DISPATCH enter BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
        """
    )
    assert machine.open_routine(0).name == "HwStorInterrupt" and machine.open_routine(0).entry_irql == DIRQL
    assert machine.open_routine(1) is None  # an `enter` is a DDI running, not a driver routine
    machine, effects = replay("cpu=0 done HwStorInterrupt", machine)
    assert machine.open_routine(0) is None
