"""The driver's routines on each CPU: what `enter`/`leave` and `callback`/`done` open and
close (frames, with the level each entered at), the routines a DDI queued to run later, and
the level each routine the system runs is entered at (its documentation page)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from .channel_ddis import ChannelDdis
from .cpu import CpuState, DeferredRoutine, Frame, HeldLock
from .effects import EffectsBuilder
from .events import Callback, Done, Event, Leave
from .irql import DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL, Irql
from .location import SourceLocation
from .retained import remember
from .sgl_ddis import SglDdis
from .status import is_success
from .values import Value, as_int

__all__ = ["DEFAULT_CPU", "ROUTINE_IRQL", "RUNS_ROUTINE_AT_DISPATCH", "Routines"]

DEFAULT_CPU = 0

# Routines the system runs, and the level it runs them at (wdm.h, storport.h callback pages).
ROUTINE_IRQL: dict[str, Irql] = {
    **{name: DISPATCH_LEVEL for name in ("AdapterControl", "AdapterListControl", "StartIo", "DpcForIsr", "CustomDpc",
                                        "HwStorStartIo", "HwStorBuildIo", "HwStorDpcRoutine", "HwStorTimer")},
    **{name: DIRQL for name in ("InterruptService", "HwStorInterrupt", "HwMSIInterruptRoutine", "SynchCritSection")},
    # "The port driver calls HwStorPassiveInitializeRoutine at PASSIVE_LEVEL" (nc-storport-hw_passive_initialize_routine);
    # "In most cases, StorPort calls the HwStorFindAdapter routine at IRQL == PASSIVE_LEVEL" (nc-storport-hw_find_adapter)
    **{name: PASSIVE_LEVEL for name in ("HwStorPassiveInitializeRoutine", "HwStorFindAdapter")},
}
# DDIs that run a driver routine (a `callback` inside their `enter`, or later) at DISPATCH_LEVEL.
RUNS_ROUTINE_AT_DISPATCH = {
    "AllocateAdapterChannel", "AllocateAdapterChannelEx", "BuildScatterGatherList", "BuildScatterGatherListEx",
    "GetScatterGatherList", "GetScatterGatherListEx", "StorPortBuildScatterGatherList",
}



def _context_of(arguments: tuple) -> int | None:
    """The Context argument of a DDI or routine that carries one (AllocateAdapterChannelEx
    calls it ExecutionContext)."""
    return next((as_int(a.value) for a in arguments if a.name in ("Context", "ExecutionContext")), None)



Invoke = Callable[[Event, CpuState, EffectsBuilder, "Value | None", str], None]


class Routines:
    """The CPUs (their level, locks and open frames) and the queue of routines to run later.
    `invoke` is the machine's DDI dispatch, which a `leave` runs with its enter's arguments;
    the list family and the channel family hear when their routine runs or returns."""

    QUERIES: dict[str, str] = {"open_frames": "open_frames"}  # what a rule's `each:` may ask at the end

    def __init__(self, sgl_ddis: SglDdis, channel_ddis: ChannelDdis, deferred_routines: OrderedDict[int, DeferredRoutine],
                 invoke: Invoke) -> None:
        self.cpus: dict[int, CpuState] = {}
        self.sgl_ddis = sgl_ddis
        self.channel_ddis = channel_ddis
        self.deferred_routines = deferred_routines
        self.invoke = invoke

    def cpu(self, number: int) -> CpuState:
        state = self.cpus.get(number)
        if state is None:
            state = self.cpus[number] = CpuState(number)
        return state

    def cpu_of(self, event: Event) -> CpuState:
        """The CPU an event ran on; CPU 0 where the capture does not say."""
        number = event.context.cpu
        return self.cpu(DEFAULT_CPU if number is None else number)

    def callback(self, event: Callback, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        enter = cpu.frames[-1] if cpu.frames and cpu.frames[-1].kind == "enter" else None
        ordinal = None
        if enter is not None:
            runs_for, arguments = enter.name, enter.arguments
            if enter.name in RUNS_ROUTINE_AT_DISPATCH:
                cpu.frames[-1] = replace(enter, ran_routine=True)
                ordinal = self.sgl_ddis.pending_build(cpu).get(enter.name)
        else:  # a routine the DDI queued runs now, maybe on another CPU: its request, by Context
            deferred = self.deferred_routines.pop(_context_of(event.arguments), None)
            runs_for, arguments = (deferred.ddi, deferred.arguments) if deferred is not None else (None, ())
            if deferred is not None:
                ordinal = deferred.ordinal
                out.fact("deferred-routine", deferred)
        expected = DISPATCH_LEVEL if runs_for in RUNS_ROUTINE_AT_DISPATCH else ROUTINE_IRQL.get(event.name)
        captured = event.context.irql
        if expected is not None and captured is not None and not captured.is_level(expected):
            out.fact("routine-irql", (expected, captured))
        entry = captured if captured is not None else expected if expected is not None else cpu.irql
        cpu.frames.append(Frame("callback", event.name, event.location, entry, cpu.irql, runs_for, arguments))
        cpu.irql = entry
        if runs_for in ("GetScatterGatherList", "GetScatterGatherListEx") and ordinal is not None:
            self.sgl_ddis.bind_got_list(event, ordinal)
        return entry

    def done(self, event: Done, cpu: CpuState, out: EffectsBuilder) -> Irql | None:
        index = cpu.innermost("callback", event.name)
        at_return = event.context.irql if event.context.irql is not None else cpu.irql
        if index is None:
            out.fact("no-open-callback", event.name)
            cpu.irql = at_return
            return at_return
        frame = cpu.frames[index]
        out.fact("done-irql", (frame.entry_irql, at_return))
        held = [lock for lock in cpu.locks if lock.frame_depth > index]
        if held:
            out.fact("locks-held-at-done", tuple(held))
        out.previous.append(frame)
        if frame.runs_for in ("AllocateAdapterChannel", "AllocateAdapterChannelEx"):
            self.channel_ddis.adapter_control_returned(frame.arguments, event, out)
        del cpu.frames[index:]
        cpu.settle_locks(index)  # a lock the routine leaked is reported once, at its `done`
        cpu.irql = frame.saved_irql  # None when the level before the routine was never known
        return at_return

    def leave(self, event: Leave, cpu: CpuState, out: EffectsBuilder) -> None:
        index = cpu.innermost("enter", event.name)
        if index is None:
            out.fact("no-open-enter", event.name)
            return
        frame = cpu.frames[index]
        del cpu.frames[index:]
        cpu.settle_locks(index)
        out.previous.append(frame)
        if frame.name in RUNS_ROUTINE_AT_DISPATCH and not frame.ran_routine and is_success(event.result):
            self._defer_routine(frame, cpu, event.location)
        if frame.arguments:  # the DDI acts on the arguments it was entered with (a leave's out-arguments first)
            event = Leave(location=event.location, context=event.context, name=event.name,
                          arguments=(*event.arguments, *frame.arguments), result=event.result)
        self.invoke(event, cpu, out, event.result, phase="leave")

    def _defer_routine(self, enter: Frame, cpu: CpuState, at: SourceLocation) -> None:
        """The DDI returned success without running the driver's routine: the system queued it
        until the adapter or map registers are free ("called at DISPATCH_LEVEL when the system
        DMA controller or bus-master adapter is available", PGET_SCATTER_GATHER_LIST and
        PBUILD_SCATTER_GATHER_LIST, wdm.h; PALLOCATE_ADAPTER_CHANNEL likewise), to be paired
        with the `callback` that carries the request's Context."""
        context = _context_of(enter.arguments)
        if context is None:
            return
        request = DeferredRoutine(enter.name, enter.arguments, self.sgl_ddis.pending_build(cpu).get(enter.name), enter.location, at)
        remember(self.deferred_routines, context, request)

    def open_enter(self, cpu: int) -> Frame | None:
        """The innermost `enter` still open on a CPU (the DDI a `callback` there runs for), or None."""
        state = self.cpu(cpu)
        index = state.innermost("enter")
        return state.frames[index] if index is not None else None

    def open_routine(self, cpu: int) -> Frame | None:
        """The innermost driver routine (`callback`) still running on a CPU, or None."""
        state = self.cpu(cpu)
        index = state.innermost("callback")
        return state.frames[index] if index is not None else None

    def open_frames(self) -> list[Frame]:
        """Frames still open on any CPU, in CPU order then call order."""
        return [frame for number in sorted(self.cpus) for frame in self.cpus[number].frames]

    def irql(self, cpu: int) -> Irql | None:
        return self.cpu(cpu).irql

    def held_locks(self, cpu: int) -> tuple[HeldLock, ...]:
        return tuple(self.cpu(cpu).locks)

