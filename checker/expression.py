"""Rule expressions: compiled once at load time into closures over a `Scope`, never `eval`.

The language (`grammar/rule-expression.lark`) has paths rooted at a fixed set of names,
constants, comparisons, `in`, boolean operators, + - * & | and calls of the functions in
`checker/rule_functions.py`. Its meaning, in brief (docs/rules.md has the whole of it):

- roots: `event` (the record), `arg` (its arguments by name; at a `leave`, its `enter`'s
  too), `result` (its return value),
  `irql` (the level it ran at), `cpu`, `fact` (`fact.block_freed_before` is the model's fact
  `block-freed-before`), `created` / `released` / `previous` / `accesses` (what the model
  says the event did), `item` (the element a check iterates over).
- `a.b` reads a field of a model object or a `{...}` structure; `a.0` an element of a tuple.
- a bare name that is not a root is a constant: `DISPATCH_LEVEL` (an IRQL), `TRUE`, `FALSE`,
  `NULL`, `none`; anything else capitalised is a symbol (`NonPagedPoolNx`, `STATUS_SUCCESS`).
- a missing value (an argument not logged, a fact not reported) is `none`; every path through
  it is `none`, and every comparison with it is false.
- `a if condition else b` chooses.
- symbols and numbers compare by value: `result == STATUS_BUFFER_TOO_SMALL` holds for
  `-> 0xC0000023` too; IRQLs compare by level, whatever name the capture used.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, VisitError

from model.irql import Irql, irql_of
from model.status import VALUES as STATUS_VALUES
from model.values import NullType, Struct, Symbol

from .resources import grammar_path

__all__ = ["Expression", "ExpressionError", "Scope", "compile_expression", "normalize", "truth"]

ROOTS = ("event", "arg", "result", "irql", "cpu", "fact", "created", "released", "previous", "accesses", "item")
_CONSTANTS: dict[str, Any] = {"TRUE": True, "FALSE": False, "NULL": 0, "none": None, "true": True, "false": False}


class ExpressionError(Exception):
    """An expression that does not compile; `column` is 1-based within the expression."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class Scope:
    """What an expression is evaluated against: one event's effects, the machine, an item."""

    __slots__ = ("effects", "record", "machine", "item", "context")

    def __init__(self, effects: Any, machine: Any, context: Any = None, item: Any = None) -> None:
        self.effects = effects
        self.record = effects.record if effects is not None else None
        self.machine = machine
        self.context = context  # the engine's per-trace state functions may ask (known DDIs)
        self.item = item

    def with_item(self, item: Any) -> Scope:
        return Scope(self.effects, self.machine, self.context, item)


Expression = Callable[[Scope], Any]


def normalize(value: Any) -> Any:
    """A trace value as expressions see it: symbols as their names, NULL as 0."""
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, NullType):
        return 0
    return value


