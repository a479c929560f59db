"""DMA adapters: what the device can address and how many map registers a transfer may use."""

from __future__ import annotations

from dataclasses import dataclass

from .location import SourceLocation
from .values import Struct, Symbol, Value, as_int

__all__ = ["Adapter", "adapter_from_description", "VERSIONS"]

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
