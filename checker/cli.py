"""The `dmalint` command line.

Exit status: 0 clean, 1 findings at or above the threshold, 2 the run itself failed (a
trace that could not be checked, a bad option, a broken installation, an internal error).
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .engine.run import RunOptions, RunResult, check_sources
from .errors import DmalintError, InputError, RuleFileError, TraceSyntaxError, UsageError
from .findings import Severity
from .gating.baseline import Baseline
from .gating.config import FAIL_ON, Config, find_config, load_config
from .gating.selection import Selection
from .language.rulebook import Rulebook, builtin_rulebook, rule_files, validate_rule_directories
from .reading.discover import discover
from .reading.reader import Diagnostic, TraceSource
from .reporters import FORMATS, ReportContext
from .reporters.diagnostics import format_syntax_error
from .resources import rules_dir

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
    check.add_argument("paths", nargs="+", metavar="PATH",
                       help="trace files or .etl captures, directories (searched for *.trace and *.etl), or - for standard input")
    check.add_argument("--format", choices=sorted(FORMATS), default="text", help="report format (default: text)")
    check.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output")
    check.add_argument("--no-color", action="store_true", help="never color the text report")
    check.add_argument("-q", "--quiet", action="store_true", help="print findings only: no summary, no syntax-error excerpts, no warnings")
    check.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                       help="check N traces at a time in separate processes (0: one per CPU); output is the same as with 1")
    stop = check.add_mutually_exclusive_group()
    stop.add_argument("--max-errors", type=_positive, metavar="N", help="stop after N unparsed lines in the whole run")
    stop.add_argument("--stop-on-first-error", action="store_true", help="stop at the first unparsed line")
    check.add_argument("--rules", action="append", metavar="DIR", default=[], help="also load the rule files of DIR (repeatable)")
    check.add_argument("--select", metavar="CODES", help="report only these rules: codes, names or families, comma-separated (SGL,POOL001)")
    check.add_argument("--ignore", metavar="CODES", help="do not report these rules (TRACE001 and TRACE007 cannot be ignored)")
    gate = check.add_argument_group("gating and outputs")
    gate.add_argument("--fail-on", choices=FAIL_ON, help="the lowest severity that exits 1 (default: error)")
    gate.add_argument("--no-fold", action="store_true",
                      help="report consequences as findings of their own, not folded under their root finding "
                           "(configuration: fold = false)")
    gate.add_argument("--baseline", metavar="FILE", help="hide the findings FILE records; report only new ones")
    gate.add_argument("--write-baseline", metavar="FILE", help="record every current finding in FILE (exit 0 unless the run failed)")
    gate.add_argument("--prune-baseline", action="store_true", help="with --baseline: drop from FILE the entries that no longer occur")
    gate.add_argument("--output-format", action="append", default=[], metavar="FORMAT:FILE",
                      help="also write a report in FORMAT to FILE (repeatable): --output-format sarif:out.sarif")
    gate.add_argument("--config", metavar="FILE", help="read the configuration from FILE (default: the nearest dmalint.toml "
                      "or pyproject.toml [tool.dmalint])")
    gate.add_argument("--isolated", action="store_true", help="ignore every configuration file")
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

    etl = commands.add_parser(
        "etl", help="list what an .etl capture holds",
        description="List what an .etl capture holds: its header (CPUs, clock, lost events and buffers), every "
                    "event with its provider, name and decoded TraceLogging fields, and counts per provider. "
                    "--format trace prints the dmatrace text `dmalint check` reads from it (its line numbers "
                    "are the ones findings give).")
    etl.add_argument("path", metavar="FILE", help="an .etl file")
    etl.add_argument("--format", choices=("text", "jsonl", "trace"), default="text", help="the output format (default: text)")
    etl.add_argument("--summary", action="store_true", help="only the header and the counts per provider")
    etl.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _jobs(text: str) -> int:
    if text.strip() == "0":
        return os.cpu_count() or 1
    return _positive(text)


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
            from .reporters.explain import explain  # rich's Markdown only when a rule is explained

            explain(_rulebook(args), args.rule, sys.stdout, color)
            return EXIT_CLEAN
        if args.command == "etl":
            from .reading.etl_listing import run_etl_listing  # the ETL reader only when a capture is listed

            return run_etl_listing(args.path, args.format, args.summary, sys.stdout)
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


def _rulebook(args: argparse.Namespace, config: Config | None = None) -> Rulebook:
    """The built-in rules, plus those of each --rules DIR and the configuration's `rules`
    (validated; a clash names both files)."""
    extra = [*(config.rules if config is not None else ()), *(Path(directory) for directory in getattr(args, "rules", []))]
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
    from .reporters.explain import list_rules

    list_rules(_rulebook(args), sys.stdout, args.format)
    return EXIT_CLEAN


def _check(args: argparse.Namespace, argv: list[str]) -> int:
    config = _config(args)
    sources = discover(args.paths)
    outputs = _outputs(args)
    for _, path in outputs:
        if path is not None:
            _refuse_to_overwrite_inputs(path, sources)
    if sum(1 for s in sources if isinstance(s, TraceSource) and s.path is None) > 1:
        raise UsageError("standard input ('-') can be given only once")
    rulebook = _rulebook(args, config)
    select = args.select if args.select is not None else (",".join(config.select) if config.select is not None else None)
    ignore = args.ignore if args.ignore is not None else (",".join(config.ignore) or None)
    selection = Selection.build(rulebook, select, ignore)
    severities = _severities(rulebook, config)
    fail_on = args.fail_on or config.fail_on or "error"
    baseline_path = Path(args.baseline) if args.baseline else config.baseline if not args.write_baseline else None
    if args.prune_baseline and baseline_path is None:
        raise UsageError("--prune-baseline needs --baseline FILE (or baseline in the configuration)")
    baseline = Baseline.read(baseline_path) if baseline_path is not None else None
    options = RunOptions(
        max_errors=1 if args.stop_on_first_error else args.max_errors,
        selection=selection.codes,
        severities=severities,
        baseline=baseline,
        recorder=_timeline_recorder() if any(fmt == "html" for fmt, _ in outputs) else None,
        fold=config.fold and not args.no_fold,
    )
    listener = _Listener(sys.stderr, quiet=args.quiet)
    streamed = outputs[0] if len(outputs) == 1 and outputs[0][0] in _STREAMING and not args.write_baseline else None
    if streamed is not None:  # the findings go out as they are found, and are not kept
        context = _report_context(args, argv, rulebook, streamed[1], 0, fail_on, baseline_path, selection.codes)
        result = _check_streaming(streamed, context, sources, rulebook, options, listener, args, config)
    else:
        result = check_sources(sources, rulebook, options, listener, jobs=args.jobs, load_rules=_rule_loader(args, config))

    status = _exit_status(result, fail_on)
    if args.write_baseline:
        count = Baseline.write(Path(args.write_baseline), [f for f in result.findings if f.consequence_of is None])
        print(f"dmalint: wrote {count} finding(s) to the baseline {args.write_baseline}", file=sys.stderr)
        status = EXIT_FAILED if result.failed else EXIT_CLEAN
    if args.prune_baseline and baseline is not None and baseline_path is not None:
        stale = {entry.fingerprint for entry in result.stale_baseline}
        kept = Baseline.write(baseline_path, [entry for fp, entry in baseline.entries.items() if fp not in stale])
        print(f"dmalint: pruned {len(stale)} stale entr{'y' if len(stale) == 1 else 'ies'} from {baseline_path}; "
              f"{kept} remain", file=sys.stderr)
    for fmt, path in outputs if streamed is None else ():  # a streamed report is written already
        context = _report_context(args, argv, rulebook, path, status, fail_on, baseline_path, selection.codes)
        buffer = io.StringIO()
        FORMATS[fmt](result, buffer, context)
        _write(buffer.getvalue(), path)
    return status


def _report_context(args: argparse.Namespace, argv: list[str], rulebook: Rulebook, path: Path | None, status: int,
                    fail_on: str, baseline_path: Path | None, codes: frozenset[str] | None) -> ReportContext:
    color = path is None and not args.no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    return ReportContext(rulebook, argv=tuple(argv), exit_code=status, fail_on=_threshold(fail_on),
                         root=os.getcwd(), color=color, quiet=args.quiet,
                         baseline=str(baseline_path) if baseline_path is not None else None, selection=codes)


# The reports that can be written as the run goes (`finding` for each, then `finish`): when one
# of them is the only report, findings are handed to it when found and not kept.
_STREAMING = ("text", "jsonl")


def _streaming_report(fmt: str, stream: TextIO, context: ReportContext) -> Any:
    if fmt == "text":
        from .reporters.text import TextReport

        return TextReport(stream, context)
    from .reporters.jsonl import JsonLines

    return JsonLines(stream)


def _check_streaming(report: tuple[str, Path | None], context: ReportContext, sources: list, rulebook: Rulebook,
                     options: RunOptions, listener: _Listener, args: argparse.Namespace, config: Config) -> RunResult:
    """A text or `jsonl` report alone: each finding is written as it is found (to a file,
    through a temporary file renamed at the end, so a failed run leaves no half report)."""
    fmt, output = report
    if output is None:
        stream, temporary = sys.stdout, None
    else:
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        except OSError as error:
            raise UsageError(f"cannot write the report to {output}: {error.strerror}") from None
        stream = os.fdopen(handle, "w", encoding="utf-8")
    try:
        writer = _streaming_report(fmt, stream, context)
        options = replace(options, sink=writer.finding)
        result = check_sources(sources, rulebook, options, listener, jobs=args.jobs, load_rules=_rule_loader(args, config))
        writer.finish(result)
        if temporary is not None:
            stream.close()
            os.replace(temporary, output)  # type: ignore[arg-type]
            temporary = None
    except BrokenPipeError:
        raise  # the reader went away (`| head`): `main` ends quietly
    except OSError as error:
        raise UsageError(f"cannot write the report to {output or 'standard output'}: {error.strerror}") from None
    finally:
        if temporary is not None:
            stream.close()
            os.unlink(temporary)
    return result


def _timeline_recorder() -> Callable[[str], Any]:
    """The HTML report draws each trace's timeline: record one as the trace is checked."""
    from .reporters.timeline import TimelineRecorder

    return TimelineRecorder


