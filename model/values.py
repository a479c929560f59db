"""The values a trace can carry in arguments, return values and directives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

__all__ = ["NULL", "NullType", "Struct", "Symbol", "Value", "as_bool", "as_int", "symbol_name"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbolic constant as the capture printed it: `STATUS_SUCCESS`, `NonPagedPoolNx`."""

    name: str

    def __str__(self) -> str:
        return self.name


class NullType:
    """The `NULL` pointer: a null value that is still distinct from the number 0 in a trace."""

    __slots__ = ()
    _instance: NullType | None = None

    def __new__(cls) -> NullType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NULL"

    def __bool__(self) -> bool:
        return False

    def __int__(self) -> int:
        return 0

    def __reduce__(self) -> str:
        return "NULL"


NULL = NullType()


@dataclass(frozen=True, slots=True)
class Struct:
    """A structure written `{Field=value, ...}`, fields kept in the order written."""

    fields: tuple[tuple[str, Value], ...]

    def get(self, name: str, default: Value | None = None) -> Value | None:
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def __getitem__(self, name: str) -> Value:
        for key, value in self.fields:
            if key == name:
                return value
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.fields)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.fields)


Value = Union[int, bool, str, Symbol, NullType, Struct, tuple]


def as_int(value: Value | None) -> int | None:
    """The value as an address or size: integers and NULL; None for anything else."""
    if type(value) is int:  # the usual case, first: handlers ask this of most arguments
        return value
    if value is NULL:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def as_bool(value: Value | None) -> bool | None:
    """TRUE/FALSE, or a number read as a BOOLEAN; None for anything else."""
    if isinstance(value, bool):
        return value
    number = as_int(value)
    return None if number is None else bool(number)


def symbol_name(value: Value | None) -> str | None:
    """The name of a symbolic constant, or None for any other value."""
    return value.name if isinstance(value, Symbol) else None
