"""Where the files dmalint ships live: `grammar/` and `rules/`.

In a wheel they are package data under `checker/_data/`; in a checkout (or an editable
install) they are the top-level `grammar/` and `rules/` folders beside `checker/`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from .errors import ResourceError

__all__ = ["YAML_LOADER", "grammar_path", "rules_dir"]

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, three times faster, when PyYAML has it

_PACKAGE = Path(__file__).resolve().parent


@cache
def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise ResourceError(f"dmalint's {name}/ folder is missing from the installation ({_PACKAGE})")


def grammar_path() -> Path:
    """The dmatrace grammar file."""
    return _data_dir("grammar") / "dmatrace.lark"


def rules_dir() -> Path:
    """The folder of built-in rules and the DDI parameter table."""
    return _data_dir("rules")
