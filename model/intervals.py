"""An ordered map of non-overlapping address ranges: O(log n) lookup of the range holding an address."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["IntervalMap"]

T = TypeVar("T")


class IntervalMap(Generic[T]):
    """Ranges [start, start + length) with a value each; inserting one drops those it overlaps."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._items: dict[int, tuple[int, T]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return (self._items[start][1] for start in self._starts)

    def insert(self, start: int, length: int, value: T) -> list[T]:
        """Add a range; returns the values of the ranges it replaced."""
        end = start + max(length, 1)
        starts = self._starts
        index = bisect_right(starts, start)
        # the ranges do not overlap: only the one before `start` and the first after can reach it
        if (index and self._items[starts[index - 1]][0] > start) or (index < len(starts) and starts[index] < end):
            dropped = [self.pop(s) for s in [s for s, _ in self.overlapping(start, end - start)]]
            insort(starts, start)
        else:
            dropped = []
            starts.insert(index, start)
        self._items[start] = (end, value)
        return [value for value in dropped if value is not None]

    def pop(self, start: int) -> T | None:
        item = self._items.pop(start, None)
        if item is None:
            return None
        index = bisect_right(self._starts, start) - 1
        del self._starts[index]
        return item[1]

    def at(self, start: int) -> T | None:
        """The value of the range that starts exactly at `start`."""
        item = self._items.get(start)
        return None if item is None else item[1]

    def containing(self, address: int) -> T | None:
        """The value of the range holding `address`, or None."""
        index = bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        start = self._starts[index]
        end, value = self._items[start]
        return value if address < end else None

    def overlapping(self, start: int, length: int) -> list[tuple[int, T]]:
        """(start, value) of every range that shares a byte with [start, start + length)."""
        end = start + max(length, 1)
        index = max(bisect_right(self._starts, start) - 1, 0)
        found = []
        while index < len(self._starts) and self._starts[index] < end:
            begin = self._starts[index]
            stop, value = self._items[begin]
            if stop > start:
                found.append((begin, value))
            index += 1
        return found
