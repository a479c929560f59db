"""Rule expressions: compiled once at load time into one Python function of a `Scope` each.

The function's source is generated from the expression's parse tree and names only this
module's helpers and the values the rule wrote, held in the function's environment: a
rule file's text is never handed to `eval`.

The language (`grammar/rule-expression.lark`) has paths rooted at a fixed set of names,
constants, comparisons, `in`, boolean operators, + - * & | and calls of the functions in
`checker/language/rule_functions.py`. Its meaning, in brief (docs/rules.md has the whole of it):

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

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, VisitError

from model.irql import Irql, irql_of
from model.status import VALUES as STATUS_VALUES
from model.values import Struct, Symbol

from ..resources import grammar_path, lark_cache
from .rule_functions import FUNCTIONS
from .scope import Expression, Scope, normalize

__all__ = ["Expression", "ExpressionError", "Scope", "compile_expression", "normalize", "required_facts", "truth"]

ROOTS = ("event", "arg", "result", "irql", "cpu", "fact", "created", "released", "previous", "accesses", "item")
_CONSTANTS: dict[str, Any] = {"TRUE": True, "FALSE": False, "NULL": 0, "none": None, "true": True, "false": False}


class ExpressionError(Exception):
    """An expression that does not compile; `column` is 1-based within the expression."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


_NUMBERS: dict[str, Any] = {}  # symbolic names met so far and the numbers they stand for


