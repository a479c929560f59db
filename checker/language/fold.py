"""A rule's `fold:` section: what its findings are about, and whether they declare those
objects lost or broken (docs/rules.md, "Consequences"; the engine folds with it in
checker/engine/folding.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DECLARATIONS", "KINDS", "Fold", "fold_of"]

KINDS = ("list", "mdl", "block", "common_buffer", "channel")
DECLARATIONS = ("lost", "broken")


@dataclass(frozen=True, slots=True)
class Fold:
    """A rule's `fold:` section: (kind, value name) pairs of what its findings are about and,
    for a rule whose findings declare those objects lost or broken, of what they keep alive."""

    about: tuple[tuple[str, str], ...]
    declares: str | None = None
    keeps: tuple[tuple[str, str], ...] = ()

    @property
    def values(self) -> tuple[str, ...]:
        """The names of the check's values this section reads."""
        return tuple(name for _, name in (*self.about, *self.keeps))


def _pairs(section: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for kind, names in (section or {}).items():
        for name in [names] if isinstance(names, str) else names:
            pairs.append((str(kind), str(name)))
    return tuple(pairs)


def fold_of(data: Mapping[str, Any]) -> Fold | None:
    """A rule's fold section from its validated YAML data (rules/schema.json), or None."""
    section = data.get("fold")
    if not section:
        return None
    return Fold(_pairs(section.get("about")), section.get("declares"), _pairs(section.get("keeps")))
