"""Reporters: each renders a run's findings in one format, and nothing else.

A reporter is `render(result: RunResult, stream: TextIO, context: ReportContext) -> None`:
the same findings plus the rules' metadata (`context.rulebook`) for every format. Also here:
the timeline the HTML report draws from (`timeline`, recorded during the run through
`RunOptions.recorder`) and the rendering of a rule's documentation (`explain`).

May import every earlier stage (`model`, `checker.reading`, `checker.language`,
`checker.gating`, `checker.engine`); never the CLI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

from ..engine.run import RunResult
from .context import ReportContext

__all__ = ["FORMATS", "ReportContext", "Reporter"]

Reporter = Callable[[RunResult, TextIO, ReportContext], None]


class _Formats(Mapping[str, Reporter]):
    """The reporters by format name, each module imported when its format is first asked
    for: a `--format json` run does not pay for Jinja2 or the SARIF tables at start-up."""

    _NAMES = ("text", "json", "jsonl", "junit", "html", "sarif")

    def __getitem__(self, name: str) -> Reporter:
        if name not in self._NAMES:
            raise KeyError(name)
        return importlib.import_module(f"{__name__}.{name}").render

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)


FORMATS: Mapping[str, Reporter] = _Formats()
