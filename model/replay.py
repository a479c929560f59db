"""Replaying a trace's records: the machine as the trace has driven it so far.

`Replay.apply` takes records in trace order. The state it keeps is proportional to what is
live (CPUs, open routine frames, declared adapters), never to the events seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import (
    AdapterDirective,
    Callback,
    Done,
    DriverDirective,
    Enter,
    Event,
    Leave,
    MemoryDirective,
    Record,
    TargetDirective,
)
from .irql import Irql
from .location import SourceLocation
from .platform import Target

__all__ = ["CpuState", "Frame", "MemoryConfig", "Replay"]

DEFAULT_CPU = 0


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """`@memory`, with the format's defaults: 16 GiB, fragmented layout, seed 0."""

    size: int = 16 << 30
    layout: str = "fragmented"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """An open `enter` (a DDI still running) or `callback` (a driver routine still running)."""

    kind: str
    name: str
    location: SourceLocation
    irql: Irql | None


@dataclass(slots=True)
class CpuState:
    """One CPU: its current IRQL (None until the trace tells) and its open frames."""

    number: int
    irql: Irql | None = None
    frames: list[Frame] = field(default_factory=list)

    def innermost(self, kind: str, name: str | None = None) -> int | None:
        """Index of the innermost open frame of `kind` (and `name`), or None."""
        for index in range(len(self.frames) - 1, -1, -1):
            frame = self.frames[index]
            if frame.kind == kind and (name is None or frame.name == name):
                return index
        return None


class Replay:
    """The simulated machine, driven record by record."""

    def __init__(self) -> None:
        self.target = Target()
        self.memory = MemoryConfig()
        self.driver: dict[str, object] = {}
        self.declared_adapters: list[AdapterDirective] = []
        self.cpus: dict[int, CpuState] = {}
        self.events = 0

    def cpu(self, number: int) -> CpuState:
        state = self.cpus.get(number)
        if state is None:
            state = self.cpus[number] = CpuState(number)
        return state

    def cpu_of(self, event: Event) -> CpuState:
        """The CPU an event ran on; CPU 0 where the capture does not say."""
        number = event.context.cpu
        return self.cpu(DEFAULT_CPU if number is None else number)

    def apply(self, record: Record) -> None:
        if isinstance(record, Event):
            self._event(record)
        elif isinstance(record, TargetDirective):
            self.target = Target(
                arch=record.arch or self.target.arch,
                page_size=record.page_size or self.target.page_size,
            )
        elif isinstance(record, MemoryDirective):
            default = MemoryConfig()
            self.memory = MemoryConfig(
                size=default.size if record.size is None else record.size,
                layout=record.layout or default.layout,
                seed=default.seed if record.seed is None else record.seed,
            )
        elif isinstance(record, DriverDirective):
            self.driver.update(record.fields)
        elif isinstance(record, AdapterDirective):
            self.declared_adapters.append(record)

    def _event(self, event: Event) -> None:
        self.events += 1
        cpu = self.cpu_of(event)
        if event.context.irql is not None:
            cpu.irql = event.context.irql
        if isinstance(event, (Enter, Callback)):
            kind = "enter" if isinstance(event, Enter) else "callback"
            cpu.frames.append(Frame(kind, event.name, event.location, cpu.irql))
        elif isinstance(event, Leave):
            index = cpu.innermost("enter", event.name)
            if index is not None:
                del cpu.frames[index:]
        elif isinstance(event, Done):
            index = cpu.innermost("callback", event.name)
            if index is not None:
                del cpu.frames[index:]

    def open_frames(self) -> list[Frame]:
        """Frames still open on any CPU, in CPU order then call order."""
        return [frame for number in sorted(self.cpus) for frame in self.cpus[number].frames]
