"""Replaying the scatter/gather DDIs and captured `sgl` records."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

from .bus import BusEntry
from .cpu import CpuState
from .effects import EffectsBuilder
from .events import Callback, Event, SglRecord
from .pool import Block
from .retained import remember
from .sgl import Calculation, ListBuild, Segment, SgList, build_list, segments_from_capture
from .shared import Ordinals, SharedMemory
from .status import is_success, status_name
from .values import Symbol, Value, as_bool, as_int

if TYPE_CHECKING:  # the families it asks, made before it
    from .adapter_ddis import AdapterDdis
    from .mdl_ddis import MdlDdis


__all__ = ["SglDdis"]


class SglDdis:
    """The scatter/gather DDIs and `sgl` records: a family of the machine, with its state
    (live lists, by ordinal and by buffer; lists put and builds failed lately;
    calculations). It asks the MDL family for chains and page frames and the adapter family
    for adapters. `HANDLERS` maps each DDI to the method that replays it."""

    HANDLERS: dict[str, str] = {
        "CalculateScatterGatherList": "_calculate",
        "BuildScatterGatherList": "_build",
        "GetScatterGatherList": "_build",
        "StorPortBuildScatterGatherList": "_build",
        "BuildScatterGatherListEx": "_build",
        "GetScatterGatherListEx": "_build",
        "PutScatterGatherList": "_put",
        "StorPortPutScatterGatherList": "_put",
    }

    QUERIES: dict[str, str] = {"live_sgls": "live_sgls"}  # what a rule's `each:` may ask at the end

    def __init__(self, memory: SharedMemory, ordinals: Ordinals, mdl_ddis: MdlDdis, adapter_ddis: AdapterDdis) -> None:
        self.memory = memory
        self.ordinals = ordinals
        self.mdl_ddis = mdl_ddis
        self.adapter_ddis = adapter_ddis
        self.lists: dict[int, SgList] = {}  # live, by ordinal
        self.list_in_buffer: dict[int, int] = {}  # buffer pointer -> ordinal of the newest live list
        self.put_lists: OrderedDict[int, SgList] = OrderedDict()  # buffer -> the last list put from it
        self.failed_lists: OrderedDict[int, SgList] = OrderedDict()  # buffer -> a build that failed there
        self.calculations: OrderedDict[tuple, Calculation] = OrderedDict()  # (adapter, CurrentVa, Length) -> the last
        self._pending: dict[int, dict[str, int]] = {}
        self.reset_memory()

    def live_sgls(self) -> tuple[SgList, ...]:
        return tuple(self.lists.values())

    def reset_memory(self) -> None:
        self.put_by_ordinal: dict[int, SgList] = {}  # ordinal -> a put list some retired bus entry still names
        self.list_pages: dict[int, set[int]] = {}

    def forget_retired(self, kind: str, key: Hashable) -> None:
        """No retired bus entry names this owner any more: nothing can ask `owner` for its put list."""
        if kind == "sgl":
            self.put_by_ordinal.pop(key, None)  # type: ignore[call-overload]

    def lists_with_buffer_in(self, block: Block) -> tuple[SgList, ...]:
        """Live lists whose caller buffer lies in a pool block."""
        return tuple(self.lists[o] for buffer, o in self.list_in_buffer.items()
                     if block.address <= buffer < block.end and o in self.lists)

    def lists_through(self, adapter: int) -> tuple[SgList, ...]:
        """Live lists built through the adapter at `adapter`."""
        return tuple(sgl for sgl in self.lists.values() if sgl.adapter == adapter)

    def lists_from_mdl(self, address: int, holds: Callable[[int, int], bool]) -> tuple[SgList, ...]:
        """Live lists whose MDL chain holds the MDL at `address` (`holds(first, address)`)."""
        return tuple(sgl for sgl in self.lists.values() if sgl.mdl is not None and holds(sgl.mdl, address))


    def _calculate(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        current_va = as_int(event.arg("CurrentVa")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        pages = self.memory.target.span_pages(current_va, length)
        out.fact("calculated", (self.memory.target.sgl_bytes(pages), pages))
        size = as_int(event.arg("ScatterGatherListSize"))  # type: ignore[attr-defined]
        if size is not None and is_success(result):  # what the system reported, for the build that follows
            adapter = as_int(event.arg("DmaAdapter"))  # type: ignore[attr-defined]
            calculation = Calculation(
                adapter, current_va, length, size, as_int(event.arg("NumberOfMapRegisters")), event.location  # type: ignore[attr-defined]
            )
            remember(self.calculations, (adapter, current_va, length), calculation)

    def _build(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        storport = name.startswith("StorPort")
        if phase == "leave":
            self._settle_build(event, cpu, out, result)
            return
        mdl_address = as_int(event.arg("Mdl")) or 0  # type: ignore[attr-defined]
        length = as_int(event.arg("Length")) or 0  # type: ignore[attr-defined]
        current_va = as_int(event.arg("CurrentVa"))  # type: ignore[attr-defined]
        if current_va is None:  # the Ex routines give an offset into the MDL instead
            first = self.mdl_ddis.mdls.get(mdl_address)
            current_va = (first.va if first is not None else 0) + (as_int(event.arg("Offset")) or 0)  # type: ignore[attr-defined]
        chain = self.mdl_ddis.chain(mdl_address, out, current_va, length)
        not_resident = [m for m in chain if m.family != "assumed" and not m.resident]
        if not_resident:
            out.fact("mdl-not-resident", not_resident[0])
        adapter = self.adapter_ddis.adapter_for(event, storport)
        buffer_length = as_int(event.arg("ScatterGatherBufferLength" if storport else "ScatterGatherLength"))  # type: ignore[attr-defined]
        write = bool(as_bool(event.arg("WriteToDevice")))  # type: ignore[attr-defined]
        build = build_list(self.memory.target, adapter, chain, current_va, length, self.mdl_ddis.pfn_of, self._bounce_pages, buffer_length, storport)
        out.fact("build", build)
        if build.outside:
            out.fact("outside-mdl", build.outside)
        buffer = as_int(event.arg("ScatterGatherBuffer"))  # type: ignore[attr-defined]
        if buffer is None:  # Get: the list's address arrives with AdapterListControl
            buffer = -self.ordinals.value - 1
        sgl = SgList(
            ordinal=self.ordinals.next(),
            buffer=buffer,
            ddi=name,
            adapter=None if storport else adapter.address,
            storport=storport,
            mdl=mdl_address,
            current_va=current_va,
            length=length,
            write_to_device=write,
            build=build,
            segments=build.segments,
            buffer_length=buffer_length,
            status=build.status,
            built_at=event.location,
        )
        if phase == "call":
            if result is not None and is_success(result) != (build.status.endswith("SUCCESS")):
                out.fact("status-differs", (build.status, result))
            if not is_success(result):
                self._release_bounce(build.segments)
                out.fact("failed", result)
                self._remember_failed(sgl, result)
                return
        self._add_list(sgl, out)
        if phase == "enter":
            self.pending_build(cpu)[name] = sgl.ordinal

    def pending_build(self, cpu: CpuState) -> dict[str, int]:
        """Lists built by an `enter` not yet left on this CPU, by DDI name."""
        return self._pending.setdefault(cpu.number, {})

    def _settle_build(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None) -> None:
        ordinal = self.pending_build(cpu).pop(event.name, None)  # type: ignore[attr-defined]
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            return
        out.previous.append(sgl)  # the list its `enter` made, as the `leave` finds it
        if result is not None and is_success(result) != sgl.status.endswith("SUCCESS"):
            out.fact("status-differs", (sgl.status, result))
        if not is_success(result):
            out.fact("failed", result)
            self.drop_list(sgl)
            out.released.append(sgl)
            self._remember_failed(sgl, result)

    def _remember_failed(self, sgl: SgList, result: Value | None) -> None:
        """A build that failed: its buffer holds no list, and a later use of it is a use of a
        failed build (kept for the most recent RETIRED_MEMORY buffers)."""
        status = result.name if isinstance(result, Symbol) else status_name(as_int(result) or 0, sgl.storport)
        remember(self.failed_lists, sgl.buffer, replace(sgl, status=status))

    def bind_got_list(self, event: Callback, ordinal: int) -> None:
        """GetScatterGatherList's AdapterListControl runs: the list (`ordinal`) is at its
        ScatterGather argument, the address the system allocated it at."""
        pointer = as_int(event.arg("ScatterGather"))
        sgl = self.lists.get(ordinal)
        if sgl is None or pointer is None:
            return
        if self.list_in_buffer.get(sgl.buffer) == sgl.ordinal:
            del self.list_in_buffer[sgl.buffer]
        sgl = replace(sgl, buffer=pointer)
        self.lists[sgl.ordinal] = sgl
        self.list_in_buffer[pointer] = sgl.ordinal

    def _add_list(self, sgl: SgList, out: EffectsBuilder) -> None:
        self.failed_lists.pop(sgl.buffer, None)
        old = self.list_in_buffer.get(sgl.buffer)
        if old is not None and old in self.lists:
            out.fact("buffer-live", self.lists[old])
        self.lists[sgl.ordinal] = sgl
        self.list_in_buffer[sgl.buffer] = sgl.ordinal
        self._map_list(sgl)
        shift = self.memory.space.shift
        for vpn in range(sgl.current_va >> shift, ((sgl.current_va + max(sgl.length, 1) - 1) >> shift) + 1):
            self.list_pages.setdefault(vpn, set()).add(sgl.ordinal)
        out.created.append(sgl)

    def _map_list(self, sgl: SgList) -> None:
        for index, segment in enumerate(sgl.segments):
            self.memory.bus.add(BusEntry(segment.bus, max(segment.length, 1), "sgl", sgl.ordinal, index))
            if segment.bounced and sgl.write_to_device:
                done = 0
                for phys, n in segment.chunks:
                    self.memory.bounce_memory.write(segment.bus + done, self.memory.ram.read(phys, n))
                    done += n

    def _renew_list(self, sgl: SgList) -> None:
        """`_unmap_list` then `_map_list` of the same direct segments, in one step per segment."""
        for index, segment in enumerate(sgl.segments):
            self.memory.bus.renew(BusEntry(segment.bus, max(segment.length, 1), "sgl", sgl.ordinal, index))

    def _unmap_list(self, sgl: SgList, copy_back: bool) -> None:
        for index, segment in enumerate(sgl.segments):
            if segment.bounced and copy_back:
                done = 0
                for phys, n in segment.chunks:
                    self.memory.ram.write(phys, self.memory.bounce_memory.read(segment.bus + done, n))
                    done += n
            self.memory.bus.retire(BusEntry(segment.bus, max(segment.length, 1), "sgl", sgl.ordinal, index))
        self._release_bounce(sgl.segments)

    def _release_bounce(self, segments: tuple[Segment, ...]) -> None:
        """Free the map-register pages of bounced segments, and forget their bytes: exactly the
        pages each segment's run of registers occupies, never a neighbour's."""
        mask = self.memory.target.page_size - 1
        for segment in segments:
            if segment.bounced:
                self.memory.window.release(segment.bus, segment.length)
                first = segment.bus & ~mask
                end = (segment.end + mask) & ~mask
                self.memory.bounce_memory.discard(first, end - first)

    def _bounce_pages(self, count: int) -> int:
        return self.memory.window.allocate(count)

    def drop_list(self, sgl: SgList, put: SgList | None = None) -> None:
        self.lists.pop(sgl.ordinal, None)
        if self.list_in_buffer.get(sgl.buffer) == sgl.ordinal:
            del self.list_in_buffer[sgl.buffer]
        shift = self.memory.space.shift
        for vpn in range(sgl.current_va >> shift, ((sgl.current_va + max(sgl.length, 1) - 1) >> shift) + 1):
            owners = self.list_pages.get(vpn)
            if owners is not None:
                owners.discard(sgl.ordinal)
                if not owners:
                    del self.list_pages[vpn]
        self._unmap_list(sgl, copy_back=put is not None and not sgl.write_to_device)

    def _put(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        pointer = as_int(event.arg("ScatterGatherList" if name.startswith("StorPort") else "ScatterGather"))  # type: ignore[attr-defined]
        write = as_bool(event.arg("WriteToDevice"))  # type: ignore[attr-defined]
        if write is not None:
            out.fact("put-direction", write)
        ordinal = self.list_in_buffer.get(pointer) if pointer is not None else None
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            earlier = self.put_lists.get(pointer) if pointer is not None else None
            failed = self.failed_lists.get(pointer) if pointer is not None else None
            if earlier is not None:
                out.fact("list-put-before", earlier)
                out.previous.append(earlier)
            elif failed is not None:
                out.fact("list-failed", failed)
            else:
                out.fact("list-unknown", pointer)
            return
        out.previous.append(sgl)
        put = sgl.as_put(event.location, name)
        self.drop_list(sgl, put=put)
        remember(self.put_lists, sgl.buffer, put)
        if self.memory.bus.has_retired("sgl", put.ordinal):  # kept while a retired mapping can lead `owner` to it
            self.put_by_ordinal[put.ordinal] = put
        out.released.append(put)

    def sgl_record(self, record: SglRecord, out: EffectsBuilder) -> None:
        ordinal = self.list_in_buffer.get(record.address)
        sgl = self.lists.get(ordinal) if ordinal is not None else None
        if sgl is None:
            failed = self.failed_lists.get(record.address)
            if failed is not None:  # the build failed and made no list: a capture of it maps nothing
                out.fact("list-failed", failed)
                return
            out.fact("list-for-sgl-unknown", record.address)
            segments = []
            offset = 0
            for element in record.elements:
                segments.append(Segment(element.address, element.length, offset, False, ((element.address, element.length),)))
                offset += element.length
            build = ListBuild(tuple(segments), len(segments), self.memory.target.sgl_bytes(len(segments)), "STATUS_SUCCESS")
            sgl = SgList(self.ordinals.next(), record.address, "sgl", None, False, None, 0, offset, False, build, build.segments,
                         None, build.status, record.location, captured=record.elements, captured_at=record.location)
            self.lists[sgl.ordinal] = sgl
            self.list_in_buffer[sgl.buffer] = sgl.ordinal
            self._map_list(sgl)
            out.created.append(sgl)
            return
        adopted, differences = segments_from_capture(record.elements, sgl.build.segments)
        if differences:
            out.fact("sgl-differs", differences)
        out.previous.append(sgl)
        updated = sgl.with_capture(adopted, record.elements, record.location)
        self.lists[sgl.ordinal] = updated
        if adopted == sgl.segments and not any(segment.bounced for segment in adopted):
            self._renew_list(updated)  # the capture confirms the device's mapping: no map register, no byte moves
        else:
            self._unmap_list(sgl, copy_back=False)
            for segment in adopted:
                if segment.bounced:
                    self.memory.window.reserve(segment.bus, segment.length)
            self._map_list(updated)
        out.created.append(updated)
        adapter = self.adapter_ddis.storport_adapter if sgl.storport else self.adapter_ddis.adapters.get(sgl.adapter) if sgl.adapter is not None else None
        if adapter is not None:
            beyond = tuple(s for s in adopted if not s.bounced and s.end - 1 > adapter.limit)
            if beyond:
                out.fact("beyond-limit", (beyond[0], adapter))
