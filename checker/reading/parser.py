"""Parsing one trace line with the grammar, and saying clearly why a line does not parse."""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

from lark import Lark
from lark.exceptions import UnexpectedEOF, UnexpectedInput
from lark.lexer import PatternStr

from model.events import Comment, Directive, Event
from model.location import SourceLocation

from ..errors import ResourceError, TraceSyntaxError
from ..resources import grammar_path
from . import fastpath
from .signatures import signatures
from .transform import RecordTransformer, ValueProblem

__all__ = ["FAST_PATH", "LineParser", "VERBS", "load_grammar"]

_FALLBACK = fastpath.FALLBACK

VERBS = ("call", "enter", "leave", "callback", "done", "mem", "dma", "mdl", "sgl", "lost")
_FIELDS = ("t", "seq", "cpu", "tid", "irql")

# Readable names for the grammar's pattern terminals, used in "expected one of".
_TERMINAL_NAMES = {
    "NAME": "a name",
    "HEX": "a hex number",
    "DECIMAL": "a number",
    "STRING": 'a "string"',
    "SECONDS": "seconds",
    "IRQL_NAME": "an IRQL name",
    "ACCESS": "read or write",
    "HEX_BYTES": "hex bytes",
    "DIRECTIVE": "a directive (@name)",
    "WPP_CPU": "a CPU number",
    "WPP_IDS": "PID.TID in hex",
    "WPP_TIME": "a time stamp",
    "WPP_PROVIDER": "a provider name",
    "$END": "end of line",
}

_UNKNOWN_VERB = "unknown verb"
_OUT_FOR_RESULT = "'=>' marks an out argument; a return value is written '-> value'"
_ARROW_FOR_OUT = "'->' gives the return value; an out argument is written 'Name=>value'"
# Headlines about one token: given only when the unexpected token is of these types.
_LABEL_TOKENS = {_UNKNOWN_VERB: {"NAME"}, _OUT_FOR_RESULT: {"OUT"}, _ARROW_FOR_OUT: {"ARROW"}}

# Parser states differ with the number of arguments already read (up to three), so examples
# that follow an argument list come in each count.
_ARGUMENT_COUNTS = ("", "A=1", "A=1, B=2", "A=1, B=2, C=3")

# Known mistakes, as Lark's match_examples wants them: a headline and lines that make it.
_EXAMPLES: dict[str, list[str]] = {
    # First match wins: the '->' confusion before the generic missing ')'.
    _ARROW_FOR_OUT: [
        "call F(A->1)",
        "call F(A=1, B->2)",
        "call F(A=1, B=2, C->3)",
    ],
    "missing ')' to close the argument list": [
        f"{start}{value}{end}"
        for start in ("call F(A=", "call F(", "enter F(A=", "callback F(A=", "leave F (A=>", "call F(A=1, B=", "call F(A=1, B=2, C=")
        for value in ("1", "0x1", "NULL", "TRUE", "FALSE", "X", '"s"', "{A=1}", "[1]")
        for end in ("", " -> X", " B=1)", " # c")
    ],
    "missing '}' to close the structure": ["call F(A={X=1)", "call F(A={X=1, Y=2)", "call F(A={X=1 Y=2})"],
    "missing ']' to close the list": ["sgl 0x1 [0x1:0x2", "call F(A=[1, 2)", "mdl 0x1 va=0x1 offset=0 bytes=1 pfns=[1"],
    _OUT_FOR_RESULT: [
        *(f"call F({args}) => 1" for args in _ARGUMENT_COUNTS),
        "leave F => 1",
    ],
    "an argument is written 'Name=value', 'Name=>value' or a bare value": ["call F(A==1)", "call F(A= =1)"],
    "a ',' must be followed by another item": ["call F(A=1,)", "call F(1,)", "sgl 0x1 [0x1:0x2,]", "call F(A=[1,])"],
    "unknown verb": [
        "cal F()",
    ],
    "a call needs its argument list: 'Name(...)'": ["call F", "call F -> 1", "enter F", "callback F"],
}
_CONTEXT_PREFIX = re.compile(
    r"^\s*(\[\d+\][0-9A-Fa-f]+\.[0-9A-Fa-f]+::\S+\s*\[[^\]]*\]\s*)?((t|seq|cpu|tid|irql)=\S+\s+)*"
)


@cache
def load_grammar() -> str:
    """The grammar text shipped with dmalint."""
    path = grammar_path()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ResourceError(f"cannot read the grammar {path}: {error}") from None


