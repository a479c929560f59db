"""Replaying IRQL changes and spin locks: KeRaiseIrql/KeLowerIrql, Ke* and StorPort spin locks."""

from __future__ import annotations

from .cpu import CpuState, HeldLock
from .effects import EffectsBuilder
from .events import Event
from .irql import DIRQL, DISPATCH_LEVEL, Irql, irql_of
from .retained import RAISED_LEVELS
from .values import Value, as_int, symbol_name

__all__ = ["LockDdis"]


class LockDdis:
    """The IRQL and spin-lock DDIs: a family of the machine. It keeps no state of its own:
    the level and the locks held are the CPU's (`CpuState`), handed to each handler.
    `HANDLERS` maps each DDI to the method that replays it."""

    HANDLERS: dict[str, str] = {
        "KeRaiseIrql": "_raise_lower",
        "KeLowerIrql": "_raise_lower",
        "KeRaiseIrqlToDpcLevel": "_raise_lower",
        "KeAcquireSpinLock": "_acquire",
        "KfAcquireSpinLock": "_acquire",
        "KeAcquireSpinLockRaiseToDpc": "_acquire",
        "KeAcquireSpinLockAtDpcLevel": "_acquire",
        "KeAcquireInStackQueuedSpinLock": "_acquire",
        "KeAcquireInStackQueuedSpinLockAtDpcLevel": "_acquire",
        "StorPortAcquireSpinLock": "_acquire",
        "KeReleaseSpinLock": "_release",
        "KfReleaseSpinLock": "_release",
        "KeReleaseSpinLockFromDpcLevel": "_release",
        "KeReleaseInStackQueuedSpinLock": "_release",
        "KeReleaseInStackQueuedSpinLockFromDpcLevel": "_release",
        "StorPortReleaseSpinLock": "_release",
    }


    def _raise_lower(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        if name == "KeRaiseIrqlToDpcLevel":
            level: Irql | None = DISPATCH_LEVEL
        else:
            level = irql_of(event.arg("NewIrql"))  # type: ignore[attr-defined]
        if level is None:
            return
        if name != "KeLowerIrql" and cpu.irql is not None and level < cpu.irql:
            out.fact("raise-below-current", (cpu.irql, level))
        if name == "KeLowerIrql" and cpu.irql is not None and level > cpu.irql:
            out.fact("lower-above-current", (cpu.irql, level))
        if name == "KeLowerIrql":
            saved = cpu.raised.pop() if cpu.raised else None
            if cpu.raised_at:
                out.fact("raised-at", cpu.raised_at.pop())
            if saved is not None and level != saved:
                out.fact("restores-other-irql", (saved, level))
        else:
            cpu.raised.append(cpu.irql)
            cpu.raised_at.append(event.location)  # type: ignore[attr-defined]
            if len(cpu.raised) > RAISED_LEVELS:  # raises never lowered: keep the innermost (see `retained`)
                del cpu.raised[0], cpu.raised_at[0]
        cpu.irql = level

    def _lock_key(self, event: Event) -> tuple[object, str, Irql]:
        name = event.name  # type: ignore[attr-defined]
        if name == "StorPortAcquireSpinLock":
            kind = symbol_name(event.arg("SpinLock")) or str(event.arg("SpinLock"))  # type: ignore[attr-defined]
            return ("storport", kind), "storport", DIRQL if kind == "InterruptLock" else DISPATCH_LEVEL
        lock = as_int(event.arg("SpinLock"))  # type: ignore[attr-defined]
        if "InStackQueued" in name:
            return lock, "queued", DISPATCH_LEVEL
        if name == "KeAcquireSpinLockAtDpcLevel":
            return lock, "dpc", DISPATCH_LEVEL
        return lock, "ke", DISPATCH_LEVEL

    def _acquire(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        key, family, level = self._lock_key(event)
        if family == "storport":
            out.fact("storport-locks-held", tuple(_storport_kind(lock) for lock in cpu.locks if lock.family == "storport"))
        held = cpu.holding(key)  # the same lock, whatever handle acquired it
        if held is not None:
            out.fact("lock-held", held)
        handle = as_int(event.arg("LockHandle"))  # type: ignore[attr-defined]
        lock = HeldLock((key, handle) if handle is not None and family in ("queued", "storport") else key, family,
                        event.name, cpu.irql, event.location, len(cpu.frames))  # type: ignore[attr-defined]
        cpu.locks.append(lock)
        if cpu.irql is None or cpu.irql < level:
            cpu.irql = level
        out.created.append(lock)

    def _release(self, event: Event, cpu: CpuState, out: EffectsBuilder, result: Value | None, phase: str) -> None:
        name = event.name  # type: ignore[attr-defined]
        handle = as_int(event.arg("LockHandle"))  # type: ignore[attr-defined]
        if handle is not None:
            held = next((lock for lock in cpu.locks if isinstance(lock.key, tuple) and lock.key[1:] == (handle,)), None)
        else:
            key = as_int(event.arg("SpinLock"))  # type: ignore[attr-defined]
            held = cpu.holding(key)
        if held is None:
            out.fact("lock-not-held", handle if handle is not None else as_int(event.arg("SpinLock")))  # type: ignore[attr-defined]
            token = ("handle", handle) if handle is not None else ("lock", as_int(event.arg("SpinLock")))  # type: ignore[attr-defined]
            before = cpu.released_locks.get(token)
            if before is not None:
                out.fact("lock-released-before", before)
            return
        family = "dpc" if name == "KeReleaseSpinLockFromDpcLevel" else "queued" if "InStackQueued" in name else (
            "storport" if name.startswith("StorPort") else "ke")
        if family != held.family:
            out.fact("lock-family", (held.family, family))
        cpu.locks.remove(held)
        released = held.as_released(event.location)  # type: ignore[attr-defined]
        cpu.remember_release(released, handle)
        out.released.append(released)
        new = irql_of(event.arg("NewIrql"))  # type: ignore[attr-defined]
        if new is not None:
            if held.old_irql is not None and new != held.old_irql:
                out.fact("restores-other-irql", (held.old_irql, new))
            cpu.irql = new
        elif family in ("queued", "storport") and held.old_irql is not None:
            cpu.irql = held.old_irql


def _storport_kind(lock: HeldLock) -> object:
    """The StorPort lock type (InterruptLock, StartIoLock, DpcLock...) of a held StorPort lock."""
    key = lock.key
    if isinstance(key, tuple) and isinstance(key[0], tuple):  # (("storport", kind), handle)
        key = key[0]
    return key[1] if isinstance(key, tuple) else key
