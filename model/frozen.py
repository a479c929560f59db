"""A cheaper `__init__` for the frozen value classes the model makes on every event.

A frozen dataclass's generated `__init__` stores each field with `object.__setattr__` (the
class's own `__setattr__` refuses), which costs about as much as the rest of making the object;
the model makes several per event (the `Effects`, bus entries, frames, list segments, snapshots
of blocks, MDLs and lists), so that was the largest single item of `Machine.apply`'s profile.
`fast_init` stores through the slots' descriptors instead: the same parameters and defaults,
and the class stays a frozen dataclass (assignment still raises `FrozenInstanceError`;
`dataclasses.replace`, equality, hashing and `repr` are the dataclass's own).
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import TypeVar

__all__ = ["fast_init"]

T = TypeVar("T", bound=type)


def fast_init(cls: T) -> T:
    """Give a frozen, slotted dataclass (positional fields, plain defaults) a faster `__init__`."""
    if not is_dataclass(cls) or not cls.__dataclass_params__.frozen or "__slots__" not in cls.__dict__:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    namespace: dict[str, object] = {}
    parameters: list[str] = []
    body: list[str] = []
    for field in fields(cls):
        if field.default_factory is not MISSING or not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: only positional fields with plain defaults")
        if field.default is MISSING:
            parameters.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            parameters.append(f"{field.name}=_default_{field.name}")
        namespace[f"_set_{field.name}"] = cls.__dict__[field.name].__set__
        body.append(f"    _set_{field.name}(self, {field.name})\n")
    exec(f"def __init__(self, {', '.join(parameters)}):\n{''.join(body)}", namespace)  # as dataclasses makes its own
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # the same signature, as inspect shows it
    cls.__init__ = init  # type: ignore[misc]
    return cls