# The fast path (checker/reading/fastpath.py) for the common line shapes, in front of Lark. On by
# default; the reference pipeline of bench/ turns it off, here for every parser made after or
# with LineParser(path, fast=False) for one.
FAST_PATH = True


class LineParser:
    """Parses single lines of one trace into records, with the path and line number set.

    With `fast` (default: the module's FAST_PATH), the common lines are read by the fast
    path, which gives the records Lark's parse gives and hands every other line to Lark.
    """

    def __init__(self, path: str = "<trace>", fast: bool | None = None) -> None:
        self.lark, self.transformer, self._errors = _shared_parser()
        self.path = path
        if fast is None:
            fast = FAST_PATH
        self.fast = fast and fastpath.AVAILABLE
        self.fast_parse = fastpath.FastPath(path, signatures(), self.transformer).parse if self.fast else None

    def parse(self, text: str, line: int) -> Event | Directive | Comment | None:
        """The record on `text` (a line without its line ending), or None if it holds none.

        Raises TraceSyntaxError, located at the offending column, if it does not parse.
        """
        fast = self.fast_parse
        if fast is not None:
            record = fast(text, line)
            if record is not _FALLBACK:
                return record
        return self.parse_with_lark(text, line)

    def parse_with_lark(self, text: str, line: int) -> Event | Directive | Comment | None:
        """`parse` by the grammar alone, whatever the fast path would say."""
        transformer = self.transformer
        transformer.path = self.path
        transformer.line = line
        transformer.text = text
        try:
            return self.lark.parse(text)
        except UnexpectedInput as error:
            raise self._errors.explain(error, self.path, line, text) from None
        except ValueProblem as problem:
            column = problem.column or (len(text) - len(text.lstrip()) + 1)
            location = SourceLocation(self.path, line, column, column + 1)
            raise TraceSyntaxError(problem.message, location, text) from None

    def take_warnings(self) -> list[tuple[int, str]]:
        """Warnings about the lines parsed since the last call, as (column, message)."""
        warnings = self.transformer.warnings
        if warnings:  # the common case, none, allocates nothing
            self.transformer.warnings = []
        return warnings


@cache
def _shared_parser() -> tuple[Lark, RecordTransformer, _ErrorExplainer]:
    """One Lark parser per process: building it from the grammar takes a fraction of a
    second. Parsers share it; each parse sets the transformer's path, line and text."""
    transformer = RecordTransformer(signatures())
    lark = _build_lark(transformer)
    return lark, transformer, _ErrorExplainer(lark)


def _build_lark(transformer: Any) -> Lark:
    try:
        return Lark(
            load_grammar(),
            parser="lalr",
            lexer="contextual",
            propagate_positions=False,
            maybe_placeholders=True,
            transformer=transformer,
        )
    except ResourceError:
        raise
    except Exception as error:  # a broken grammar file is a broken installation
        raise ResourceError(f"the grammar {grammar_path()} does not load: {error}") from None


