"""Reporters: each renders a run's findings in one format, and nothing else.

A reporter is `render(result: RunResult, stream: TextIO, context: ReportContext) -> None`:
the same findings plus the rules' metadata (`context.rulebook`) for every format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from ..run import RunResult
from . import html, json, junit, sarif, text
from .context import ReportContext

__all__ = ["FORMATS", "ReportContext", "Reporter"]

Reporter = Callable[[RunResult, TextIO, ReportContext], None]
FORMATS: dict[str, Reporter] = {"text": text.render, "json": json.render, "junit": junit.render, "html": html.render, "sarif": sarif.render}