def _number(value: Any) -> Any:
    """The number a symbolic status or IRQL name stands for, for comparing with numbers."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        number = _NUMBERS.get(value)
        if number is None:
            if len(_NUMBERS) >= 4096:
                _NUMBERS.clear()  # bounded: a trace's own names are few
            number = _NUMBERS[value] = _number_of_name(value)
        return number
    if isinstance(value, Irql):
        return value.level
    return value


def _number_of_name(value: str) -> Any:
    if value in STATUS_VALUES:
        return STATUS_VALUES[value]
    level = irql_of(Symbol(value))
    return level.level if level is not None else value


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if left == right and type(left) is type(right):
        return True
    if isinstance(left, bool) or isinstance(right, bool):
        return left == right
    return _number(left) == _number(right)


def _equal_constant(left: Any, right: Any, number: Any) -> bool:
    """`_equal(left, right)` for a `right` known when the rule loads (not none, not a bool),
    `number` being `_number(right)`."""
    if left is None:
        return False
    if type(left) is bool:
        return _equal(left, right)
    return _number(left) == number


def _contains_constant(container: tuple, numbers: frozenset, member: Any) -> bool:
    """`_contains(container, member)` for a list the rule wrote, `numbers` holding
    `_number` of each element."""
    if member is None:
        return False
    if type(member) is bool:
        return _contains(container, member)
    try:
        return _number(member) in numbers
    except TypeError:  # unhashable member: one by one
        return _contains(container, member)


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
    cls = type(value)
    readable = _READABLE.get(cls)
    if readable is None:
        readable = _READABLE[cls] = _readable(cls)
    if readable is _STRUCT:
        return normalize(value.get(name))
    if name in readable:
        return normalize(getattr(value, name))
    return None


_STRUCT: frozenset[str] = frozenset({"<a structure: any field>"})
_READABLE: dict[type, frozenset[str]] = {}  # the fields expressions may read, by class


def _readable(cls: type) -> frozenset[str]:
    if issubclass(cls, Struct):
        return _STRUCT
    if dataclasses.is_dataclass(cls):
        return _public_attributes(cls)
    if issubclass(cls, Irql):
        return frozenset({"level", "name"})
    return frozenset()


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


def _fact_key(name: str) -> str:
    return name.replace("_", "-")


def _argument(scope: Scope, name: str) -> Any:
    """`arg.name`: the event's argument; at a `leave`, its `enter`'s (a leave logs only out-arguments)."""
    arguments = scope.arguments
    if arguments is None:  # the first argument a check asks of this event: index them all
        record = scope.record
        arguments = scope.arguments = {argument.name: argument.value for argument in getattr(record, "arguments", ())}
    value = arguments.get(name)
    if value is None and getattr(scope.record, "verb", None) == "leave":
        value = _entered_with(scope, name)
    return normalize(value)


def _entered_with(scope: Scope, name: str) -> Any:
    """At a `leave`, an argument of its `enter` (a leave logs only out-arguments)."""
    for frame in scope.effects.previous:
        if getattr(frame, "kind", None) == "enter" and frame.name == scope.record.name:
            for argument in frame.arguments:
                if argument.name == name:
                    return argument.value
    return None


def _ordering(function: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        try:
            return bool(function(_number(left), _number(right)))
        except TypeError:
            return False

    return compare


def _arithmetic(function: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        left, right = _number(left), _number(right)
        if not isinstance(left, int) or not isinstance(right, int):
            return None
        return function(left, right)

    return apply


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        return left + right  # joining text, for messages
    return _plus(left, right)


_plus = _arithmetic(operator.add)

# What generated expression code may name (besides its own `_kN` constants): nothing else.
_HELPERS: dict[str, Any] = {
    "__builtins__": {},
    "_getattr": getattr,
    "_normalize": normalize,
    "_truth": None,  # set below, once `truth` is defined
    "_attribute": _attribute,
    "_argument": _argument,
    "_index": _index,
    "_contains": _contains,
    "_contains_constant": _contains_constant,
    "_equal_constant": _equal_constant,
    "_eq": lambda left, right: _equal(left, right),
    "_ne": lambda left, right: left is not None and right is not None and not _equal(left, right),
    "_lt": _ordering(operator.lt),
    "_le": _ordering(operator.le),
    "_gt": _ordering(operator.gt),
    "_ge": _ordering(operator.ge),
    "_add": _add,
    "_sub": _arithmetic(operator.sub),
    "_mul": _arithmetic(operator.mul),
    "_and": _arithmetic(operator.and_),
    "_or": _arithmetic(operator.or_),
}


class _Node:
    """A compiled node: Python source for its value, or a bare root (`fact`, `arg`) waiting
    for its field."""

    __slots__ = ("source", "root", "constant", "boolean")

    def __init__(self, source: str = "", root: str | None = None, constant: bool = False, boolean: bool = False) -> None:
        self.source = source
        self.root = root
        self.constant = constant  # a value known when the rule loads
        self.boolean = boolean  # always True or False: needs no `truth()`


_ROOT_SOURCE = {
    "event": "s.record",
    "result": "_normalize(_getattr(s.record, 'result', None))",
    "irql": "s.effects.irql",
    "cpu": "s.effects.cpu",
    "item": "_normalize(s.item)",
    "created": "s.effects.created",
    "released": "s.effects.released",
    "previous": "s.effects.previous",
    "accesses": "s.effects.accesses",
}
_COMPARE = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_ARITH = {"+": "_add", "-": "_sub", "*": "_mul", "&": "_and", "|": "_or"}


@v_args(inline=True)
class _Compiler(Transformer):
    """Turns an expression tree into the source of one Python function of the scope `s`.

    The source is made only of this module's helper names, `_kN` constants and `_fN`
    functions (entries of the environment, where every string, number and name a rule file
    wrote ends up), `_tN` temporaries and integer literals the grammar checked: nothing a
    rule file says becomes code. One function per expression (instead of a closure per
    node) evaluates a rule's condition at a third of the cost."""

    def __init__(self, functions: dict[str, tuple[Callable, int, int]]) -> None:
        super().__init__()
        self.functions = functions
        self.environment: dict[str, Any] = dict(_HELPERS)
        self._temporaries = 0

    def _constant(self, value: Any) -> _Node:
        name = f"_k{len(self.environment)}"
        self.environment[name] = value
        return _Node(name, constant=True)

    def _test(self, node: _Node) -> str:
        """Source that is True where `node`'s value is true."""
        source = self._source(node)
        return source if node.boolean else f"_truth({source})"

    def _temporary(self) -> str:
        self._temporaries += 1
        return f"_t{self._temporaries}"

    @staticmethod
    def _source(node: _Node) -> str:
        if node.root is not None:
            raise ExpressionError(f"'{node.root}' needs a field: {node.root}.<name>")
        return node.source

    def name(self, token: Token) -> _Node:
        text = str(token)
        if text in ("fact", "arg"):
            return _Node(root=text)
        if text in _ROOT_SOURCE:
            return _Node(_ROOT_SOURCE[text])
        if text in _CONSTANTS:
            return self._constant(_CONSTANTS[text])
        level = irql_of(Symbol(text))
        if level is not None and (text.endswith("_LEVEL") or text == "DIRQL"):
            return self._constant(level)
        if text[0].isupper():
            return self._constant(text)
        raise ExpressionError(f"unknown name '{text}' (names are {', '.join(ROOTS)}; constants are capitalised)",
                              token.column or 1)

    def number(self, token: Token) -> _Node:
        return self._constant(int(str(token), 0))

    def string(self, token: Token) -> _Node:
        return self._constant(str(token)[1:-1])

    def list_(self, *items: Any) -> _Node:
        parts = [self._source(item) for item in items if item is not None]
        constant = all(item.constant for item in items if item is not None)
        if constant:
            return self._constant(tuple(self.environment[part] for part in parts))
        return _Node("(" + "".join(part + ", " for part in parts) + ")")

    def attribute(self, target: _Node, token: Token) -> _Node:
        field = str(token)
        if target.root == "fact":
            return _Node(f"_normalize(s.effects.fact({self._constant(_fact_key(field)).source}))")
        if target.root == "arg":
            return _Node(f"_argument(s, {self._constant(field).source})")
        return _Node(f"_attribute({self._source(target)}, {self._constant(field).source})")

    def index(self, target: _Node, token: Token) -> _Node:
        return _Node(f"_index({self._source(target)}, {int(str(token))})")

    def call(self, token: Token, *arguments: Any) -> _Node:
        name = str(token)
        entry = self.functions.get(name)
        if entry is None:
            raise ExpressionError(f"unknown function '{name}' (functions: {', '.join(sorted(self.functions))})",
                                  token.column or 1)
        function, least, most = entry
        parts = [self._source(argument) for argument in arguments if argument is not None]
        if not least <= len(parts) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExpressionError(f"{name}() takes {wanted} argument{'s' if most != 1 else ''}, not {len(parts)}",
                                  token.column or 1)
        callee = self._constant(function).source
        return _Node(f"{callee}({', '.join(['s', *parts])})")

    def choose(self, then: _Node, condition: _Node, otherwise: _Node) -> _Node:
        return _Node(f"({self._source(then)} if {self._test(condition)} else {self._source(otherwise)})")

    def negate(self, operand: _Node) -> _Node:
        return _Node(f"_sub(0, {self._source(operand)})")

    def arith(self, left: _Node, op: Token, right: _Node) -> _Node:
        return _Node(f"{_ARITH[str(op)]}({self._source(left)}, {self._source(right)})")

    def compare(self, left: _Node, op: Token, right: _Node) -> _Node:
        symbol, a, b = str(op), self._source(left), self._source(right)
        value = self.environment.get(b) if right.constant else None
        if value is not None and type(value) is not bool:
            # against a constant: its number worked out now, not at every event
            number = self._constant(_number(value)).source
            if symbol in ("==", "!="):
                if symbol == "==":
                    return _Node(f"_equal_constant({a}, {b}, {number})", boolean=True)
                temporary = self._temporary()
                return _Node(f"(({temporary} := {a}) is not None and not _equal_constant({temporary}, {b}, {number}))",
                             boolean=True)
            return _Node(f"{_COMPARE[symbol]}({a}, {number})", boolean=True)
        return _Node(f"{_COMPARE[symbol]}({a}, {b})", boolean=True)

    def in_(self, member: _Node, container: _Node) -> _Node:
        return _Node(self._membership(member, container), boolean=True)

    def not_in(self, member: _Node, container: _Node) -> _Node:
        return _Node(f"(not {self._membership(member, container)})", boolean=True)

    def _membership(self, member: _Node, container: _Node) -> str:
        a, b = self._source(member), self._source(container)
        elements = self.environment.get(b) if container.constant else None
        if type(elements) is tuple:
            try:
                numbers = self._constant(frozenset(_number(element) for element in elements if element is not None)).source
            except TypeError:  # an element that cannot be hashed: compare one by one
                return f"_contains({b}, {a})"
            return f"_contains_constant({b}, {numbers}, {a})"
        return f"_contains({b}, {a})"

    def not_(self, operand: _Node) -> _Node:
        return _Node(f"(not {self._test(operand)})", boolean=True)

    def and_(self, *operands: _Node) -> _Node:
        return _Node("(" + " and ".join(self._test(operand) for operand in operands) + ")", boolean=True)

    def or_(self, *operands: _Node) -> _Node:
        # the first true operand's value, else False: `(t if truth(t := a) else (...))`,
        # or `(a or ...)` where `a` is True or False
        source = "False"
        for operand in reversed(operands):
            if operand.boolean:
                source = f"({self._source(operand)} or {source})"
            else:
                temporary = self._temporary()
                source = f"({temporary} if _truth({temporary} := {self._source(operand)}) else {source})"
        return _Node(source, boolean=all(operand.boolean for operand in operands))


