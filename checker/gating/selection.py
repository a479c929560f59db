"""`--select` and `--ignore`: which rules' findings a run reports."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import UsageError
from ..language.codes import ALWAYS_ON
from ..language.rulebook import Rulebook

__all__ = ["Selection"]


@dataclass(frozen=True, slots=True)
class Selection:
    """Codes to report. Items are codes (`SGL002`), names (`sgl-double-put`) or family
    prefixes (`SGL`). TRACE001 and TRACE007 are always on: a trace with unparsed lines or
    lost records is never clean."""

    codes: frozenset[str]

    @classmethod
    def build(cls, rulebook: Rulebook, select: str | None, ignore: str | None) -> Selection:
        every = {rule.code for rule in rulebook}
        chosen = cls._expand(rulebook, select, "--select") if select else set(every)
        dropped = cls._expand(rulebook, ignore, "--ignore") if ignore else set()
        for code, why in ALWAYS_ON.items():
            if code in dropped:
                raise UsageError(f"--ignore: {code} cannot be turned off: {why}")
        return cls(frozenset((chosen - dropped) | (set(ALWAYS_ON) & every)))

    @staticmethod
    def _expand(rulebook: Rulebook, text: str, option: str) -> set[str]:
        codes: set[str] = set()
        for item in filter(None, (part.strip() for part in text.split(","))):
            rule = rulebook.get(item)
            if rule is not None:
                codes.add(rule.code)
                continue
            family = {r.code for r in rulebook if r.code.rstrip("0123456789") == item.upper()}
            if not family:
                known = sorted({r.code for r in rulebook} | {r.code.rstrip("0123456789") for r in rulebook})
                close = difflib.get_close_matches(item.upper(), known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise UsageError(f"{option}: no rule or family is called {item!r}{hint}")
            codes |= family
        return codes

    def __contains__(self, code: str) -> bool:
        return code in self.codes
