"""Reporters: each renders a run's findings in one format, and nothing else."""

from __future__ import annotations

from . import json, text

__all__ = ["FORMATS"]

FORMATS = {"text": text.render, "json": json.render}
