"""A seeded generator of realistic dmatrace captures of any size, with known violations.

    python bench/generate.py --events 1000000 --seed 1 --kind storport|wdm|mixed --out big.trace
        [--style fields|wpp] [--every 40] [--in-flight 32] [--no-sidecar]

Writes a trace of a storage driver under load, in the shapes of the bundled captures
(traces/*.trace): a StorPort miniport that stages every SRB through its own pool block and
MDL (HwStorBuildIo, HwStorStartIo with StorPortBuildScatterGatherList and HwDmaStarted, the
interrupt, HwStorDpcRoutine taking DpcLock then InterruptLock, putting the list, copying out
and freeing), and WDM bus masters, one with 64-bit addressing and one 32-bit card whose pages
above 4 GiB go through map registers (a thread allocates pool and an MDL, takes the spin lock,
CalculateScatterGatherList, BuildScatterGatherList with AdapterListControl writing the
submission ring of a common buffer; the ISR merges the device's DMA records; the DPC puts the
list, reads the data and frees). `mixed` has both drivers in one capture. Requests run on four
CPUs, up to --in-flight at once, their steps interleaved; a DPC completes every request whose
interrupt came. Lines carry either tracefmt's WPP prefix or context fields (`t= cpu= tid=
irql=`), with section comments, trailing comments and blank lines as real captures have them.

State stays bounded while generating: lines stream to the file, at most --in-flight requests
are open, and pool blocks, MDLs, SG buffers, physical frames and map registers come from fixed
pools of slots and are reused, as a real pool reuses them. So 10 million events take constant
memory, here and in the checker.

Every --every-th request breaks one contract (in turn: a second put SGL002, a read of the
buffer before the put SGL003, a double free POOL001, an MDL freed twice MDL001, a put with the
other direction SGL008, a device access nothing maps DEV001, a leaked pool block POOL005, and
for WDM a free with the wrong tag POOL004), and the capture ends with one request whose MDL and
blocks are never freed (MDL002, POOL005 x2). Everything else is clean under dmalint's rules.
The exact number of findings per code is returned by `generate()` and written next to the
trace as FILE.expected.json (a name dmalint does not pick up when it checks a directory).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

__all__ = ["KINDS", "STYLES", "Manifest", "expected_path", "generate", "load_manifest", "write_trace"]

KINDS = ("storport", "wdm", "mixed")
STYLES = ("fields", "wpp")
VERSION = 1  # of the generator's output for a given seed; bump when the stream changes

PAGE = 0x1000
SHIFT = 12
MASK = PAGE - 1
CPUS = 4
SLOTS = 128  # requests' address slots (pool block, SG buffer, MDL, frames), reused
SLOT_PAGES = 34  # frames per slot: the most pages a data block spans (0x20000 + 0x100 staging, unaligned)
SLOT_STRIDE = 36 * PAGE  # virtual space per slot
CHANNEL_PAGES = 16  # map registers per request in flight for the 32-bit card
HAL_WINDOW = 0x7F800000  # where the capture's HAL puts bounced pages (upper half of the model's window)
LOW_FRAMES = (0x20000, 0x7E000)  # below 4 GiB, clear of the map-register window at frame 0x7f000
HIGH_FRAMES = (0x100000, 0x3E0000)  # above 4 GiB, within 16 GiB
NOWHERE = 0x3FF7F0000  # a bus address below 16 GiB that no mapping, slot or common buffer covers
FLUSH = 2048  # lines per write

# Injections in the order each driver takes them (every --every-th request takes the next).
INJECTIONS = {
    "storport": ("SGL002", "SGL003", "POOL001", "MDL001", "SGL008", "DEV001", "POOL005"),
    "wdm": ("SGL002", "SGL003", "POOL001", "POOL004", "MDL001", "SGL008", "DEV001", "POOL005"),
}
END_LEAK = {"MDL002": 1, "POOL005": 2}  # the last request: put, never freed

# --- the StorPort miniport (nvmemini.sys / rdgsas3.sys shapes) ------------------------------
SP_EXT = 0xFFFFE30C4A2B1000
SP_DEVICE = 0xFFFFE30C49D6C050
SP_ROUTINE = 0xFFFFF8063E2A7B40
SP_DPC = (0xFFFFE30C4A2B1540, 0xFFFFE30C4A2B1590)  # one per queue pair
SP_DATA = 0xFFFFC80A30000000
SP_SG = 0xFFFFC80A2C800000
SP_MDL = 0xFFFFE30C4E500000
SP_SRB = 0xFFFFE30C4D700000
SP_CONTEXT = 0xFFFFE30C4F2A0000
SP_LEAKS = 0xFFFFC80A40000000
SP_TAG_DATA, SP_TAG_SG, SP_TAG_LEAK = 0x6753764E, 0x7453764E, 0x6B53764E
SP_DPC_HANDLE = 0xFFFFF8064C31F780  # + cpu * 0x2C0000: the DPC's stack
SP_STARTIO_HANDLE = 0xFFFFD5812B3C6F10

# --- the WDM bus masters (cxdma.sys / fbx32.sys shapes) -------------------------------------
WDM_DATA = 0xFFFFB20A10000000
WDM_SG = 0xFFFFB20A1C000000
WDM_MDL = 0xFFFFE00C50000000
WDM_LEAKS = 0xFFFFB20A30000000
WDM_LOCK = 0xFFFFE00C4F6A31C8
WDM_ROUTINE = 0xFFFFF8057A3E21C0
WDM_TAG_DATA, WDM_TAG_SG, WDM_TAG_LEAK, WDM_TAG_WRONG = 0x62447843, 0x67537843, 0x6B4C7843, 0x62447844


@dataclass(frozen=True)
class Device:
    """One WDM device: its adapter and common buffer (submission ring at +0, completion at +0x1000)."""

    name: str
    pdo: int
    device: int
    adapter: int
    dma64: bool
    map_registers: int
    common_va: int
    common_bus: int
    interrupt: int
    service_context: int
    dpc: int
    context: int

    @property
    def limit(self) -> int:
        return (1 << 64) - 1 if self.dma64 else (1 << 32) - 1


WDM64 = Device("wdm64", 0xFFFFE00C4E91B060, 0xFFFFE00C4F6A3030, 0xFFFFE00C4F7C2010, True, 33,
               0xFFFFD481C2A3B000, 0x3F3A52000, 0xFFFFE00C4F8E5A00, 0xFFFFE00C4F6A3180, 0xFFFFE00C4F6A31E0,
               0xFFFFE00C4F6A3380)
WDM32 = Device("wdm32", 0xFFFFE00D12C4E060, 0xFFFFE00D13A07030, 0xFFFFE00D13B81010, False, 16,
               0xFFFFD481C37E5000, 0x3E7C1000, 0xFFFFE00D13C5E0A0, 0xFFFFE00D13A07180, 0xFFFFE00D13A071D0,
               0xFFFFE00D13A07300)

# The mix of drivers per kind, and of transfer sizes (pages) and directions.
DRIVER_MIX = {
    "storport": (("storport", 1.0),),
    "wdm": (("wdm64", 0.65), ("wdm32", 0.35)),
    "mixed": (("storport", 0.5), ("wdm64", 0.35), ("wdm32", 0.15)),
}
PAGES = (1, 1, 1, 1, 2, 2, 2, 3, 4, 4, 8, 8, 16, 32)


@dataclass
class Manifest:
    """What a generated trace holds: sizes, and the findings dmalint must report, by code."""

    path: str
    kind: str
    seed: int
    style: str
    every: int
    events: int
    lines: int
    bytes: int
    requests: int
    refused: int
    findings: dict[str, int] = field(default_factory=dict)
    generator: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def expected_path(trace: str | Path) -> Path:
    """Where the manifest of a trace is written: FILE.expected.json."""
    trace = Path(trace)
    return trace.with_name(trace.name + ".expected.json")


def load_manifest(trace: str | Path) -> Manifest:
    return Manifest(**json.loads(expected_path(trace).read_text()))


@dataclass(slots=True)
class Request:
    number: int
    driver: str  # storport, wdm64, wdm32
    slot: int
    channel: int
    write: bool
    block: int  # the pool block's address and size
    size: int
    va: int  # the transfer's start and length (StorPort: after the 0x100-byte staging header)
    length: int
    pfns: tuple[int, ...]
    span: int
    elements: list[tuple[int, int]]
    refused: bool
    inject: str | None
    cpu: int
    tid: int
    srb: int
    context: int
    phase: int = 0  # 0 prepare, 1 submit, 2 interrupt, 3 ready for the DPC
    ring: int = 0
    leak: int | None = None  # address of the block POOL005's injection leaks

    @property
    def storport(self) -> bool:
        return self.driver == "storport"

    @property
    def sg(self) -> int:
        return (SP_SG if self.storport else WDM_SG) + self.slot * 0x400

    @property
    def mdl(self) -> int:
        return (SP_MDL if self.storport else WDM_MDL) + self.slot * 0x200

    @property
    def sg_length(self) -> int:
        return 16 + 24 * self.span


class Writer:
    """Formats events with the trace's prefix style and streams them to the file."""

    def __init__(self, out: TextIO, style: str, rng: random.Random) -> None:
        self.out = out
        self.style = style
        self.rng = rng
        self.buffer: list[str] = []
        self.events = 0
        self.lines = 0
        self.bytes = 0
        self.micros = 12_480_116 if style == "fields" else 0  # time since the capture's start, in µs
        self.wpp_base = (10 * 3600 + 23 * 60 + 45) * 1_000_000 + 123_460  # 10:23:45.123460

    def _put(self, line: str) -> None:
        self.buffer.append(line)
        self.bytes += len(line) + 1
        if len(self.buffer) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.lines += len(self.buffer)
            self.out.write("\n".join(self.buffer))
            self.out.write("\n")
            self.buffer.clear()

    def raw(self, line: str) -> None:
        """A directive, comment or blank line."""
        self._put(line)

    def event(self, cpu: int, irql: str | None, body: str, tid: int = 0, provider: str = "", note: str = "") -> None:
        self.micros += self.rng.randint(1, 4)
        if self.style == "wpp":
            stamp = self.wpp_base + self.micros
            seconds, micro = divmod(stamp, 1_000_000)
            minutes, second = divmod(seconds, 60)
            hours, minute = divmod(minutes, 60)
            pid = 0x0004 if tid < 0x1000 else 0x1F2C
            prefix = f"[{cpu}]{pid:04X}.{tid:04X}::11/21/2026-{hours % 24:02d}:{minute:02d}:{second:02d}.{micro:06d} [{provider}] "
        else:
            seconds, micro = divmod(self.micros, 1_000_000)
            prefix = f"t={seconds}.{micro:06d} cpu={cpu} " + (f"tid={tid:#x} " if tid else "")
        if irql is not None:
            prefix += f"irql={irql} "
        line = prefix + body
        if note:
            line += "    # " + note
        self.events += 1
        self._put(line)