def truth(value: Any) -> bool:
    """Missing, zero, empty and FALSE are false; anything else (an object, a tuple of lists) true."""
    if value is None:
        return False
    cls = type(value)
    if cls is bool:
        return value
    if cls in _SIZED or isinstance(value, (tuple, list, str, int)):
        return bool(value)
    return True


_SIZED = frozenset({int, str, tuple, list})
_HELPERS["_truth"] = truth


def required_facts(text: str, truthy: bool = True, items: bool = False) -> frozenset[str] | None:
    """What an event must have, one of, for the expression to be true (`truthy`), or with
    `truthy=False` to be anything but none, or with `items=True` to hold an item (a `for`);
    None when the expression has no such requirement (or this analysis cannot see it).

    The requirements: a fact the model reports (its key, `pool-block`); an argument of the
    event (`arg:PoolType`); a non-empty list of the event's effects (`list:released`). The
    engine skips a check whose requirement the event does not meet: a fact or argument not
    there is none, so is an index past a list's end; every path through none is none, so is
    arithmetic with none; every comparison with none, and `in` with none, is false."""
    tree = _tree(text)
    if items and isinstance(tree, Tree) and tree.data == "name" and str(tree.children[0]) in _EFFECT_LISTS:
        return frozenset({f"list:{tree.children[0]}"})  # iterating an empty list finds nothing
    return _truthy_needs(tree) if truthy else _value_needs(tree)