def _rule_loader(args: argparse.Namespace, config: Config) -> Callable[[], Rulebook]:
    """How a --jobs worker loads the same rules (a picklable callable)."""
    extra = [*config.rules, *(Path(directory) for directory in args.rules)]
    return functools.partial(Rulebook.load, rules_dir(), *extra) if extra else builtin_rulebook


def _config(args: argparse.Namespace) -> Config:
    if args.isolated:
        return Config()
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UsageError(f"--config {path}: no such file")
        return load_config(path)
    return load_config(find_config(Path.cwd()))


def _outputs(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    """The reports to write: --format to --output (or standard output), then each --output-format."""
    outputs: list[tuple[str, Path | None]] = [(args.format, Path(args.output) if args.output else None)]
    for spec in args.output_format:
        fmt, colon, name = spec.partition(":")
        if not colon or not name or fmt not in FORMATS:
            raise UsageError(f"--output-format {spec!r}: give FORMAT:FILE with FORMAT one of {', '.join(sorted(FORMATS))}")
        outputs.append((fmt, Path(name)))
    targets = [path.resolve() for _, path in outputs if path is not None]
    if len(targets) != len(set(targets)):
        raise UsageError("two reports would be written to the same file")
    return outputs


def _severities(rulebook: Rulebook, config: Config) -> dict[str, Severity]:
    overrides = {}
    for code, level in config.severity.items():
        rule = rulebook.get(code)
        if rule is None:
            raise UsageError(f"{config.path}: severity.{code}: no rule is called {code}")
        overrides[rule.code] = Severity(level)
    return overrides


def _threshold(fail_on: str) -> Severity | None:
    return None if fail_on == "never" else Severity(fail_on)


def _exit_status(result: RunResult, fail_on: str = "error") -> int:
    """2 if a trace could not be checked; 1 if a finding (not a suppressed one) reaches the
    --fail-on severity; else 0."""
    if result.failed:
        return EXIT_FAILED
    threshold = _threshold(fail_on)
    if threshold is not None and any(result.count(severity) for severity in Severity if severity.rank >= threshold.rank):
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
