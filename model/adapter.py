"""DMA adapters: what the device can address and how many map registers a transfer may use."""

from __future__ import annotations

from dataclasses import dataclass

from .location import SourceLocation
from .values import Struct, Symbol, Value, as_int

__all__ = ["ALLOCATION_ACTIONS", "Adapter", "AllocationAction", "adapter_from_description", "allocation_action", "VERSIONS"]

VERSIONS = {
    "DEVICE_DESCRIPTION_VERSION": 0,
    "DEVICE_DESCRIPTION_VERSION1": 1,
    "DEVICE_DESCRIPTION_VERSION2": 2,
    "DEVICE_DESCRIPTION_VERSION3": 3,
}


@dataclass(frozen=True, slots=True)
class Adapter:
    """A DMA adapter: from IoGetDmaAdapter, or declared by `@adapter storport|wdm`.

    `address_width` bits give the highest address the device reaches without map registers
    (`limit`); `map_registers` is the most one transfer may use (IoGetDmaAdapter's
    NumberOfMapRegisters); `version` the DEVICE_DESCRIPTION version (None: not known).
    """

    address: int | None
    kind: str
    version: int | None
    master: bool
    scatter_gather: bool
    address_width: int
    maximum_length: int | None
    map_registers: int | None
    alignment: int
    created_at: SourceLocation
    put_at: SourceLocation | None = None

    @property
    def limit(self) -> int:
        """The highest bus address the device can reach directly."""
        return (1 << self.address_width) - 1

    @property
    def live(self) -> bool:
        return self.put_at is None


# IO_ALLOCATION_ACTION (wdm.h): what an AdapterControl routine returns.
# https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_io_allocation_action
ALLOCATION_ACTIONS = {1: "KeepObject", 2: "DeallocateObject", 3: "DeallocateObjectKeepRegisters"}


def allocation_action(value: Value | None) -> str | None:
    """The IO_ALLOCATION_ACTION a `done AdapterControl -> value` names (by name or number), or None."""
    if isinstance(value, Symbol):
        return value.name if value.name in ALLOCATION_ACTIONS.values() else None
    number = as_int(value)
    return ALLOCATION_ACTIONS.get(number) if number is not None else None


@dataclass(frozen=True, slots=True)
class AllocationAction:
    """What the AdapterControl routine of an adapter's last channel returned: `name` is an
    IO_ALLOCATION_ACTION; `assumed` when the trace did not say (`done` without a value) and the
    model took the documented convention; `at` is the routine's `done`."""

    adapter: int
    name: str
    assumed: bool
    at: SourceLocation


def _flag(description: Struct, name: str) -> bool | None:
    value = description.get(name)
    return value if isinstance(value, bool) else None


def _version(value: Value | None) -> int | None:
    if isinstance(value, Symbol):
        return VERSIONS.get(value.name)
    return as_int(value)


def adapter_from_description(
    address: int, description: Value | None, map_registers: int | None, location: SourceLocation
) -> Adapter:
    """The adapter IoGetDmaAdapter returns for a DEVICE_DESCRIPTION (wdm.h rules of section 4:
    DmaAddressWidth for version 3, else Dma64BitAddresses, else 32 bits for a bus master)."""
    fields = description if isinstance(description, Struct) else Struct(())
    version = _version(fields.get("Version"))
    width = as_int(fields.get("DmaAddressWidth")) if version == 3 else None
    if not width:
        width = 64 if _flag(fields, "Dma64BitAddresses") else 32
    master = _flag(fields, "Master")
    scatter_gather = _flag(fields, "ScatterGather")
    return Adapter(
        address=address,
        kind="wdm",
        version=version,
        master=True if master is None else master,
        scatter_gather=True if scatter_gather is None else scatter_gather,
        address_width=min(max(width, 1), 64),
        maximum_length=as_int(fields.get("MaximumLength")),
        map_registers=map_registers,
        alignment=1,
        created_at=location,
    )