class Generator:
    """Generates the capture: setup, then requests stepping in turn, then the end."""

    def __init__(self, out: TextIO, events: int, seed: int, kind: str, style: str, every: int, in_flight: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}")
        self.rng = random.Random(f"dmalint-bench-{seed}-{kind}")
        self.target = events
        self.kind = kind
        self.every = max(1, every)
        self.in_flight = max(1, min(in_flight, 64))
        self.w = Writer(out, style, self.rng)
        self.drivers = [name for name, _ in DRIVER_MIX[kind]]
        self.weights = [weight for _, weight in DRIVER_MIX[kind]]
        self.free_slots = list(range(SLOTS))
        self.free_channels = list(range(self.in_flight))
        self.open: list[Request] = []
        self.requests = 0
        self.refused = 0
        self.injected: dict[str, int] = {}
        self.turns = {"storport": 0, "wdm": 0}
        self.leaks = 0
        self.ring = {WDM64.name: 0, WDM32.name: 0}
        self.frames = self._frames()

    # --- set-up -----------------------------------------------------------------------------
    def _frames(self) -> list[list[int]]:
        """Each slot's pages have fixed frames (nonpaged pool does not move), all distinct: half
        the pages continue an ascending run, a third of the rest are above 4 GiB."""
        following = {"low": LOW_FRAMES[0], "high": HIGH_FRAMES[0]}
        frames = []
        for _ in range(SLOTS):
            slot: list[int] = []
            where = "low"
            for _ in range(SLOT_PAGES):
                if not (slot and slot[-1] + 1 == following[where] and self.rng.random() < 0.5):
                    where = "high" if self.rng.random() < 1 / 3 else "low"
                    following[where] += self.rng.randint(1, 40)
                slot.append(following[where])
                following[where] += 1
            frames.append(slot)
        assert following["low"] < LOW_FRAMES[1] and following["high"] < HIGH_FRAMES[1]
        return frames

    def provider(self, driver: str) -> str:
        return "nvmemini" if driver == "storport" else ("cxdma" if driver == "wdm64" else "fbx32")

    def header(self) -> None:
        w = self.w
        names = {"storport": 'name="nvmemini.sys" version="1.4.2210.0"', "wdm": 'name="cxdma.sys" version="3.2.1406.0"',
                 "mixed": 'name="nvmemini.sys" also="cxdma.sys, fbx32.sys"'}
        w.raw(f"# Generated by bench/generate.py (kind {self.kind}, style {w.style}): a storage driver under load.")
        w.raw("@dmatrace 1")
        w.raw("@target arch=x64 page_size=4096")
        w.raw(f"@driver {names[self.kind]}")
        w.raw(f"@memory size=0x400000000 layout=fragmented seed={self.rng.randrange(1000)}")
        if "storport" in self.drivers:
            w.raw("@adapter storport dma64=TRUE scatter_gather=TRUE maximum_length=0x20000 map_registers=33 alignment=4")
        w.raw("")
        for device in self.devices():
            self.start_device(device)

    def devices(self) -> list[Device]:
        return [device for device in (WDM64, WDM32) if device.name in self.drivers]

    def start_device(self, d: Device) -> None:
        w, p = self.w, self.provider(d.name)
        dma32, dma64 = ("FALSE", "TRUE") if d.dma64 else ("TRUE", "FALSE")
        w.raw(f"# --- IRP_MN_START_DEVICE ({d.name}): adapter, common buffer with the rings ---")
        w.event(0, "PASSIVE", f"call IoGetDmaAdapter(PhysicalDeviceObject={d.pdo:#x}, DeviceDescription={{Version="
                f"DEVICE_DESCRIPTION_VERSION2, Master=TRUE, ScatterGather=TRUE, Dma32BitAddresses={dma32}, Dma64BitAddresses="
                f"{dma64}, InterfaceType=PCIBus, MaximumLength=0x20000}}, NumberOfMapRegisters=>{d.map_registers}) -> "
                f"{d.adapter:#x}", tid=0xA4C, provider=p)
        w.event(0, "PASSIVE", f"call AllocateCommonBuffer(DmaAdapter={d.adapter:#x}, Length=0x2000, LogicalAddress=>"
                f"{d.common_bus:#x}, CacheEnabled=FALSE) -> {d.common_va:#x}", tid=0xA4C, provider=p,
                note="SQ at +0x0, CQ at +0x1000")
        w.event(0, "PASSIVE", f"mem write {d.common_va:#x} 0x2000", tid=0xA4C, provider=p, note="RtlZeroMemory")

    def stop_device(self, d: Device) -> None:
        w, p = self.w, self.provider(d.name)
        w.raw(f"# --- IRP_MN_STOP_DEVICE ({d.name}): queue drained ---")
        w.event(0, "PASSIVE", f"call FreeCommonBuffer(DmaAdapter={d.adapter:#x}, Length=0x2000, LogicalAddress="
                f"{d.common_bus:#x}, VirtualAddress={d.common_va:#x}, CacheEnabled=FALSE)", tid=0xA4C, provider=p)
        w.event(0, "PASSIVE", f"call PutDmaAdapter(DmaAdapter={d.adapter:#x})", tid=0xA4C, provider=p)

    # --- requests ---------------------------------------------------------------------------
    def new_request(self, leak_at_end: bool = False) -> Request:
        rng = self.rng
        self.requests += 1
        number = self.requests
        driver = rng.choices(self.drivers, self.weights)[0]
        family = "storport" if driver == "storport" else "wdm"
        inject = None
        if not leak_at_end and number % self.every == 0:
            kinds = INJECTIONS[family]
            inject = kinds[self.turns[family] % len(kinds)]
            self.turns[family] += 1
        pages = rng.choice(PAGES)
        write = rng.random() < 0.4 and inject != "SGL003"
        refused = False
        if driver == "wdm32" and inject is None and not leak_at_end and rng.random() < 0.02:
            refused = True  # more pages than the card's 16 map registers: the HAL refuses the build
            pages = rng.randint(17, 24)
        elif driver == "wdm32":
            pages = min(pages, 12)
        slot = self.free_slots.pop(rng.randrange(len(self.free_slots)))
        base = (SP_DATA if driver == "storport" else WDM_DATA) + slot * SLOT_STRIDE
        if pages == 1 and rng.random() < 0.5:  # a small block inside a page, 16-byte aligned
            length = rng.choice((0x60, 0x200, 0x400, 0x600, 0x800))
            header = 0x100 if driver == "storport" else 0
            block = base + (rng.randrange(0, PAGE - length - header) & ~0xF)
            size = length + header
        else:
            length = pages * PAGE - rng.choice((0, 0, 0, 0x200, 0x800))
            block = base
            size = length + (0x100 if driver == "storport" else 0)
        va = block + (0x100 if driver == "storport" else 0)
        first = (va >> SHIFT) - (base >> SHIFT)
        span = ((va & MASK) + length + MASK) >> SHIFT
        pfns = tuple(self.frames[slot][first:first + span])
        request = Request(
            number=number, driver=driver, slot=slot, channel=self.free_channels.pop(), write=write, block=block, size=size,
            va=va, length=length, pfns=pfns, span=span, elements=[], refused=refused, inject=inject,
            cpu=rng.randrange(CPUS), tid=rng.choice((0x1F08, 0x2154, 0x23A0, 0x25E8, 0x2B10)),
            srb=SP_SRB + slot * 0x1000 + 0xA40, context=SP_CONTEXT + slot * 0x180,
        )
        request.elements = self.elements(request)
        if refused:
            self.refused += 1
        if inject:
            self.injected[inject] = self.injected.get(inject, 0) + 1
        if inject == "POOL005":
            request.leak = (SP_LEAKS if driver == "storport" else WDM_LEAKS) + self.leaks * 0x100
            self.leaks += 1
        self.open.append(request)
        return request

    def elements(self, r: Request) -> list[tuple[int, int]]:
        """The list the HAL builds: runs of ascending frames, and each run of pages above the
        device's reach in consecutive map registers of the request's own channel (keeping the
        first piece's offset in its page)."""
        limit = WDM32.limit if r.driver == "wdm32" else (1 << 64) - 1
        region = HAL_WINDOW + r.channel * CHANNEL_PAGES * PAGE
        out: list[list] = []  # [bus address, length, bounced]
        used = 0
        offset = 0
        while offset < r.length:
            va = r.va + offset
            n = min(r.length - offset, PAGE - (va & MASK))
            phys = (r.pfns[(va >> SHIFT) - (r.va >> SHIFT)] << SHIFT) | (va & MASK)
            bounced = phys + n - 1 > limit
            last = out[-1] if out else None
            if last is not None and last[2] == bounced and (bounced or last[0] + last[1] == phys):
                last[1] += n
            else:
                if last is not None and last[2]:
                    used += ((last[0] & MASK) + last[1] + MASK) >> SHIFT
                out.append([region + used * PAGE + (va & MASK) if bounced else phys, n, bounced])
            offset += n
        return [(address, length) for address, length, _ in out]

    def release(self, r: Request) -> None:
        self.open.remove(r)
        self.free_slots.append(r.slot)
        self.free_channels.append(r.channel)

    def step(self, r: Request) -> None:
        cpu = self.rng.randrange(CPUS)
        if r.phase == 0:
            if self.rng.random() < 0.03:
                size = f"{r.length:#x}-byte {'write' if r.write else 'read'}"
                self.w.raw("")
                self.w.raw(f"# --- request {r.number}: {size}, {r.span} pages, {len(r.elements)} elements, slot {r.slot} ---")
            (self.sp_prepare if r.storport else self.wdm_prepare)(r)
            r.phase = 1
        elif r.phase == 1:
            (self.sp_submit if r.storport else self.wdm_submit)(r)
            if r.refused:
                self.wdm_teardown_refused(r, cpu)
                self.release(r)
            else:
                r.phase = 2
        elif r.phase == 2:
            (self.sp_interrupt if r.storport else self.wdm_interrupt)(r, cpu)
            r.phase = 3
        else:  # a DPC completes every request of this driver whose interrupt came
            ready = [o for o in self.open if o.phase == 3 and o.driver == r.driver][:4]
            (self.sp_dpc if r.storport else self.wdm_dpc)(ready, cpu)
            for o in ready:
                self.release(o)

    # --- StorPort ---------------------------------------------------------------------------
    def sp_prepare(self, r: Request) -> None:
        w, cpu, p = self.w, r.cpu, "nvmemini"
        ext = f"HwDeviceExtension={SP_EXT:#x}"
        w.event(cpu, "DISPATCH", f"callback HwStorBuildIo(DeviceExtension={SP_EXT:#x}, Srb={r.srb:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortAllocatePool({ext}, NumberOfBytes={r.size:#x}, Tag={SP_TAG_DATA:#x}, "
                f"BufferPointer=>{r.block:#x}) -> STOR_STATUS_SUCCESS", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortAllocatePool({ext}, NumberOfBytes={r.sg_length:#x}, Tag={SP_TAG_SG:#x}, "
                f"BufferPointer=>{r.sg:#x}) -> STOR_STATUS_SUCCESS", provider=p)
        if r.leak is not None:
            w.event(cpu, "DISPATCH", f"call StorPortAllocatePool({ext}, NumberOfBytes=0x80, Tag={SP_TAG_LEAK:#x}, "
                    f"BufferPointer=>{r.leak:#x}) -> STOR_STATUS_SUCCESS", provider=p, note="per-SRB context, never freed")
        w.event(cpu, "DISPATCH", f"call StorPortAllocateMdl({ext}, BufferPointer={r.va:#x}, NumberOfBytes={r.length:#x}, "
                f"Mdl=>{r.mdl:#x}) -> STOR_STATUS_SUCCESS", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortBuildMdlForNonPagedPool({ext}, Mdl={r.mdl:#x}) -> STOR_STATUS_SUCCESS",
                provider=p)
        w.event(cpu, "DISPATCH", self.mdl_record(r), provider=p)
        if r.write:
            w.event(cpu, "DISPATCH", f"mem write {r.va:#x} {r.length:#x}", provider=p, note="copy in from the SRB DataBuffer")
        w.event(cpu, "DISPATCH", "done HwStorBuildIo", provider=p)

    def sp_submit(self, r: Request) -> None:
        w, cpu, p = self.w, r.cpu, "nvmemini"
        write = "TRUE" if r.write else "FALSE"
        handle = SP_STARTIO_HANDLE + r.slot * 0x80
        w.event(cpu, "DISPATCH", f"callback HwStorStartIo(DeviceExtension={SP_EXT:#x}, Srb={r.srb:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"enter StorPortBuildScatterGatherList(HwDeviceExtension={SP_EXT:#x}, Mdl={r.mdl:#x}, "
                f"CurrentVa={r.va:#x}, Length={r.length:#x}, ExecutionRoutine={SP_ROUTINE:#x}, Context={r.context:#x}, "
                f"WriteToDevice={write}, ScatterGatherBuffer={r.sg:#x}, ScatterGatherBufferLength={r.sg_length:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"callback HwDmaStarted(DeviceObject={SP_DEVICE:#x}, Irp=NULL, ScatterGather={r.sg:#x}, "
                f"Context={r.context:#x})", provider=p)
        w.event(cpu, "DISPATCH", self.sgl_record(r), provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortAcquireSpinLock(DeviceExtension={SP_EXT:#x}, SpinLock=StartIoLock, "
                f"LockContext=NULL, LockHandle=>{handle:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortReleaseSpinLock(DeviceExtension={SP_EXT:#x}, LockHandle={handle:#x})",
                provider=p, note=f"SQ{1 + cpu // 2} tail {r.number % 64:#04x}, CID {r.number & 0xFFFF:#06x}")
        w.event(cpu, "DISPATCH", "done HwDmaStarted", provider=p)
        w.event(cpu, "DISPATCH", "leave StorPortBuildScatterGatherList -> STOR_STATUS_SUCCESS", provider=p)
        w.event(cpu, "DISPATCH", "done HwStorStartIo", provider=p)

    def sp_interrupt(self, r: Request, cpu: int) -> None:
        w, p = self.w, "nvmemini"
        w.event(cpu, "DIRQL", f"callback HwStorInterrupt(DeviceExtension={SP_EXT:#x})", provider=p,
                note=f"MSI-X {1 + cpu // 2}: CQ CID {r.number & 0xFFFF:#06x} status 0")
        self.device_dma(r, cpu, p)
        w.event(cpu, "DIRQL", "done HwStorInterrupt", provider=p)

    def sp_dpc(self, ready: list[Request], cpu: int) -> None:
        w, p = self.w, "nvmemini"
        ext = f"HwDeviceExtension={SP_EXT:#x}"
        dpc = SP_DPC[cpu // 2]
        outer, inner = SP_DPC_HANDLE + cpu * 0x2C0000, SP_DPC_HANDLE + cpu * 0x2C0000 + 0x28
        w.event(cpu, "DISPATCH", f"callback HwStorDpcRoutine(Dpc={dpc:#x}, {ext}, SystemArgument1=NULL, SystemArgument2=NULL)",
                provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortAcquireSpinLock(DeviceExtension={SP_EXT:#x}, SpinLock=DpcLock, "
                f"LockContext={dpc:#x}, LockHandle=>{outer:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortAcquireSpinLock(DeviceExtension={SP_EXT:#x}, SpinLock=InterruptLock, "
                f"LockContext=NULL, LockHandle=>{inner:#x})", provider=p)
        w.event(cpu, "DIRQL", f"call StorPortReleaseSpinLock(DeviceExtension={SP_EXT:#x}, LockHandle={inner:#x})", provider=p,
                note=f"CQ head {len(ready):#04x}")
        for r in ready:
            if r.inject == "SGL003":
                w.event(cpu, "DISPATCH", f"mem read {r.va:#x} {min(r.length, 0x200):#x}", provider=p, note="before the put")
            write = "TRUE" if r.write != (r.inject == "SGL008") else "FALSE"
            put = f"call StorPortPutScatterGatherList({ext}, ScatterGatherList={r.sg:#x}, WriteToDevice={write}) -> STOR_STATUS_SUCCESS"
            w.event(cpu, "DISPATCH", put, provider=p)
            if r.inject == "SGL002":
                w.event(cpu, "DISPATCH", put, provider=p)
            if not r.write:
                w.event(cpu, "DISPATCH", f"mem read {r.va:#x} {r.length:#x}", provider=p, note="copy out to the SRB DataBuffer")
            if r.phase == 4:  # the request left at the end: its MDL and blocks are never freed
                continue
            free_mdl = f"call StorPortFreeMdl({ext}, Mdl={r.mdl:#x}) -> STOR_STATUS_SUCCESS"
            w.event(cpu, "DISPATCH", free_mdl, provider=p)
            if r.inject == "MDL001":
                w.event(cpu, "DISPATCH", free_mdl, provider=p)
            free = f"call StorPortFreePool({ext}, BufferPointer={r.block:#x}) -> STOR_STATUS_SUCCESS"
            w.event(cpu, "DISPATCH", free, provider=p)
            if r.inject == "POOL001":
                w.event(cpu, "DISPATCH", free, provider=p)
            w.event(cpu, "DISPATCH", f"call StorPortFreePool({ext}, BufferPointer={r.sg:#x}) -> STOR_STATUS_SUCCESS", provider=p)
        w.event(cpu, "DISPATCH", f"call StorPortReleaseSpinLock(DeviceExtension={SP_EXT:#x}, LockHandle={outer:#x})", provider=p)
        w.event(cpu, "DISPATCH", "done HwStorDpcRoutine", provider=p)

    # --- WDM --------------------------------------------------------------------------------
    def device_of(self, r: Request) -> Device:
        return WDM64 if r.driver == "wdm64" else WDM32

    def wdm_prepare(self, r: Request) -> None:
        w, cpu, p, tid = self.w, r.cpu, self.provider(r.driver), r.tid
        w.event(cpu, "PASSIVE", f"call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes={r.size:#x}, "
                f"Tag={WDM_TAG_DATA:#x}) -> {r.block:#x}", tid=tid, provider=p)
        if r.write:
            w.event(cpu, "PASSIVE", f"mem write {r.va:#x} {r.length:#x}", tid=tid, provider=p)
        w.event(cpu, "PASSIVE", f"call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes={r.sg_length:#x}, "
                f"Tag={WDM_TAG_SG:#x}) -> {r.sg:#x}", tid=tid, provider=p)
        if r.leak is not None:
            w.event(cpu, "PASSIVE", f"call ExAllocatePool2(Flags=POOL_FLAG_NON_PAGED, NumberOfBytes=0x80, "
                    f"Tag={WDM_TAG_LEAK:#x}) -> {r.leak:#x}", tid=tid, provider=p, note="request context, never freed")
        w.event(cpu, "PASSIVE", f"call IoAllocateMdl(VirtualAddress={r.va:#x}, Length={r.length:#x}, SecondaryBuffer=FALSE, "
                f"ChargeQuota=FALSE, Irp=NULL) -> {r.mdl:#x}", tid=tid, provider=p)
        w.event(cpu, "PASSIVE", f"call MmBuildMdlForNonPagedPool(MemoryDescriptorList={r.mdl:#x})", tid=tid, provider=p)
        w.event(cpu, "PASSIVE", self.mdl_record(r), tid=tid, provider=p)

    def wdm_submit(self, r: Request) -> None:
        w, p, tid = self.w, self.provider(r.driver), r.tid
        cpu = r.cpu = self.rng.randrange(CPUS)  # the thread may have moved
        d = self.device_of(r)
        write = "TRUE" if r.write else "FALSE"
        locked = self.rng.random() < 0.7
        if locked:
            w.event(cpu, "PASSIVE", f"call KeAcquireSpinLock(SpinLock={WDM_LOCK:#x}, OldIrql=>PASSIVE_LEVEL)", tid=tid, provider=p)
        else:
            w.event(cpu, "PASSIVE", "call KeRaiseIrql(NewIrql=DISPATCH_LEVEL, OldIrql=>PASSIVE_LEVEL)", tid=tid, provider=p)
        if not r.refused:
            w.event(cpu, "DISPATCH", f"call CalculateScatterGatherList(DmaAdapter={d.adapter:#x}, Mdl={r.mdl:#x}, "
                    f"CurrentVa={r.va:#x}, Length={r.length:#x}, ScatterGatherListSize=>{r.sg_length:#x}, "
                    f"NumberOfMapRegisters=>{r.span}) -> STATUS_SUCCESS", tid=tid, provider=p)
        context = d.context + (r.slot % 8) * 0x80
        w.event(cpu, "DISPATCH", f"enter BuildScatterGatherList(DmaAdapter={d.adapter:#x}, DeviceObject={d.device:#x}, "
                f"Mdl={r.mdl:#x}, CurrentVa={r.va:#x}, Length={r.length:#x}, ExecutionRoutine={WDM_ROUTINE:#x}, "
                f"Context={context:#x}, WriteToDevice={write}, ScatterGatherBuffer={r.sg:#x}, "
                f"ScatterGatherLength={r.sg_length:#x})", tid=tid, provider=p)
        if r.refused:
            w.event(cpu, "DISPATCH", "leave BuildScatterGatherList -> STATUS_INSUFFICIENT_RESOURCES", tid=tid, provider=p,
                    note=f"{r.span} pages, {d.map_registers} map registers")
        else:
            r.ring = self.ring[d.name] % 64
            self.ring[d.name] += 1
            w.event(cpu, "DISPATCH", f"callback AdapterListControl(DeviceObject={d.device:#x}, Irp=NULL, "
                    f"ScatterGather={r.sg:#x}, Context={context:#x})", tid=tid, provider=p)
            w.event(cpu, "DISPATCH", self.sgl_record(r), tid=tid, provider=p)
            w.event(cpu, "DISPATCH", f"mem write {d.common_va + r.ring * 0x40:#x} 0x40", tid=tid, provider=p,
                    note=f"SQ[{r.ring}]: {len(r.elements)} elements; doorbell")
            w.event(cpu, "DISPATCH", "done AdapterListControl", tid=tid, provider=p)
            w.event(cpu, "DISPATCH", "leave BuildScatterGatherList -> STATUS_SUCCESS", tid=tid, provider=p)
        if locked:
            w.event(cpu, "DISPATCH", f"call KeReleaseSpinLock(SpinLock={WDM_LOCK:#x}, NewIrql=PASSIVE_LEVEL)", tid=tid, provider=p)
        else:
            w.event(cpu, "DISPATCH", "call KeLowerIrql(NewIrql=PASSIVE_LEVEL)", tid=tid, provider=p)

    def wdm_teardown_refused(self, r: Request, cpu: int) -> None:
        w, p, tid = self.w, self.provider(r.driver), r.tid
        w.event(r.cpu, "PASSIVE", f"call IoFreeMdl(Mdl={r.mdl:#x})", tid=tid, provider=p, note="too large: split and retried")
        w.event(r.cpu, "PASSIVE", f"call ExFreePoolWithTag(P={r.sg:#x}, Tag={WDM_TAG_SG:#x})", tid=tid, provider=p)
        w.event(r.cpu, "PASSIVE", f"call ExFreePoolWithTag(P={r.block:#x}, Tag={WDM_TAG_DATA:#x})", tid=tid, provider=p)

    def wdm_interrupt(self, r: Request, cpu: int) -> None:
        w, p = self.w, self.provider(r.driver)
        d = self.device_of(r)
        w.event(cpu, "DIRQL", f"callback InterruptService(Interrupt={d.interrupt:#x}, ServiceContext={d.service_context:#x})",
                provider=p)
        w.event(cpu, "DIRQL", f"dma read {d.common_bus + r.ring * 0x40:#x} 0x40", provider=p, note=f"device fetches SQ[{r.ring}]")
        self.device_dma(r, cpu, p)
        status = (r.length.to_bytes(4, "little") + r.number.to_bytes(8, "little")[:4] + bytes(7) + b"\x01").hex()
        w.event(cpu, "DIRQL", f"dma write {d.common_bus + 0x1000 + r.ring * 0x10:#x} 0x10 data={status}", provider=p,
                note=f"CQ[{r.ring}]")
        w.event(cpu, "DIRQL", f"mem read {d.common_va + 0x1000 + r.ring * 0x10:#x} 0x10", provider=p)
        w.event(cpu, "DIRQL", "done InterruptService", provider=p)

    def wdm_dpc(self, ready: list[Request], cpu: int) -> None:
        w = self.w
        d = self.device_of(ready[0])
        p = self.provider(ready[0].driver)
        w.event(cpu, "DISPATCH", f"callback DpcForIsr(Dpc={d.dpc:#x}, DeviceObject={d.device:#x}, Irp=NULL, "
                f"Context={d.service_context:#x})", provider=p)
        w.event(cpu, "DISPATCH", f"call KeAcquireSpinLockAtDpcLevel(SpinLock={WDM_LOCK:#x})", provider=p)
        for r in ready:
            if r.inject == "SGL003":
                w.event(cpu, "DISPATCH", f"mem read {r.va:#x} {min(r.length, 0x200):#x}", provider=p, note="before the put")
            write = "TRUE" if r.write != (r.inject == "SGL008") else "FALSE"
            put = f"call PutScatterGatherList(DmaAdapter={d.adapter:#x}, ScatterGather={r.sg:#x}, WriteToDevice={write})"
            w.event(cpu, "DISPATCH", put, provider=p)
            if r.inject == "SGL002":
                w.event(cpu, "DISPATCH", put, provider=p)
        w.event(cpu, "DISPATCH", f"call KeReleaseSpinLockFromDpcLevel(SpinLock={WDM_LOCK:#x})", provider=p)
        for r in ready:
            if not r.write:
                w.event(cpu, "DISPATCH", f"mem read {r.va:#x} {r.length:#x}", provider=p)
            if r.phase == 4:  # the request left at the end: its MDL and blocks are never freed
                continue
            w.event(cpu, "DISPATCH", f"call IoFreeMdl(Mdl={r.mdl:#x})", provider=p)
            if r.inject == "MDL001":
                w.event(cpu, "DISPATCH", f"call IoFreeMdl(Mdl={r.mdl:#x})", provider=p)
            tag = WDM_TAG_WRONG if r.inject == "POOL004" else WDM_TAG_DATA
            free = f"call ExFreePoolWithTag(P={r.block:#x}, Tag={tag:#x})"
            w.event(cpu, "DISPATCH", free, provider=p)
            if r.inject == "POOL001":
                w.event(cpu, "DISPATCH", free, provider=p)
            w.event(cpu, "DISPATCH", f"call ExFreePoolWithTag(P={r.sg:#x}, Tag={WDM_TAG_SG:#x})", provider=p)
        w.event(cpu, "DISPATCH", "done DpcForIsr", provider=p)

    # --- records both drivers write ---------------------------------------------------------
    def mdl_record(self, r: Request) -> str:
        pfns = ", ".join(f"{pfn:#x}" for pfn in r.pfns)
        offset = f"{r.va & MASK:#x}" if r.va & MASK else "0"
        return f"mdl {r.mdl:#x} va={r.va:#x} offset={offset} bytes={r.length:#x} pfns=[{pfns}]"

    def sgl_record(self, r: Request) -> str:
        return f"sgl {r.sg:#x} [" + ", ".join(f"{a:#x}:{n:#x}" for a, n in r.elements) + "]"

    def device_dma(self, r: Request, cpu: int, provider: str) -> None:
        w = self.w
        fill = self.rng.randrange(256)
        for address, length in r.elements:
            if r.write:
                w.event(cpu, "DIRQL", f"dma read {address:#x} {length:#x}", provider=provider)
            else:
                w.event(cpu, "DIRQL", f"dma write {address:#x} {length:#x} fill={fill:#04x}", provider=provider)
        if r.inject == "DEV001":
            w.event(cpu, "DIRQL", f"dma write {NOWHERE + (r.number & 0xF) * PAGE:#x} 0x200 fill=0x00", provider=provider,
                    note="stale PRP: nothing maps this")

    # --- the run ----------------------------------------------------------------------------
    @staticmethod
    def least(r: Request) -> int:
        """The fewest events the request still writes."""
        if r.storport:
            rest = {0: 7, 1: 9, 2: 2, 3: 4}
        else:
            rest = {0: 5, 1: 6 if r.refused else 9, 2: 4, 3: 4}
        return sum(n for phase, n in rest.items() if phase >= r.phase) + (len(r.elements) if r.phase <= 2 else 0)

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        rng = self.rng
        self.header()
        draining = False
        reported = 0
        while True:
            if not draining and len(self.open) < self.in_flight and (not self.open or rng.random() < 0.3):
                request = self.new_request()
            elif self.open:
                request = rng.choice(self.open)
            else:
                break
            self.step(request)
            events = self.w.events
            if not draining and events + sum(self.least(o) for o in self.open) >= self.target:
                draining = True
            if progress is not None and events - reported >= 50_000:
                reported = events
                progress(events, self.w.bytes)
        self.finish()
        self.w.flush()
        if progress is not None:
            progress(self.w.events, self.w.bytes)

    def finish(self) -> None:
        """The last request is put but its MDL and blocks are never freed; then the devices stop."""
        w = self.w
        w.raw("")
        w.raw("# --- the last request: completed, but its MDL and blocks are never freed ---")
        r = self.new_request(leak_at_end=True)
        while r.phase < 3:
            self.step(r)
        r.phase = 4
        cpu = self.rng.randrange(CPUS)
        (self.sp_dpc if r.storport else self.wdm_dpc)([r], cpu)
        for device in self.devices():
            self.stop_device(device)

    def findings(self) -> dict[str, int]:
        found = dict(self.injected)
        for code, count in END_LEAK.items():
            found[code] = found.get(code, 0) + count
        return dict(sorted(found.items()))


def default_style(seed: int, kind: str) -> str:
    """WPP prefixes on some traces, context fields on others: by seed."""
    return "wpp" if (seed + KINDS.index(kind)) % 2 == 1 else "fields"


def write_trace(out: TextIO, events: int, seed: int = 1, kind: str = "mixed", style: str | None = None, every: int = 40,
                in_flight: int = 32, progress: Callable[[int, int], None] | None = None) -> Manifest:
    """Write a trace of at least `events` events to a text stream; the manifest has path ''."""
    style = style or default_style(seed, kind)
    generator = Generator(out, events, seed, kind, style, every, in_flight)
    generator.run(progress)
    w = generator.w
    return Manifest(path="", kind=kind, seed=seed, style=style, every=every, events=w.events, lines=w.lines, bytes=w.bytes,
                    requests=generator.requests, refused=generator.refused, findings=generator.findings())


def generate(path: str | Path, events: int, seed: int = 1, kind: str = "mixed", style: str | None = None, every: int = 40,
             in_flight: int = 32, sidecar: bool = True, progress: Callable[[int, int], None] | None = None) -> Manifest:
    """Write a trace of at least `events` events to `path` (and its manifest to
    FILE.expected.json unless `sidecar` is False); returns the manifest."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        manifest = write_trace(out, events, seed, kind, style, every, in_flight, progress)
    manifest.path = str(path)
    if sidecar:
        expected_path(path).write_text(manifest.to_json())
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="at least this many events (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kind", choices=KINDS, default="mixed")
    parser.add_argument("--style", choices=STYLES, help="line prefixes (default: by seed)")
    parser.add_argument("--every", type=int, default=40, help="inject a violation every N requests (default 40)")
    parser.add_argument("--in-flight", type=int, default=32, help="requests open at once, at most 64 (default 32)")
    parser.add_argument("--out", required=True, help="the trace to write ('-' for standard output, no sidecar)")
    parser.add_argument("--no-sidecar", action="store_true", help="do not write FILE.expected.json")
    args = parser.parse_args(argv)
    if args.out == "-":
        manifest = write_trace(sys.stdout, args.events, args.seed, args.kind, args.style, args.every, args.in_flight)
        print(manifest.to_json(), file=sys.stderr, end="")
        return 0
    manifest = generate(args.out, args.events, args.seed, args.kind, args.style, args.every, args.in_flight,
                        sidecar=not args.no_sidecar)
    counts = ", ".join(f"{code} {n}" for code, n in manifest.findings.items())
    print(f"{manifest.path}: {manifest.events:,} events, {manifest.lines:,} lines, {manifest.bytes / 1e6:.1f} MB, "
          f"{manifest.requests:,} requests ({manifest.refused} builds refused), style {manifest.style}; expected findings: "
          f"{counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
