"""The rule expression language: what expressions mean, and how bad ones are refused."""

from __future__ import annotations

import textwrap

import pytest

from checker.language.expression import ExpressionError, Scope, compile_expression, required_facts, truth
from model.irql import DISPATCH_LEVEL
from model.machine import Machine

from .helpers import parse_line

BUILD_FAILED = """
cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x8) -> 0xC0000023
"""
DOUBLE_PUT = """
cpu=0 irql=DISPATCH mdl 0xd0 va=0x10000 offset=0 bytes=0x1000 pfns=[0x100]
cpu=0 irql=DISPATCH call BuildScatterGatherList(DmaAdapter=0xa0, DeviceObject=0x1, Mdl=0xd0, CurrentVa=0x10000, Length=0x1000, ExecutionRoutine=0x2, Context=0x3, WriteToDevice=FALSE, ScatterGatherBuffer=0xb000, ScatterGatherLength=0x100)
cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
cpu=0 irql=DISPATCH call PutScatterGatherList(DmaAdapter=0xa0, ScatterGather=0xb000, WriteToDevice=FALSE)
"""


def scope_after(text: str) -> Scope:
    """The scope of the last event of a trace, after replaying it on a fresh machine."""
    machine = Machine()
    effects = None
    for number, line in enumerate(textwrap.dedent(text).strip().splitlines(), start=1):
        effects = machine.apply(parse_line(line.strip(), number))
    return Scope(effects, machine)


def value(text: str, source: str = BUILD_FAILED):
    return compile_expression(text)(scope_after(source))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("event.name", "BuildScatterGatherList"),
        ("event.verb", "call"),
        ("arg.Length", 0x1000),
        ("arg.WriteToDevice", False),
        ("arg.NoSuchArgument", None),
        ("result == STATUS_BUFFER_TOO_SMALL", True),  # a number and a symbol compare by value
        ("result != STATUS_SUCCESS", True),
        ("irql == DISPATCH_LEVEL", True),
        ("irql", DISPATCH_LEVEL),
        ("irql > APC_LEVEL and irql < DIRQL", True),
        ("fact.build.bytes_needed", 16 + 24),
        ("fact.build.bytes_needed > arg.ScatterGatherLength", True),
        ("fact.build.status", "STATUS_BUFFER_TOO_SMALL"),
        ("fact.failed == 0xC0000023", True),
        ("fact.no_such_fact", None),
        ("fact.no_such_fact.field", None),
        ("fact.no_such_fact == none", False),  # every comparison with a missing value is false
        ("fact.no_such_fact != 3", False),
        ("known(fact.no_such_fact)", False),
        ("not fact.no_such_fact", True),
        ("len(fact.build.segments)", 1),
        ("fact.build.segments.0.length", 0x1000),
        ("fact.build.segments.5", None),
        ("arg.Length + 0x10 * 2", 0x1020),
        ("arg.Length & 0xff00", 0x1000),
        ("-arg.Length", -0x1000),
        ("event.name in [PutScatterGatherList, BuildScatterGatherList]", True),
        ("event.name not in [PutScatterGatherList]", True),
        ("'Scatter' in event.name", True),
        ("hex(arg.ScatterGatherBuffer)", "0xb000"),
        ("'big' if arg.Length > 0x800 else 'small'", "big"),
        ("min(arg.Length, 4)", 4),
        ("'list ' + hex(arg.ScatterGatherBuffer)", "list 0xb000"),
        ("'list ' + arg.Length", None),
        ("max(fact.no_such_fact, 4)", 4),
        ("status_name(fact.failed)", "STATUS_BUFFER_TOO_SMALL"),
        ("irql_name(irql)", "DISPATCH_LEVEL"),
        ("fact.failed or 7", 0xC0000023),
        ("TRUE and NULL", False),
        ("event.location.line", 2),
    ],
)
def test_expression_values(text, expected):
    assert value(text) == expected


