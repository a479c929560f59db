"""Status codes the DMA DDIs return (ntstatus.h, storport.h), by name and by value."""

from __future__ import annotations

from .values import NULL, Symbol, Value

__all__ = ["NAMES", "VALUES", "is_success", "status_name", "status_symbol"]

VALUES: dict[str, int] = {
    "STATUS_SUCCESS": 0x00000000,
    "STATUS_UNSUCCESSFUL": 0xC0000001,
    "STATUS_NOT_IMPLEMENTED": 0xC0000002,
    "STATUS_INVALID_PARAMETER": 0xC000000D,
    "STATUS_BUFFER_TOO_SMALL": 0xC0000023,
    "STATUS_INSUFFICIENT_RESOURCES": 0xC000009A,
    "STATUS_NOT_SUPPORTED": 0xC00000BB,
    "STATUS_NONE_MAPPED": 0xC0000073,
    "STOR_STATUS_SUCCESS": 0x00000000,
    "STOR_STATUS_UNSUCCESSFUL": 0xC1000001,
    "STOR_STATUS_NOT_IMPLEMENTED": 0xC1000002,
    "STOR_STATUS_INSUFFICIENT_RESOURCES": 0xC1000003,
    "STOR_STATUS_BUFFER_TOO_SMALL": 0xC1000004,
    "STOR_STATUS_ACCESS_DENIED": 0xC1000005,
    "STOR_STATUS_INVALID_PARAMETER": 0xC1000006,
    "STOR_STATUS_INVALID_DEVICE_REQUEST": 0xC1000007,
    "STOR_STATUS_INVALID_IRQL": 0xC1000008,
    "STOR_STATUS_INVALID_DEVICE_STATE": 0xC1000009,
    "STOR_STATUS_INVALID_BUFFER_SIZE": 0xC100000A,
    "STOR_STATUS_UNSUPPORTED_VERSION": 0xC100000B,
    "STOR_STATUS_BUSY": 0xC100000C,
}
NAMES: dict[int, str] = {}
for _name, _value in VALUES.items():
    NAMES.setdefault(_value, _name)


def is_success(value: Value | None) -> bool:
    """Did a DDI with this captured NTSTATUS / STOR_STATUS return succeed? No value logged
    counts as success: a call logged without its return value takes effect."""
    if value is None or value is True:
        return True
    if isinstance(value, Symbol):
        number = VALUES.get(value.name)
        if number is not None:
            return number < 0x80000000
        return value.name.endswith("_SUCCESS") or value.name == "STATUS_PENDING"
    if value is NULL or value is False:
        return False
    if isinstance(value, int):
        return value < 0x80000000
    return False


def status_name(value: int, storport: bool = False) -> str:
    """The symbolic name of a status value (STOR_STATUS_* when `storport`)."""
    prefix = "STOR_STATUS_" if storport else "STATUS_"
    for name, number in VALUES.items():
        if number == value and name.startswith(prefix):
            return name
    return NAMES.get(value, f"{value:#010x}")


def status_symbol(name: str) -> Symbol:
    return Symbol(name)
