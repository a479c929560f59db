"""Rule codes the engine itself stands behind: a trace with unparsed lines (TRACE001) or lost
records (TRACE007) is never clean, so no selection turns them off."""

from __future__ import annotations

__all__ = ["ALWAYS_ON", "RECORDS_LOST", "SYNTAX_ERROR"]

SYNTAX_ERROR = "TRACE001"
RECORDS_LOST = "TRACE007"
# Rules no selection turns off: a trace with unparsed lines or lost records is never clean.
ALWAYS_ON = {SYNTAX_ERROR: "a trace with unparsed lines is never clean",
             RECORDS_LOST: "a trace with lost records is never clean"}
