"""The DDI parameter table (`rules/ddi-signatures.yaml`) and naming positional arguments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from ..errors import ResourceError
from ..resources import YAML_LOADER, rules_dir

__all__ = ["Signature", "load_signatures", "signatures"]

_KINDS = {"ddi", "routine", "macro"}


@dataclass(frozen=True, slots=True)
class Signature:
    """A DDI's or driver routine's documented parameters, in order."""

    name: str
    header: str
    kind: str
    params: tuple[str, ...]
    out: frozenset[str]
    routine: str | None = None

    def param_at(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None


def load_signatures(path: Path) -> dict[str, Signature]:
    """Read and check a parameter table; ResourceError names the entry that is wrong."""
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as error:
        raise ResourceError(f"cannot read the DDI table {path}: {error}") from None
    if not isinstance(data, dict):
        raise ResourceError(f"{path}: expected a mapping of DDI names")
    table: dict[str, Signature] = {}
    for name, entry in data.items():
        where = f"{path}: {name}"
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), list):
            raise ResourceError(f"{where}: needs a `params` list")
        unknown = set(entry) - {"header", "kind", "params", "out", "routine"}
        if unknown:
            raise ResourceError(f"{where}: unknown keys {sorted(unknown)}")
        params = tuple(str(p) for p in entry["params"])
        out = frozenset(str(p) for p in entry.get("out", []))
        kind = entry.get("kind", "ddi")
        if kind not in _KINDS:
            raise ResourceError(f"{where}: kind must be one of {sorted(_KINDS)}")
        if len(set(params)) != len(params) or not out <= set(params):
            raise ResourceError(f"{where}: parameters repeat, or `out` names a missing one")
        table[name] = Signature(
            name=name,
            header=str(entry.get("header", "")),
            kind=kind,
            params=params,
            out=out,
            routine=entry.get("routine"),
        )
    return table


@cache
def signatures() -> dict[str, Signature]:
    """The built-in table, read once."""
    return load_signatures(rules_dir() / "ddi-signatures.yaml")
