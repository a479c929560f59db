"""What every reporter is given besides the findings: the rules' metadata and the run's facts."""

from __future__ import annotations

from dataclasses import dataclass

from ..findings import Severity
from ..language.rulebook import Rulebook

__all__ = ["ReportContext"]


@dataclass(frozen=True, slots=True)
class ReportContext:
    """The rulebook the run used (codes, names, docs for SARIF rules, JUnit test cases, the HTML
    report), how dmalint was invoked and how it exits, and the text report's switches.

    `fail_on` is the lowest severity that makes the run exit 1 (None: never). Paths in
    findings are as the user gave them; `root` is the directory relative URIs start from."""

    rulebook: Rulebook
    argv: tuple[str, ...] = ()
    exit_code: int = 0
    fail_on: Severity | None = Severity.ERROR
    root: str = "."
    color: bool = False
    quiet: bool = False
    baseline: str | None = None  # the --baseline file, if any
    selection: frozenset[str] | None = None  # the codes the run checked (None: every rule of the rulebook)
