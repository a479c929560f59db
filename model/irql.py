"""Interrupt request levels, as a trace writes them and as the model compares them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APC_LEVEL",
    "DIRQL",
    "DISPATCH_LEVEL",
    "HIGH_LEVEL",
    "Irql",
    "PASSIVE_LEVEL",
    "irql_of",
]


@dataclass(frozen=True, slots=True, eq=True)
class Irql:
    """An IRQL: a level to order by, and the symbolic name the trace used, if any.

    `DIRQL` names a device level whose number the HAL chooses; it orders above
    DISPATCH_LEVEL and below HIGH_LEVEL. Numbers are kept as numbers, except 0-2, which
    are named (they mean the same on every architecture).
    """

    level: int
    name: str | None = None

    NAMES = {
        "PASSIVE_LEVEL": 0,
        "APC_LEVEL": 1,
        "DISPATCH_LEVEL": 2,
        "DIRQL": 3,
        "HIGH_LEVEL": 31,
    }

    @classmethod
    def from_name(cls, text: str) -> Irql:
        """`PASSIVE`, `PASSIVE_LEVEL`, `DIRQL`, ...; KeyError for anything else."""
        name = text if text in cls.NAMES else f"{text}_LEVEL"
        return cls(cls.NAMES[name], name)

    @classmethod
    def from_number(cls, level: int) -> Irql:
        """A numeric level 0-31; ValueError outside that range."""
        if not 0 <= level <= 31:
            raise ValueError(f"IRQL {level} is outside 0-31")
        return _BY_NUMBER.get(level) or cls(level)

    def __str__(self) -> str:
        return self.name if self.name is not None else str(self.level)

    def __lt__(self, other: Irql) -> bool:
        return self.level < other.level

    def __le__(self, other: Irql) -> bool:
        return self.level <= other.level

    def __gt__(self, other: Irql) -> bool:
        return self.level > other.level

    def __ge__(self, other: Irql) -> bool:
        return self.level >= other.level

    def is_level(self, expected: Irql) -> bool:
        """True if this logged level is `expected`. A capture can only log a number for a
        device level (the HAL chooses it), so any level above DISPATCH_LEVEL and below
        HIGH_LEVEL is DIRQL."""
        if expected.name == "DIRQL":
            return 2 < self.level < 31 and self.name != "HIGH_LEVEL"
        return self == expected


PASSIVE_LEVEL = Irql(0, "PASSIVE_LEVEL")
APC_LEVEL = Irql(1, "APC_LEVEL")
DISPATCH_LEVEL = Irql(2, "DISPATCH_LEVEL")
DIRQL = Irql(3, "DIRQL")
HIGH_LEVEL = Irql(31, "HIGH_LEVEL")
_BY_NUMBER = {0: PASSIVE_LEVEL, 1: APC_LEVEL, 2: DISPATCH_LEVEL}


def irql_of(value: object) -> Irql | None:
    """An IRQL given as a DDI argument (`DISPATCH_LEVEL`, `2`); None if it is not one."""
    name = getattr(value, "name", None)
    if isinstance(name, str):
        try:
            return Irql.from_name(name)
        except KeyError:
            return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 31:
        return Irql.from_number(value)
    return None
