"""Where the files dmalint ships live: `grammar/` and `rules/`.

In a wheel they are package data under `checker/_data/`; in a checkout (or an editable
install) they are the top-level `grammar/` and `rules/` folders beside `checker/`.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

import yaml

from .errors import ResourceError

__all__ = ["YAML_LOADER", "grammar_path", "lark_cache", "rules_dir"]

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


def lark_cache(name: str) -> str | bool:
    """Where Lark may keep the analysed parser of grammar `name` between runs (it checks the
    grammar's hash in the file and rebuilds when it changed), or False for no cache.

    Building the LALR tables takes a quarter of a second a grammar at every start; loading
    them takes a few milliseconds. The cache is the user's own (`$XDG_CACHE_HOME/dmalint`,
    else `~/.cache/dmalint`, made private); `DMALINT_NO_CACHE=1` turns it off, and a cache
    that cannot be made or written is simply not used."""
    if os.environ.get("DMALINT_NO_CACHE"):
        return False
    import lark

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "dmalint"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(directory, os.W_OK):
        return False
    version = f"py{sys.version_info[0]}{sys.version_info[1]}-lark{lark.__version__}"
    return str(directory / f"{name}-{version}.lark-cache")