class _ErrorExplainer:
    """Turns Lark's UnexpectedInput into a TraceSyntaxError a driver developer can act on."""

    def __init__(self, lark: Lark) -> None:
        self.lark = lark
        self.terminals = {terminal.name: terminal for terminal in lark.terminals}
        # match_examples re-parses every example; its answer depends only on the parser
        # state and the unexpected token's type, so remember it per (state, type).
        self._labels: dict[tuple, str | None] = {}

    def explain(self, error: UnexpectedInput, path: str, line: int, text: str) -> TraceSyntaxError:
        column = getattr(error, "column", None)
        at_end = isinstance(error, UnexpectedEOF) or getattr(getattr(error, "token", None), "type", "") == "$END"
        if at_end or not isinstance(column, int) or column < 1:
            column = _content_end(text) + 1
        found = self._found(error, text, column)
        end_column = column + max(1, len(found))
        expected = self._expected(error)
        headline = self._headline(error, text, column, found)
        if headline.startswith("bad number"):
            column, end_column = _number_span(text, column)
        location = SourceLocation(path, line, column, end_column)
        return TraceSyntaxError(headline, location, text, expected)

    @staticmethod
    def _found(error: UnexpectedInput, text: str, column: int) -> str:
        if isinstance(error, UnexpectedEOF) or column > len(text):
            return ""
        rest = text[column - 1 :]
        if rest.startswith('"'):
            return rest
        token = getattr(error, "token", None)
        if token is not None and token.type not in ("$END", "WPP_PROVIDER") and str(token).strip():
            return str(token)
        words = rest.split()
        return words[0] if words else rest

    def _expected(self, error: UnexpectedInput) -> tuple[str, ...]:
        names = getattr(error, "accepts", None) or getattr(error, "expected", None) or set()
        readable = set()
        for name in names:
            if name == "COMMENT":
                continue
            terminal = self.terminals.get(name)
            if terminal is not None and isinstance(terminal.pattern, PatternStr):
                readable.add(f"'{terminal.pattern.value}'")
            else:
                readable.add(_TERMINAL_NAMES.get(name, name))
        return tuple(sorted(readable, key=lambda item: (not item.startswith("'"), item)))

    def _headline(self, error: UnexpectedInput, text: str, column: int, found: str) -> str:
        if found.startswith('"') and _unterminated(found):
            return "unterminated string: a string needs a closing '\"' on the same line"
        previous = text[column - 2] if column >= 2 and column - 2 < len(text) else " "
        glued = bool(found) and (found[0].isalnum() or found[0] in "_.")
        if glued and (previous.isalnum() or previous == "_") and _looks_numeric_before(text, column):
            return f"bad number '{_number_at(text, column)}': numbers are decimal or 0x-hex"
        char = text[column - 1] if column <= len(text) else ""
        if char == "\r":
            return "a carriage return (CR) inside a line: lines end with LF or CRLF"
        if char and (char < " " or char == "\x7f") and char != "\t":
            return f"control character U+{ord(char):04X} is not allowed here"
        label = self._match(error, text)
        needed = _LABEL_TOKENS.get(label or "")
        if needed is not None and getattr(getattr(error, "token", None), "type", None) not in needed:
            label = None  # match_examples also answers by parser state alone; these need the token
        if label == _UNKNOWN_VERB:
            return _unknown_verb(found)
        if label is not None:
            return label
        if isinstance(error, UnexpectedEOF) or not found:
            return "the line ends too early"
        return f"unexpected '{_clip(found)}'"

    def _match(self, error: UnexpectedInput, text: str) -> str | None:
        # Lark compares parser states with their stack depth, and every context field or
        # prefix before the verb deepens the stack: classify the line without them.
        bare = _CONTEXT_PREFIX.sub("", text, count=1)
        if bare != text:
            try:
                self._parse_example(bare)
                return None
            except UnexpectedInput as bare_error:
                error = bare_error
        state = getattr(error, "state", None)
        token = getattr(error, "token", None)
        stack = getattr(state, "state_stack", None)
        key = (tuple(stack) if stack is not None else None, getattr(token, "type", type(error).__name__))
        if key not in self._labels:
            try:
                label = error.match_examples(self._parse_example, _EXAMPLES, token_type_match_fallback=True, use_accepts=True)
            except TypeError:
                # Lark 1.3 formats a debug message with %d of a ParserState when two examples
                # share a state but not the expected tokens: ask again without comparing them.
                label = error.match_examples(self._parse_example, _EXAMPLES, token_type_match_fallback=True, use_accepts=False)
            self._labels[key] = label
        return self._labels[key]

    def _parse_example(self, text: str) -> Any:
        transformer = self.lark.options.transformer
        transformer.text = text
        transformer.line = 0
        try:
            return self.lark.parse(text)
        except ValueProblem:
            return None


def _unterminated(found: str) -> bool:
    escaped = False
    for char in found[1:]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return False
    return True


def _looks_numeric_before(text: str, column: int) -> bool:
    start = column - 2
    while start >= 0 and (text[start].isalnum() or text[start] == "_"):
        start -= 1
    word = text[start + 1 : column - 1]
    return bool(word) and word[0].isdigit()


def _number_span(text: str, column: int) -> tuple[int, int]:
    """The 1-based span of the number-like word around `column`."""
    start = column - 2
    while start >= 0 and (text[start].isalnum() or text[start] in "_."):
        start -= 1
    end = column - 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_."):
        end += 1
    return start + 2, end + 1


def _number_at(text: str, column: int) -> str:
    start, end = _number_span(text, column)
    return text[start - 1 : end - 1]


def _content_end(text: str) -> int:
    """Length of the line without a trailing comment and trailing white space."""
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#":
            return len(text[:index].rstrip())
    return len(text.rstrip())


def _unknown_verb(found: str) -> str:
    word = found.split("(")[0]
    if not word:
        return "an event needs a verb: " + ", ".join(VERBS)
    close = difflib.get_close_matches(word.lower(), VERBS + _FIELDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f" (verbs: {', '.join(VERBS)})"
    return f"unknown verb '{_clip(word)}'{hint}"


def _clip(text: str, width: int = 30) -> str:
    text = "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= width else text[: width - 3] + "..."