_EFFECT_LISTS = ("created", "released", "previous", "accesses")


def _value_needs(tree: Any) -> frozenset[str] | None:
    """What must be there, one of, for `tree`'s value not to be none."""
    if isinstance(tree, Tree) and tree.data == "arith":
        return _value_needs(tree.children[0]) or _value_needs(tree.children[2])
    if isinstance(tree, Tree) and tree.data == "negate":
        return _value_needs(tree.children[0])
    while isinstance(tree, Tree) and tree.data in ("attribute", "index"):
        target = tree.children[0]
        if isinstance(target, Tree) and target.data == "name":
            root = str(target.children[0])
            if tree.data == "attribute" and root == "fact":
                return frozenset({_fact_key(str(tree.children[1]))})
            if tree.data == "attribute" and root == "arg":
                return frozenset({f"arg:{tree.children[1]}"})
            if tree.data == "index" and root in _EFFECT_LISTS:
                return frozenset({f"list:{root}"})  # an index past the end is none
        tree = target
    return None


def _truthy_needs(tree: Any) -> frozenset[str] | None:
    """Facts one of which must be reported for `tree`'s value to be true."""
    if not isinstance(tree, Tree):
        return None
    kind, children = tree.data, tree.children
    if kind in ("attribute", "index"):
        return _value_needs(tree)
    if kind == "call" and str(children[0]) == "known" and len(children) == 2:
        return _value_needs(children[1])
    if kind == "compare":
        return _value_needs(children[0]) or _value_needs(children[2])
    if kind == "in_":
        return _value_needs(children[0]) or _value_needs(children[1])
    if kind == "and_":
        return next((needs for needs in map(_truthy_needs, children) if needs is not None), None)
    if kind == "or_" or kind == "choose":
        alternatives = [_truthy_needs(child) for child in (children if kind == "or_" else (children[0], children[2]))]
        if any(needs is None for needs in alternatives):
            return None
        return frozenset().union(*alternatives)  # type: ignore[arg-type]
    return None


@cache
def _tree(text: str) -> Tree:
    return _parser().parse(text)


@cache
def _parser() -> Lark:
    path = grammar_path().with_name("rule-expression.lark")
    return Lark(path.read_text(encoding="utf-8"), parser="lalr", start="start", propagate_positions=False,
                cache=lark_cache("rule-expression"))


def compile_expression(text: str, functions: dict[str, tuple[Callable, int, int]] | None = None) -> Expression:
    """The function an expression compiles to; ExpressionError (with a column) if it does not.

    The function's source is generated from the parse tree by `_Compiler`, from helper
    names and `_kN` references to the values the rule wrote (never its text)."""
    if functions is None:
        functions = FUNCTIONS
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression cannot be empty")
    try:
        tree = _tree(text)
    except UnexpectedCharacters as error:
        raise ExpressionError(f"unexpected character {text[error.pos_in_stream]!r}", error.column) from None
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        what = "end of the expression" if token is None or token.type == "$END" else f"'{token}'"
        raise ExpressionError(f"unexpected {what}", getattr(error, "column", 1) or 1) from None
    except LarkError as error:  # pragma: no cover - any other parse failure
        raise ExpressionError(str(error)) from None
    compiler = _Compiler(functions)
    try:
        node = compiler.transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, ExpressionError):
            raise error.orig_exc from None
        raise
    source = compiler._source(node)
    return eval(compile(f"lambda s: {source}", "<rule expression>", "eval"), compiler.environment)  # noqa: S307 - source built above from helper names only

