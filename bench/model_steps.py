"""Replay speed of dmalint's reference model (`Machine.apply`) over a long stream of events.

    python bench/model_steps.py [--steps 1000000] [--seed 1] [--in-flight 64]

Generates, in memory and from a seed, the events of a driver at work: requests start on
four CPUs, each allocates nonpaged pool and a list buffer, describes the pool with an MDL
(with an `mdl` record; some pages above 4 GiB), builds a scatter/gather list on a 64-bit
or a 32-bit WDM adapter or StorPort's (enter / callback / `sgl` record / done / leave,
inside StartIo), lets the device write or read each element (`dma`), puts the list in a
DPC, reads the data and frees everything. Up to --in-flight requests are open at once,
their steps interleaved; pool, MDL and list-buffer addresses are reused as a real pool
reuses them, so the live state stays bounded. A few builds are refused (more pages than the
adapter's map registers).

Events are generated in chunks of 10,000 outside the timed region; only `apply` is timed.
Prints events/s after 10k, 100k and N events (and over each stretch between, to judge
linearity; the stream runs a few events past N to finish the requests still open), the
generation time, peak RSS and the machine's state at the end. Before
timing, the first 20,000 events are replayed once on a separate machine with every fact
checked (a valid driver draws only observations); after the run every request has
completed, so no list, MDL or block may be live: a wrong fast run fails loudly. The
machines are shared and noisy: compare rates from the same run, not across runs.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.events import (  # noqa: E402
    AdapterDirective,
    Argument,
    Call,
    Callback,
    Context,
    DmaAccess,
    Done,
    Enter,
    Leave,
    MdlRecord,
    MemAccess,
    SgElement,
    SglRecord,
)
from model.irql import DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL  # noqa: E402
from model.location import SourceLocation  # noqa: E402
from model.machine import Machine  # noqa: E402
from model.values import NULL, Struct, Symbol  # noqa: E402

PAGE = 0x1000
SHIFT = 12
MASK = PAGE - 1
CHUNK = 10_000
CPUS = 4
SLOTS = 512  # pool / MDL / list-buffer slots a request takes and gives back
SLOT_PAGES = 18  # the most pages a data block spans (a refused build's), each slot's VA range 20 pages
CHANNEL_PAGES = 18  # "HAL" map registers per request in flight
HERE = SourceLocation("bench.trace", 1)
OBSERVATIONS = {"build", "done-irql", "put-direction", "free-family", "free-tag", "pool-block", "live-lists"}

PDO, DEVICE, DPC = 0xFFFFE00000100000, 0xFFFFE00000400000, 0xFFFFE00000500000
ROUTINE, LIST_CONTEXT, HW_EXTENSION = 0xFFFFF80000501000, 0xFFFFE00000600000, 0xFFFFE30C4A2B1000
DATA_BASE, SG_BASE, MDL_BASE = 0xFFFFB00000000000, 0xFFFFC00000000000, 0xFFFFE00010000000
HAL_WINDOW = 0x7F800000  # where the "HAL" of the capture puts bounced pages (the model's window, upper half)
TAG = 0x62446246


def a(name: str, value, out: bool = False) -> Argument:
    return Argument(name, value, out)


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    address: int | None  # None: StorPort's
    limit: int
    budget: int

    @property
    def storport(self) -> bool:
        return self.address is None


WDM_64 = AdapterSpec("wdm64", 0xFFFFE00000200000, (1 << 64) - 1, 33)
WDM_32 = AdapterSpec("wdm32", 0xFFFFE00000210000, (1 << 32) - 1, 17)
STORPORT = AdapterSpec("storport", None, (1 << 32) - 1, 17)
ADAPTERS = (WDM_64, WDM_64, WDM_32, STORPORT)  # half the requests on the 64-bit adapter


def setup_records() -> list:
    """The adapters, created before the requests start."""
    records: list = [AdapterDirective(location=HERE, kind="storport", dma64=False, scatter_gather=True,
                                      maximum_length=0x20000, map_registers=STORPORT.budget)]
    for spec in (WDM_64, WDM_32):
        dma64 = spec.limit > (1 << 32)
        description = Struct((("Version", Symbol("DEVICE_DESCRIPTION_VERSION2")), ("Master", True), ("ScatterGather", True),
                              ("Dma32BitAddresses", not dma64), ("Dma64BitAddresses", dma64), ("MaximumLength", 0x20000)))
        records.append(Call(location=HERE, context=Context(cpu=0, irql=PASSIVE_LEVEL), name="IoGetDmaAdapter", arguments=(
            a("PhysicalDeviceObject", PDO), a("DeviceDescription", description), a("NumberOfMapRegisters", spec.budget, out=True)),
            result=spec.address))
    return records


@dataclass
class Request:
    """One I/O in flight: its slot (pool, MDL and list-buffer addresses), transfer and list."""

    slot: int
    channel: int  # which run of "HAL" map registers it may use
    adapter: AdapterSpec
    write: bool
    size: int
    offset: int
    length: int
    refused: bool
    phase: int = 0
    elements: list[tuple[int, int]] = field(default_factory=list)

    @property
    def data(self) -> int:
        return DATA_BASE + self.slot * 20 * PAGE

    @property
    def sg(self) -> int:
        return SG_BASE + self.slot * 0x400

    @property
    def mdl(self) -> int:
        return MDL_BASE + self.slot * 0x100

    @property
    def va(self) -> int:
        return self.data + self.offset


class Driver:
    """Generates the event stream: at each step one open request takes its next step (or a
    new one starts), written as the group of events that step makes."""

    def __init__(self, seed: int, in_flight: int) -> None:
        self.random = random.Random(seed)
        self.in_flight = in_flight
        self.free_slots = list(range(SLOTS))
        self.free_channels = list(range(in_flight))
        self.open: list[Request] = []
        # each slot's pages have fixed frames (nonpaged pool does not move), every frame its own:
        # half the pages continue an ascending run, a third of the rest are above 4 GiB
        self.frames: dict[int, list[int]] = {}
        following = {"low": 0x20000, "high": 0x100000}  # the next free frame of each range
        for slot in range(SLOTS):
            frames: list[int] = []
            kind = "low"
            for _ in range(SLOT_PAGES):
                if not (frames and frames[-1] + 1 == following[kind] and self.random.random() < 0.5):
                    kind = "high" if self.random.random() < 1 / 3 else "low"
                    following[kind] += self.random.randint(1, 40)  # a gap: not contiguous with the last one
                frames.append(following[kind])
                following[kind] += 1
            self.frames[slot] = frames
        assert following["low"] < 0x7F000 and following["high"] < 0x400000  # clear of the map-register window, in 16 GiB
        self.allocations = 0
        self.builds = 0
        self.refused = 0
        self.puts = 0
        self.elements_built = 0
        self.elements_bounced = 0
        self.draining = False

    # --- events ------------------------------------------------------------------------------
    @staticmethod
    def ctx(cpu: int, irql) -> Context:
        return Context(cpu=cpu, irql=irql)

    def steps(self) -> Iterator[list]:
        """Groups of events, until drain() is called and every open request has finished."""
        while True:
            if not self.draining and len(self.open) < self.in_flight and (not self.open or self.random.random() < 0.3):
                request = self.start()
            elif self.open:
                request = self.random.choice(self.open)
            else:
                return
            yield self.step(request)

    def drain(self) -> None:
        self.draining = True

    def start(self) -> Request:
        adapter = self.random.choice(ADAPTERS)
        slot = self.free_slots.pop(self.random.randrange(len(self.free_slots)))
        channel = self.free_channels.pop()
        pages = self.random.choice((1, 1, 2, 2, 3, 4, 4, 8, 16))
        size = pages * PAGE + self.random.choice((0, 0, 0x100, 0x200))
        offset = self.random.choice((0, 0, 0, 0x100))
        length = size - offset
        refused = self.random.random() < 0.01 and adapter is not WDM_64
        if refused:  # one page more than the adapter's map registers: the build is refused
            size = length = (adapter.budget + 1) * PAGE
            offset = 0
        request = Request(slot, channel, adapter, self.random.random() < 0.4, size, offset, length, refused)
        self.open.append(request)
        return request

    def finish(self, request: Request) -> None:
        self.open.remove(request)
        self.free_slots.append(request.slot)
        self.free_channels.append(request.channel)

    def step(self, r: Request) -> list:
        cpu = self.random.randrange(CPUS)
        phase = r.phase
        r.phase += 1
        if phase == 0:
            return self.prepare(r, cpu)
        if phase == 1:
            events = self.build(r, cpu)
            if r.refused:
                r.phase = 3  # no device, no put
            return events
        if phase == 2:
            events = self.device(r, cpu)
            if r.elements:
                r.phase = 2  # one element per step, interleaved with other requests
            return events
        if phase == 3 and not r.refused:
            return self.put(r, cpu)
        self.finish(r)
        return self.teardown(r, cpu)

    def prepare(self, r: Request, cpu: int) -> list:
        passive = self.ctx(cpu, PASSIVE_LEVEL)
        span = ((r.va & MASK) + r.length + MASK) >> SHIFT
        sg_length = 16 + 24 * span
        self.allocations += 2
        first = (r.va >> SHIFT) - (r.data >> SHIFT)
        pfns = tuple(self.frames[r.slot][first : first + span])
        if r.adapter.storport:
            events = [
                Call(location=HERE, context=passive, name="StorPortAllocatePool", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("NumberOfBytes", r.size), a("Tag", TAG), a("BufferPointer", r.data, True)),
                    result=Symbol("STOR_STATUS_SUCCESS")),
                Call(location=HERE, context=passive, name="StorPortAllocatePool", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("NumberOfBytes", sg_length), a("Tag", TAG), a("BufferPointer", r.sg, True)),
                    result=Symbol("STOR_STATUS_SUCCESS")),
                Call(location=HERE, context=passive, name="StorPortAllocateMdl", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("BufferPointer", r.va), a("NumberOfBytes", r.length), a("Mdl", r.mdl, True)),
                    result=Symbol("STOR_STATUS_SUCCESS")),
                Call(location=HERE, context=passive, name="StorPortBuildMdlForNonPagedPool", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("Mdl", r.mdl)), result=Symbol("STOR_STATUS_SUCCESS")),
            ]
        else:
            events = [
                Call(location=HERE, context=passive, name="ExAllocatePool2", arguments=(
                    a("Flags", Symbol("POOL_FLAG_NON_PAGED")), a("NumberOfBytes", r.size), a("Tag", TAG)), result=r.data),
                Call(location=HERE, context=passive, name="ExAllocatePool2", arguments=(
                    a("Flags", Symbol("POOL_FLAG_NON_PAGED")), a("NumberOfBytes", sg_length), a("Tag", TAG)), result=r.sg),
                Call(location=HERE, context=passive, name="IoAllocateMdl", arguments=(
                    a("VirtualAddress", r.va), a("Length", r.length), a("SecondaryBuffer", False), a("ChargeQuota", False),
                    a("Irp", NULL)), result=r.mdl),
                Call(location=HERE, context=passive, name="MmBuildMdlForNonPagedPool", arguments=(a("MemoryDescriptorList", r.mdl),)),
            ]
        events.append(MdlRecord(location=HERE, context=passive, address=r.mdl, va=r.va, offset=r.va & MASK, byte_count=r.length,
                                pfns=pfns))
        if r.write:
            events.append(MemAccess(location=HERE, context=passive, access="write", address=r.va, length=r.length))
        r.elements = self.elements(r, pfns)
        return events

    def elements(self, r: Request, pfns: tuple[int, ...]) -> list[tuple[int, int]]:
        """The list the capture's HAL builds: direct runs of ascending frames, and each run of
        pages above the adapter's reach in consecutive map registers of this request's own
        channel (keeping the byte offset in the page)."""
        out: list[list] = []  # [bus address, length, bounced]
        region = HAL_WINDOW + r.channel * CHANNEL_PAGES * PAGE
        used = 0  # map-register pages of the channel taken by earlier bounced runs
        offset = 0
        while offset < r.length:
            va = r.va + offset
            n = min(r.length - offset, PAGE - (va & MASK))
            phys = (pfns[(va >> SHIFT) - (r.va >> SHIFT)] << SHIFT) | (va & MASK)
            bounced = phys + n - 1 > r.adapter.limit
            last = out[-1] if out else None
            if last is not None and last[2] == bounced and (bounced or last[0] + last[1] == phys):
                last[1] += n
            else:
                if last is not None and last[2]:
                    used += ((last[0] & MASK) + last[1] + MASK) >> SHIFT
                out.append([region + used * PAGE + (va & MASK) if bounced else phys, n, bounced])
            offset += n
        if not r.refused:
            self.elements_built += len(out)
            self.elements_bounced += sum(bounced for _, _, bounced in out)
        return [(address, length) for address, length, _ in out]

    def remaining(self) -> int:
        """The fewest events the open requests can still make (so a stream drained from here
        has at least the events asked for)."""
        total = 0
        for r in self.open:
            if r.refused:  # prepare 5, build 4, teardown 3
                total += (5, 4, 3, 3, 3)[r.phase] if r.phase < 3 else 3
            else:  # prepare 5, build 7, one per element, put 3, teardown 3
                total += sum((5, 7, 0, 3, 3)[r.phase:]) + (len(r.elements) if r.phase >= 1 else 1)
        return total

    def build(self, r: Request, cpu: int) -> list:
        at = self.ctx(cpu, DISPATCH_LEVEL)
        span = ((r.va & MASK) + r.length + MASK) >> SHIFT
        name = "StorPortBuildScatterGatherList" if r.adapter.storport else "BuildScatterGatherList"
        status = ("STOR_STATUS_" if r.adapter.storport else "STATUS_") + ("INSUFFICIENT_RESOURCES" if r.refused else "SUCCESS")
        if r.adapter.storport:
            arguments = (a("HwDeviceExtension", HW_EXTENSION), a("Mdl", r.mdl), a("CurrentVa", r.va), a("Length", r.length),
                         a("ExecutionRoutine", ROUTINE), a("Context", LIST_CONTEXT), a("WriteToDevice", r.write),
                         a("ScatterGatherBuffer", r.sg), a("ScatterGatherBufferLength", 16 + 24 * span))
            routine, started = "HwStorStartIo", "HwDmaStarted"
        else:
            arguments = (a("DmaAdapter", r.adapter.address), a("DeviceObject", DEVICE), a("Mdl", r.mdl), a("CurrentVa", r.va),
                         a("Length", r.length), a("ExecutionRoutine", ROUTINE), a("Context", LIST_CONTEXT),
                         a("WriteToDevice", r.write), a("ScatterGatherBuffer", r.sg), a("ScatterGatherLength", 16 + 24 * span))
            routine, started = "StartIo", "AdapterListControl"
        events = [
            Callback(location=HERE, context=at, name=routine, arguments=(a("DeviceObject", DEVICE), a("Irp", NULL))),
            Enter(location=HERE, context=at, name=name, arguments=arguments),
        ]
        if not r.refused:
            self.builds += 1
            events += [
                Callback(location=HERE, context=at, name=started, arguments=(
                    a("DeviceObject", DEVICE), a("Irp", NULL), a("ScatterGather", r.sg), a("Context", LIST_CONTEXT))),
                SglRecord(location=HERE, context=at, address=r.sg, elements=tuple(SgElement(b, n) for b, n in r.elements)),
                Done(location=HERE, context=at, name=started),
            ]
        else:
            self.refused += 1
        events += [
            Leave(location=HERE, context=at, name=name, result=Symbol(status)),
            Done(location=HERE, context=at, name=routine),
        ]
        return events

    def device(self, r: Request, cpu: int) -> list:
        bus, length = r.elements.pop(0)
        if r.write:
            return [DmaAccess(location=HERE, context=self.ctx(cpu, DIRQL), access="read", address=bus, length=length)]
        return [DmaAccess(location=HERE, context=self.ctx(cpu, DIRQL), access="write", address=bus, length=length,
                          fill=self.random.randrange(256))]

    def put(self, r: Request, cpu: int) -> list:
        at = self.ctx(cpu, DISPATCH_LEVEL)
        self.puts += 1
        if r.adapter.storport:
            put = Call(location=HERE, context=at, name="StorPortPutScatterGatherList", arguments=(
                a("HwDeviceExtension", HW_EXTENSION), a("ScatterGatherList", r.sg), a("WriteToDevice", r.write)),
                result=Symbol("STOR_STATUS_SUCCESS"))
            routine = "HwStorDpcRoutine"
        else:
            put = Call(location=HERE, context=at, name="PutScatterGatherList", arguments=(
                a("DmaAdapter", r.adapter.address), a("ScatterGather", r.sg), a("WriteToDevice", r.write)))
            routine = "DpcForIsr"
        events = [Callback(location=HERE, context=at, name=routine, arguments=(a("Dpc", DPC), a("DeviceObject", DEVICE))), put]
        if not r.write:
            events.append(MemAccess(location=HERE, context=at, access="read", address=r.va, length=r.length))
        events.append(Done(location=HERE, context=at, name=routine))
        return events

    def teardown(self, r: Request, cpu: int) -> list:
        passive = self.ctx(cpu, PASSIVE_LEVEL)
        if r.adapter.storport:
            ok = Symbol("STOR_STATUS_SUCCESS")
            return [
                Call(location=HERE, context=passive, name="StorPortFreeMdl", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("Mdl", r.mdl)), result=ok),
                Call(location=HERE, context=passive, name="StorPortFreePool", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("BufferPointer", r.sg)), result=ok),
                Call(location=HERE, context=passive, name="StorPortFreePool", arguments=(
                    a("HwDeviceExtension", HW_EXTENSION), a("BufferPointer", r.data)), result=ok),
            ]
        return [
            Call(location=HERE, context=passive, name="IoFreeMdl", arguments=(a("Mdl", r.mdl),)),
            Call(location=HERE, context=passive, name="ExFreePoolWithTag", arguments=(a("P", r.sg), a("Tag", TAG))),
            Call(location=HERE, context=passive, name="ExFreePoolWithTag", arguments=(a("P", r.data), a("Tag", TAG))),
        ]


def stream(driver: Driver, steps: int) -> Iterator:
    """At least `steps` events: requests start until the fewest events the open ones can still
    make would reach `steps`, then the open ones finish."""
    emitted = 0
    for group in driver.steps():
        yield from group
        emitted += len(group)
        if not driver.draining and emitted + driver.remaining() >= steps:
            driver.drain()


def validate(seed: int, in_flight: int, steps: int, events: int) -> int:
    """Replay the first `events` of the stream on a fresh machine, checking every fact; returns how many."""
    machine = Machine()
    for record in setup_records():
        machine.apply(record)
    checked = 0
    for event in islice(stream(Driver(seed, in_flight), steps), events):
        effects = machine.apply(event)
        for key, value in effects.facts:
            if key not in OBSERVATIONS and not (key == "failed" and "INSUFFICIENT" in str(value)) \
                    and not (key == "status-differs" and value[1] is None and "INSUFFICIENT" in value[0]):
                raise SystemExit(f"invalid stream: event {checked} {event!r} drew {key}={value!r}")
        checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()

    checked = validate(args.seed, args.in_flight, args.steps, 20_000)
    print(f"validated: first {checked:,} events replayed with every fact checked")

    machine = Machine()
    setup = setup_records()
    for record in setup:
        machine.apply(record)
    driver = Driver(args.seed, args.in_flight)
    events = stream(driver, args.steps)
    marks = sorted({m for m in (10_000, 100_000, args.steps) if m <= args.steps})
    applied = 0
    generating = applying = 0.0
    rows: list[tuple[int, float]] = []
    while True:
        start = time.perf_counter()
        chunk = list(islice(events, CHUNK))
        generating += time.perf_counter() - start
        if not chunk:
            break
        apply = machine.apply
        start = time.perf_counter()
        for event in chunk:
            apply(event)
        applying += time.perf_counter() - start
        applied += len(chunk)
        if marks and applied >= marks[0]:
            rows.append((applied, applying))
            marks.pop(0)
    if not rows or rows[-1][0] < min(args.steps, applied):
        rows.append((applied, applying))
    tail = (applied - rows[-1][0], applying - rows[-1][1])  # the requests still open at N finish

    print(f"stream: {applied:,} events, {driver.builds:,} lists built and put ({driver.refused:,} builds refused; "
          f"{driver.elements_built:,} elements, {driver.elements_bounced:,} through map registers), "
          f"{driver.allocations:,} pool allocations, up to {args.in_flight} requests in flight on {CPUS} CPUs")
    print(f"generate {generating:8.2f} s  (not timed below)")
    previous_events, previous_seconds = 0, 0.0
    for count, seconds in rows:
        stretch = (count - previous_events) / (seconds - previous_seconds)
        print(f"apply    {seconds:8.2f} s  {count / seconds:10,.0f} events/s after {count:>9,} events"
              f"  ({stretch:10,.0f} events/s over the last {count - previous_events:,})")
        previous_events, previous_seconds = count, seconds
    if tail[0]:
        print(f"apply    {applying:8.2f} s  then {tail[0]:,} events finishing the requests open at {rows[-1][0]:,}")
    first, last = rows[0], rows[-1]
    print(f"rate after {last[0]:,} / rate after {first[0]:,}: {(last[0] / last[1]) / (first[0] / first[1]):.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    print(f"live state at the end: {len(machine.live_sgls())} lists, {len(machine.live_mdls())} MDLs, "
          f"{len(machine.live_blocks())} pool blocks ({machine.pool.live_bytes} bytes), {machine.bus.live_entries()} live bus "
          f"entries, {machine.ram.pages_touched:,} RAM pages and {machine.bounce_memory.pages_touched:,} map-register pages "
          f"touched; remembered: {len(machine.put_lists):,} put lists, {len(machine.freed_mdls):,} freed MDLs, "
          f"{machine.bus.retired_entries():,} retired bus mappings naming {len(machine.put_by_ordinal):,} put lists, "
          f"{len(machine.calculations):,} calculations")

    problems = []
    setup_events = sum(isinstance(record, Call) for record in setup)
    if machine.events != applied + setup_events:
        problems.append(f"machine counted {machine.events - setup_events:,} events, {applied:,} applied")
    if machine.live_sgls() or machine.live_mdls() or machine.live_blocks() or machine.pool.live_bytes or machine.bus.live_entries():
        problems.append("objects left live after every request finished")
    if machine.pool.allocated != driver.allocations:
        problems.append(f"{machine.pool.allocated:,} allocations took effect, {driver.allocations:,} made")
    if machine.open_frames():
        problems.append(f"{len(machine.open_frames())} frames left open")
    if problems:
        raise SystemExit("FAILED: " + "; ".join(problems))
    print("check: every request finished; no list, MDL or block is live")


if __name__ == "__main__":
    main()
