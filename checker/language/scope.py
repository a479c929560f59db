"""What a rule expression is evaluated against (`Scope`: one event's effects, the machine, an
item), and trace values as expressions see them (`normalize`). The compiler
(expression.py) and the functions rules call (rule_functions.py) both stand on this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from model.values import NullType, Symbol

__all__ = ["Expression", "Scope", "normalize"]


class Scope:
    """What an expression is evaluated against: one event's effects, the machine, an item."""

    __slots__ = ("effects", "record", "machine", "item", "context", "arguments")

    def __init__(self, effects: Any, machine: Any, context: Any = None, item: Any = None) -> None:
        self.effects = effects
        self.record = effects.record if effects is not None else None
        self.machine = machine
        self.context = context  # the engine's per-trace state functions may ask (known DDIs)
        self.item = item
        self.arguments: dict[str, Any] | None = None  # the record's arguments by name, made when first asked

    def with_item(self, item: Any) -> Scope:
        inner = Scope(self.effects, self.machine, self.context, item)
        inner.arguments = self.arguments
        return inner


Expression = Callable[[Scope], Any]


def normalize(value: Any) -> Any:
    """A trace value as expressions see it: symbols as their names, NULL as 0."""
    cls = type(value)
    if cls is Symbol:
        return value.name
    if cls is NullType:
        return 0
    if cls in _PLAIN:
        return value
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, NullType):
        return 0
    return value


_PLAIN = frozenset({int, str, bool, type(None), tuple})
