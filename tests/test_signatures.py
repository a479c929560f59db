"""The DDI parameter table covers the catalogue and the format page, and is well formed."""

import re

import pytest

from checker.errors import ResourceError
from checker.reading.signatures import load_signatures, signatures

from .helpers import ROOT, format_examples, parse_line

# Every DDI and system-run routine that ../shared/rule-catalogue.md names (version 1).
CATALOGUE_DDIS = """
GetScatterGatherList BuildScatterGatherList PutScatterGatherList CalculateScatterGatherList
AllocateAdapterChannel FreeAdapterChannel FreeMapRegisters MapTransfer FlushAdapterBuffers
KeAcquireSpinLockAtDpcLevel KeReleaseSpinLockFromDpcLevel KeReleaseSpinLock KeAcquireSpinLock
KeAcquireInStackQueuedSpinLock KeRaiseIrql KeLowerIrql IoStartNextPacket IoGetDmaAdapter
PutDmaAdapter AllocateCommonBuffer AllocateCommonBufferEx FreeCommonBuffer GetDmaAlignment
MmProbeAndLockPages MmUnlockPages MmAllocatePagesForMdl MmAllocatePagesForMdlEx
MmBuildMdlForNonPagedPool IoAllocateMdl IoFreeMdl
ExAllocatePool ExAllocatePoolWithTag ExAllocatePoolWithQuota ExAllocatePoolWithQuotaTag
ExAllocatePoolWithTagPriority ExAllocatePool2 ExAllocatePool3 ExFreePool ExFreePoolWithTag
StorPortBuildScatterGatherList StorPortPutScatterGatherList StorPortAllocatePool StorPortFreePool
StorPortAllocateMdl StorPortFreeMdl StorPortBuildMdlForNonPagedPool StorPortGetSystemAddress
StorPortAllocateContiguousMemorySpecifyCacheNode StorPortAcquireSpinLock
AdapterListControl AdapterControl HwStorStartIo HwStorBuildIo
""".split()


@pytest.mark.parametrize("name", CATALOGUE_DDIS)
def test_catalogue_ddi_is_in_the_table(name):
    assert name in signatures()


def test_every_call_in_the_format_example_is_in_the_table():
    names = set()
    for line in format_examples(ROOT / "docs" / "trace-format.md"):
        match = re.search(r"\b(?:call|enter|callback) (\w+)\(", line)
        if match:
            names.add(match.group(1))
    assert names and names <= set(signatures())


def test_named_arguments_of_the_example_match_the_documented_names():
    for line in format_examples(ROOT / "docs" / "trace-format.md"):
        record = parse_line(line)
        signature = signatures().get(getattr(record, "name", None) or "")
        if signature is None or not hasattr(record, "arguments"):
            continue
        assert [a.name for a in record.arguments] == list(signature.params[: len(record.arguments)]), line


def test_out_parameters_are_parameters():
    for signature in signatures().values():
        assert signature.out <= set(signature.params)
        assert signature.kind in ("ddi", "routine", "macro")


def test_broken_table_is_a_resource_error_naming_the_entry(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("Foo:\n  params: [A]\n  out: [B]\n")
    with pytest.raises(ResourceError, match="Foo"):
        load_signatures(path)
    path.write_text("Foo: {}\n")
    with pytest.raises(ResourceError, match="params"):
        load_signatures(path)