def test_facts_carry_model_objects_with_locations():
    scope = scope_after(DOUBLE_PUT)
    assert compile_expression("fact.list_put_before.built_at.line")(scope) == 2
    assert compile_expression("fact.list_put_before.put_at.line")(scope) == 3
    assert compile_expression("line(created_at(fact.list_put_before))")(scope) == 2
    assert compile_expression("line(released_at(fact.list_put_before))")(scope) == 3


def test_only_public_fields_of_model_objects_are_readable():
    scope = scope_after(DOUBLE_PUT)
    assert compile_expression("fact.list_put_before.live")(scope) is False  # a property
    assert compile_expression("fact.list_put_before.replace")(scope) is None  # not a field
    assert compile_expression("event.arg")(scope) is None  # a method is not a field


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("evnt.name == 3", "unknown name 'evnt'", 1),
        ("event.name == )", "unexpected ')'", 15),
        ("event.__class__", "unexpected character '_'", 7),
        ("fact == 3", "'fact' needs a field", 1),
        ("arg", "'arg' needs a field", 1),
        ("frobnicate(3)", "unknown function 'frobnicate'", 1),
        ("len(1, 2)", "len() takes 1 argument, not 2", 1),
        ("event.name ==", "unexpected end of the expression", 1),
        ("   ", "an expression cannot be empty", 1),
    ],
)
def test_bad_expressions_are_refused_with_a_column(text, message, column):
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert message in caught.value.message
    if column > 1:
        assert caught.value.column == column


def test_a_leave_sees_the_arguments_of_its_enter():
    scope = scope_after("""
        cpu=0 irql=PASSIVE enter ExFreePoolWithTag(P=0x5000, Tag=0x41)
        cpu=0 irql=PASSIVE leave ExFreePoolWithTag
        """)
    assert compile_expression("arg.P")(scope) == 0x5000 and compile_expression("arg.Tag")(scope) == 0x41
    assert compile_expression("arg.Nothing")(scope) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("fact.list_failed", {"list-failed"}),
        ("fact.a.b.0 == 1", {"a"}),
        ("fact.a != 1", {"a"}),  # a comparison with none is false, != too
        ("1 in fact.a", {"a"}),
        ("fact.a in [1, 2]", {"a"}),
        ("known(fact.a) and arg.X", {"a"}),
        ("arg.X and fact.a", {"arg:X"}),  # the first operand that needs something
        ("fact.a or fact.b.c", {"a", "b"}),
        ("fact.a if arg.X else fact.b", {"a", "b"}),
        ("fact.a or arg.X", {"a", "arg:X"}),
        ("not fact.a", None),
        ("1 not in fact.a", None),
        ("known(fact.a) or known(freed_block(arg.P))", None),
        ("hex(fact.a)", None),  # a function may answer something for none
        ("arg.X == 1", {"arg:X"}),
        ("arg.X & 1 == 1", {"arg:X"}),  # arithmetic with none is none
        ("1 + -arg.X > 0", {"arg:X"}),
        ("'F' in arg.X or arg.Y in [1, 2]", {"arg:X", "arg:Y"}),
        ("released.0.paged or fact.a", {"list:released", "a"}),  # an index past the end is none
        ("created.1", {"list:created"}),
        ("released", None),  # a list itself is never none
        ("released.0 or arg.X & 1 or not arg.Y", None),
        ("event.verb == 'call' and arg.X", {"arg:X"}),
    ],
)
def test_required_facts_are_what_a_true_condition_cannot_do_without(text, expected):
    from checker.engine.filecheck import _has_one_of
    from checker.language.dispatch import _needs

    needs = required_facts(text)
    assert needs == (None if expected is None else frozenset(expected))
    if needs is not None:  # and the claim holds: an event with none of those is false
        scope = scope_after(BUILD_FAILED)
        facts, arguments, lists = _needs(needs)  # type: ignore[misc]
        assert not any(name in facts for name, _ in scope.effects.facts)
        assert not _has_one_of(arguments, lists, scope.record, scope.effects)
        assert not truth(compile_expression(text)(scope))


