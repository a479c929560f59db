"""The `dmalint` command line.

Exit status: 0 clean, 1 findings at or above the threshold, 2 the run itself failed (a
trace that could not be checked, a bad option, a broken installation, an internal error).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import __version__
from .discover import discover
from .errors import DmalintError, InputError, RuleFileError, TraceSyntaxError, UsageError
from .explain import explain, list_rules
from .findings import Severity
from .reader import Diagnostic, TraceSource
from .reporters import FORMATS, ReportContext
from .reporters.diagnostics import format_syntax_error
from .resources import rules_dir
from .rulebook import Rulebook, builtin_rulebook, rule_files, validate_rule_directories
from .run import RunOptions, RunResult, check_sources
from .selection import Selection

__all__ = ["EXIT_CLEAN", "EXIT_FAILED", "EXIT_FINDINGS", "main"]

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_FAILED = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmalint",
        description="Check a driver's captured DMA calls (dmatrace files) against the DDI contracts.",
    )
    parser.add_argument("--version", action="version", version=f"dmalint {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="check traces and report findings",
        description="Check traces and report findings. Exit status: 0 clean, 1 findings, 2 could not check.",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="trace files, directories (searched for *.trace), or - for standard input")
    check.add_argument("--format", choices=sorted(FORMATS), default="text", help="report format (default: text)")
    check.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output")
    check.add_argument("--no-color", action="store_true", help="never color the text report")
    check.add_argument("-q", "--quiet", action="store_true", help="print findings only: no summary, no syntax-error excerpts, no warnings")
    stop = check.add_mutually_exclusive_group()
    stop.add_argument("--max-errors", type=_positive, metavar="N", help="stop after N unparsed lines in the whole run")
    stop.add_argument("--stop-on-first-error", action="store_true", help="stop at the first unparsed line")
    check.add_argument("--rules", action="append", metavar="DIR", default=[], help="also load the rule files of DIR (repeatable)")
    check.add_argument("--select", metavar="CODES", help="report only these rules: codes, names or families, comma-separated (SGL,POOL001)")
    check.add_argument("--ignore", metavar="CODES", help="do not report these rules (TRACE001 cannot be ignored)")
    check.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    rules = commands.add_parser("rules", help="list the rules, or validate rule files",
                                description="List the rules (default), or validate the rule files of DIR (default: the built-in rules).")
    rules.add_argument("action", nargs="?", choices=("list", "validate"), default="list")
    rules.add_argument("directory", nargs="?", metavar="DIR", help="for validate: a directory of <family>/<name>.yaml rule files")
    rules.add_argument("--format", choices=("text", "json"), default="text", help="for list: the output format")
    rules.add_argument("--rules", action="append", metavar="DIR", default=[], help="for list: also the rule files of DIR")
    rules.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    explain = commands.add_parser("explain", help="show a rule's documentation", description="Show a rule's documentation.")
    explain.add_argument("rule", metavar="CODE|NAME")
    explain.add_argument("--no-color", action="store_true", help="plain text")
    explain.add_argument("--rules", action="append", metavar="DIR", default=[], help="also the rule files of DIR")
    explain.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run dmalint; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_FAILED
    try:
        if args.command == "rules":
            return _rules(args)
        if args.command == "explain":
            color = not args.no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
            explain(_rulebook(args), args.rule, sys.stdout, color)
            return EXIT_CLEAN
        return _check(args, list(sys.argv[1:] if argv is None else argv))
    except RuleFileError as error:
        print(str(error), file=sys.stderr)
        print(f"dmalint: {len(error.problems)} problem(s) in rule files", file=sys.stderr)
        return EXIT_FAILED
    except DmalintError as error:
        print(f"dmalint: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("dmalint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILED
    except Exception as error:  # a bug in dmalint: say so, without a traceback by default
        print(
            f"dmalint: internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in dmalint {__version__}, not in your trace. Please report it to the dmalint "
            "maintainers with the command line and the trace"
            + ("." if args.debug else "; run again with --debug for the traceback."),
            file=sys.stderr,
        )
        if args.debug:
            traceback.print_exc()
        return EXIT_FAILED


def _rulebook(args: argparse.Namespace) -> Rulebook:
    """The built-in rules, plus those of each --rules DIR (validated; a clash names both files)."""
    extra = [Path(directory) for directory in getattr(args, "rules", [])]
    if not extra:
        return builtin_rulebook()
    for directory in extra:
        if not directory.is_dir():
            raise UsageError(f"--rules {directory}: not a directory")
    return Rulebook.load(rules_dir(), *extra)


def _rules(args: argparse.Namespace) -> int:
    if args.action == "validate":
        directory = Path(args.directory) if args.directory else rules_dir()
        problems = validate_rule_directories(directory)
        for problem in problems:
            print(problem)
        count = len(rule_files(directory)) if directory.is_dir() else 0
        print(f"{count} rule file(s) in {directory}: {len(problems)} problem(s)")
        return EXIT_FINDINGS if problems else EXIT_CLEAN
    if args.directory:
        raise UsageError("dmalint rules list takes no directory")
    list_rules(_rulebook(args), sys.stdout, args.format)
    return EXIT_CLEAN


def _check(args: argparse.Namespace, argv: list[str]) -> int:
    sources = discover(args.paths)
    output = Path(args.output) if args.output else None
    if output is not None:
        _refuse_to_overwrite_inputs(output, sources)
    if sum(1 for s in sources if isinstance(s, TraceSource) and s.path is None) > 1:
        raise UsageError("standard input ('-') can be given only once")
    rulebook = _rulebook(args)
    selection = Selection.build(rulebook, args.select, args.ignore)
    options = RunOptions(max_errors=1 if args.stop_on_first_error else args.max_errors, selection=selection.codes)
    listener = _Listener(sys.stderr, quiet=args.quiet)
    result = check_sources(sources, rulebook, options, listener)

    color = output is None and not args.no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    status = _exit_status(result)
    context = ReportContext(rulebook, argv=tuple(argv), exit_code=status,
                            root=os.getcwd(), color=color, quiet=args.quiet)
    buffer = io.StringIO()
    FORMATS[args.format](result, buffer, context)
    _write(buffer.getvalue(), output)
    return status


def _exit_status(result: RunResult) -> int:
    if result.failed:
        return EXIT_FAILED
    if any(f.severity.rank >= Severity.ERROR.rank for f in result.findings):
        return EXIT_FINDINGS
    return EXIT_CLEAN


class _Listener:
    """Prints problems met while reading to standard error as they happen."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet

    def __call__(self, item: TraceSyntaxError | Diagnostic | InputError) -> None:
        if isinstance(item, InputError):
            print(f"dmalint: {item}", file=self.stream)
        elif self.quiet:
            return
        elif isinstance(item, TraceSyntaxError):
            print(format_syntax_error(item), file=self.stream)
        else:
            print(str(item), file=self.stream)
        self.stream.flush()


def _refuse_to_overwrite_inputs(output: Path, sources: list) -> None:
    target = output.resolve()
    for source in sources:
        if isinstance(source, TraceSource) and source.path is not None and source.path.resolve() == target:
            raise UsageError(f"--output {output} is one of the traces being checked; refusing to overwrite it")
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory")
    if not output.parent.resolve().is_dir():
        raise UsageError(f"--output {output}: the directory {output.parent} does not exist")


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    # Write beside the target, then rename: a failed run never leaves half a report behind.
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, output)
    except OSError as error:
        raise UsageError(f"cannot write the report to {output}: {error.strerror}") from None


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