def _number(value: Any) -> Any:
    """The number a symbolic status or IRQL name stands for, for comparing with numbers."""
    if isinstance(value, str):
        if value in STATUS_VALUES:
            return STATUS_VALUES[value]
        level = irql_of(Symbol(value))
        return level.level if level is not None else value
    if isinstance(value, Irql):
        return value.level
    return value


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if left == right and type(left) is type(right):
        return True
    if isinstance(left, bool) or isinstance(right, bool):
        return left == right
    return _number(left) == _number(right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    function = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
    try:
        return bool(function(_number(left), _number(right)))
    except TypeError:
        return False


def _contains(container: Any, member: Any) -> bool:
    if container is None or member is None:
        return False
    if isinstance(container, str):
        return isinstance(member, str) and member in container
    try:
        return any(_equal(member, element) for element in container)
    except TypeError:
        return False


def _attribute(value: Any, name: str) -> Any:
    """A field of a model object or a structure; `none` for anything else."""
    if value is None:
        return None
    if isinstance(value, Struct):
        return normalize(value.get(name))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if name in _public_attributes(type(value)):
            return normalize(getattr(value, name))
        return None
    if isinstance(value, Irql) and name in ("level", "name"):
        return getattr(value, name)
    return None


@cache
def _public_attributes(cls: type) -> frozenset[str]:
    names = {field.name for field in dataclasses.fields(cls)}
    if isinstance(getattr(cls, "verb", None), str):
        names.add("verb")  # an event's verb is a class attribute
    names.update(name for name, member in vars(cls).items() if isinstance(member, property))
    for base in cls.__mro__[1:]:
        names.update(name for name, member in vars(base).items() if isinstance(member, property))
    return frozenset(name for name in names if not name.startswith("_"))


def _index(value: Any, position: int) -> Any:
    if isinstance(value, (tuple, list)) and position < len(value):
        return normalize(value[position])
    return None


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right  # joining text, for messages
    left, right = _number(left), _number(right)
    if not isinstance(left, int) or not isinstance(right, int):
        return None
    return {"+": operator.add, "-": operator.sub, "*": operator.mul, "&": operator.and_, "|": operator.or_}[op](left, right)


def _fact_key(name: str) -> str:
    return name.replace("_", "-")


def _root(name: str) -> Expression:
    if name == "event":
        return lambda scope: scope.record
    if name == "result":
        return lambda scope: normalize(getattr(scope.record, "result", None))
    if name == "irql":
        return lambda scope: scope.effects.irql
    if name == "cpu":
        return lambda scope: scope.effects.cpu
    if name == "item":
        return lambda scope: normalize(scope.item)
    if name in ("created", "released", "previous", "accesses"):
        return lambda scope: getattr(scope.effects, name)
    raise ExpressionError(f"'{name}' needs a field: {name}.<name>")


def _argument(name: str) -> Expression:
    def read(scope: Scope) -> Any:
        record = scope.record
        find = getattr(record, "arg", None)
        value = find(name) if find is not None else None
        if value is None and getattr(record, "verb", None) == "leave":
            value = _entered_with(scope, name)
        return normalize(value)

    return read


def _entered_with(scope: Scope, name: str) -> Any:
    """At a `leave`, an argument of its `enter` (a leave logs only out-arguments)."""
    for frame in scope.effects.previous:
        if getattr(frame, "kind", None) == "enter" and frame.name == scope.record.name:
            for argument in frame.arguments:
                if argument.name == name:
                    return argument.value
    return None


def _fact(name: str) -> Expression:
    key = _fact_key(name)
    return lambda scope: normalize(scope.effects.fact(key))


@v_args(inline=True)
class _Compiler(Transformer):
    """Turns an expression tree into a closure. Each node is a pair (closure, root name):
    the root name is set while the node is a bare root (`fact`, `arg`) waiting for its field."""

    def __init__(self, functions: dict[str, tuple[Callable, int, int]]) -> None:
        super().__init__()
        self.functions = functions

    @staticmethod
    def _closure(node: Any) -> Expression:
        function, root = node
        if root is not None:
            raise ExpressionError(f"'{root}' needs a field: {root}.<name>")
        return function

    def name(self, token: Token) -> Any:
        text = str(token)
        if text in ("fact", "arg"):
            return (None, text)
        if text in ROOTS:
            return (_root(text), None)
        if text in _CONSTANTS:
            value = _CONSTANTS[text]
            return (lambda scope: value, None)
        level = irql_of(Symbol(text))
        if level is not None and (text.endswith("_LEVEL") or text == "DIRQL"):
            return (lambda scope: level, None)
        if text[0].isupper():
            return (lambda scope: text, None)
        raise ExpressionError(f"unknown name '{text}' (names are {', '.join(ROOTS)}; constants are capitalised)",
                              token.column or 1)

    def number(self, token: Token) -> Any:
        value = int(str(token), 0)
        return (lambda scope: value, None)

    def string(self, token: Token) -> Any:
        value = str(token)[1:-1]
        return (lambda scope: value, None)

    def list_(self, *items: Any) -> Any:
        parts = [self._closure(item) for item in items if item is not None]
        return (lambda scope: tuple(part(scope) for part in parts), None)

    def attribute(self, target: Any, token: Token) -> Any:
        function, root = target
        field = str(token)
        if root == "fact":
            return (_fact(field), None)
        if root == "arg":
            return (_argument(field), None)
        return (lambda scope: _attribute(function(scope), field), None)

    def index(self, target: Any, token: Token) -> Any:
        function = self._closure(target)
        position = int(str(token))
        return (lambda scope: _index(function(scope), position), None)

    def call(self, token: Token, *arguments: Any) -> Any:
        name = str(token)
        entry = self.functions.get(name)
        if entry is None:
            raise ExpressionError(f"unknown function '{name}' (functions: {', '.join(sorted(self.functions))})",
                                  token.column or 1)
        function, least, most = entry
        parts = [self._closure(argument) for argument in arguments if argument is not None]
        if not least <= len(parts) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExpressionError(f"{name}() takes {wanted} argument{'s' if most != 1 else ''}, not {len(parts)}",
                                  token.column or 1)
        return (lambda scope: function(scope, *(part(scope) for part in parts)), None)

    def choose(self, then: Any, condition: Any, otherwise: Any) -> Any:
        a, test, b = self._closure(then), self._closure(condition), self._closure(otherwise)
        return (lambda scope: a(scope) if truth(test(scope)) else b(scope), None)

    def negate(self, operand: Any) -> Any:
        function = self._closure(operand)
        return (lambda scope: _arith("-", 0, function(scope)), None)

    def arith(self, left: Any, op: Token, right: Any) -> Any:
        a, b, symbol = self._closure(left), self._closure(right), str(op)
        return (lambda scope: _arith(symbol, a(scope), b(scope)), None)

    def compare(self, left: Any, op: Token, right: Any) -> Any:
        a, b, symbol = self._closure(left), self._closure(right), str(op)
        return (lambda scope: _compare(symbol, a(scope), b(scope)), None)

    def in_(self, member: Any, container: Any) -> Any:
        a, b = self._closure(member), self._closure(container)
        return (lambda scope: _contains(b(scope), a(scope)), None)

    def not_in(self, member: Any, container: Any) -> Any:
        a, b = self._closure(member), self._closure(container)
        return (lambda scope: not _contains(b(scope), a(scope)), None)

    def not_(self, operand: Any) -> Any:
        function = self._closure(operand)
        return (lambda scope: not truth(function(scope)), None)

    def and_(self, *operands: Any) -> Any:
        parts = [self._closure(operand) for operand in operands]
        return (lambda scope: all(truth(part(scope)) for part in parts), None)

    def or_(self, *operands: Any) -> Any:
        parts = [self._closure(operand) for operand in operands]

        def either(scope: Scope) -> Any:
            for part in parts:
                value = part(scope)
                if truth(value):
                    return value
            return False

        return (either, None)


def truth(value: Any) -> bool:
    """Missing, zero, empty and FALSE are false; anything else (an object, a tuple of lists) true."""
    if value is None:
        return False
    if isinstance(value, (tuple, list, str, int)):
        return bool(value)
    return True


@cache
def _parser() -> Lark:
    path = grammar_path().with_name("rule-expression.lark")
    return Lark(path.read_text(encoding="utf-8"), parser="lalr", start="start", propagate_positions=False)


def compile_expression(text: str, functions: dict[str, tuple[Callable, int, int]] | None = None) -> Expression:
    """The closure an expression compiles to; ExpressionError (with a column) if it does not."""
    if functions is None:
        from .rule_functions import FUNCTIONS

        functions = FUNCTIONS
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression cannot be empty")
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as error:
        raise ExpressionError(f"unexpected character {text[error.pos_in_stream]!r}", error.column) from None
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        what = "end of the expression" if token is None or token.type == "$END" else f"'{token}'"
        raise ExpressionError(f"unexpected {what}", getattr(error, "column", 1) or 1) from None
    except LarkError as error:  # pragma: no cover - any other parse failure
        raise ExpressionError(str(error)) from None
    try:
        node = _Compiler(functions).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, ExpressionError):
            raise error.orig_exc from None
        raise
    return _Compiler._closure(node)