def test_an_iterated_list_needs_an_item_and_a_leave_may_have_its_enters_arguments():
    from checker.engine.filecheck import _has_one_of

    assert required_facts("accesses", items=True) == frozenset({"list:accesses"})
    assert required_facts("accesses", truthy=False) is None  # as a value, an empty list is not none
    assert required_facts("[fact.a, arg.X]", items=True) is None
    scope = scope_after("""
        cpu=0 irql=PASSIVE enter ExFreePoolWithTag(P=0x5000, Tag=0x41)
        cpu=0 irql=PASSIVE leave ExFreePoolWithTag
        """)
    assert compile_expression("arg.P")(scope) == 0x5000
    assert _has_one_of(frozenset({"P"}), (), scope.record, scope.effects)  # not on the leave, but its enter's


def test_required_facts_of_a_value_ask_for_a_path_through_a_fact():
    assert required_facts("fact.locks_held_at_done", truthy=False) == frozenset({"locks-held-at-done"})
    assert required_facts("[event] if arg.X else accesses", truthy=False) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("arg.Length or fact.failed", 0x1000),  # `or` gives the first true value
        ("fact.no_such_fact or 0 or 'x'", "x"),
        ("fact.no_such_fact or 0", False),
        ("arg.Length > 1 or fact.failed", True),
        ("result in [STATUS_BUFFER_TOO_SMALL, 3]", True),  # a constant list compares by value
        ("result in [0xC0000023]", True),
        ("result not in [STATUS_SUCCESS]", True),
        ("irql in [DISPATCH_LEVEL]", True),
        ("irql in ['DISPATCH_LEVEL']", True),
        ("arg.WriteToDevice in [0]", True),  # FALSE equals 0, as == says
        ("arg.WriteToDevice in [FALSE, none]", True),
        ("arg.WriteToDevice in [PASSIVE_LEVEL]", False),  # FALSE is not an IRQL, as == says
        ("arg.WriteToDevice == PASSIVE_LEVEL", False),
        ("arg.NoSuchArgument in [none, 1]", False),
        ("arg.WriteToDevice == 0", True),
        ("arg.WriteToDevice == FALSE", True),
        ("arg.NoSuchArgument != 0", False),
        ("arg.Length != 0x1000", False),
        ("arg.Length != 0x1001", True),
        ("fact.build.segments in [1]", False),  # a member that cannot be hashed
        ("'__import__(\"os\")' + 'x'", '__import__("os")x'),  # a string is a value, never code
    ],
)
def test_generated_code_keeps_the_meaning(text, expected):
    assert value(text) == expected


def test_an_operand_is_evaluated_once():
    calls = []

    def counting(scope, value):
        calls.append(value)
        return value

    from checker.language.rule_functions import FUNCTIONS

    functions = {**FUNCTIONS, "count": (counting, 1, 1)}
    scope = scope_after(BUILD_FAILED)
    assert compile_expression("count(arg.Length) != 3", functions)(scope) is True
    assert compile_expression("count(arg.Length) or 1", functions)(scope) == 0x1000
    assert calls == [0x1000, 0x1000]


def test_the_expression_parser_is_cached_per_user_and_a_broken_cache_is_rebuilt(tmp_path, monkeypatch):
    from checker.language import expression
    from checker.resources import lark_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("DMALINT_NO_CACHE", raising=False)
    path = lark_cache("rule-expression")
    assert isinstance(path, str) and path.startswith(str(tmp_path / "dmalint"))
    assert (tmp_path / "dmalint").stat().st_mode & 0o077 == 0  # private to the user
    for state in ("absent", "written", "broken"):
        if state == "broken":
            with open(path, "wb") as stream:
                stream.write(b"not a cache\n\x80\x04garbage")
        expression._parser.cache_clear()
        expression._tree.cache_clear()
        assert compile_expression("arg.Length + 1")(scope_after(BUILD_FAILED)) == 0x1001
        with pytest.raises(ExpressionError, match="unexpected"):
            compile_expression("arg.Length +")
    monkeypatch.setenv("DMALINT_NO_CACHE", "1")
    assert lark_cache("rule-expression") is False
    monkeypatch.delenv("DMALINT_NO_CACHE")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # cannot hold a directory
    assert lark_cache("rule-expression") is False

