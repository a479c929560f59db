"""`dmalint rules` and `dmalint explain`: the rule catalogue in the terminal."""

from __future__ import annotations

import difflib
import json
from typing import TextIO

from rich.console import Console
from rich.markdown import Markdown

from ..errors import UsageError
from ..language.rulebook import Rule, Rulebook

__all__ = ["explain", "list_rules", "rule_markdown"]


def list_rules(rulebook: Rulebook, stream: TextIO, fmt: str = "text") -> None:
    """One line a rule: code, name, severity, status, summary (or a JSON array)."""
    if fmt == "json":
        rows = [
            {"code": r.code, "name": r.name, "severity": str(r.severity), "status": r.doc.get("status"),
             "family": r.family, "summary": r.summary}
            for r in rulebook
        ]
        json.dump(rows, stream, indent=2)
        stream.write("\n")
        return
    width = max((len(rule.name) for rule in rulebook), default=4)
    code_width = max((len(rule.code) for rule in rulebook), default=4)
    for rule in rulebook:
        stream.write(f"{rule.code:<{code_width}}  {rule.name:<{width}}  {rule.severity!s:<7}  {rule.doc.get('status', ''):<10}  {rule.summary}\n")


def rule_markdown(rule: Rule) -> str:
    """A rule's documentation as Markdown: what, why, the contract, an example, what instead."""
    doc = rule.doc
    parts = [
        f"# {rule.code} {rule.name}",
        f"*{rule.severity}, {doc.get('status', 'stable')}, since {doc.get('since', '?')}*",
        rule.summary,
        "## Why it matters",
        doc.get("why", ""),
        "## The contract",
        doc.get("contract", ""),
    ]
    if doc.get("applies_to"):
        parts.append("Applies to: " + ", ".join(f"`{name}`" for name in doc["applies_to"]))
    check = doc.get("check")
    if check:
        summaries = [_check_summary(one) for one in (check if isinstance(check, list) else [check])]
        parts += ["## How dmalint checks it", *summaries, f"Message: `{doc.get('message', '')}`"]
    parts += ["## Example", f"```text\n{doc.get('example', '').rstrip()}\n```"]
    parts += ["## Use instead", f"```text\n{doc.get('use_instead', '').rstrip()}\n```"]
    see = [f"Driver Verifier: {doc['bugcheck']}"] if doc.get("bugcheck") else []
    see += [f"Static Driver Verifier: {name}" for name in doc.get("see_also", [])]
    see += list(doc.get("references", []))
    if see:
        parts += ["## See also", "\n".join(f"- {item}" for item in see)]
    return "\n\n".join(part for part in parts if part)


def _check_summary(check: dict) -> str:
    """One paragraph saying what the check looks at, from its YAML."""
    kind = check.get("kind")
    if kind == "end":
        text = f"At the end of the trace, each object of `{check['each']}`"
        return text + (f" where `{check['where']}`." if check.get("where") else ".")
    if kind == "irql":
        rows = []
        for row in check.get("table", ()):
            bound = "exactly" if "exactly" in row else "at most"
            level = row.get("exactly") or row.get("at_most")
            when = f" when `{row['when']}`" if row.get("when") else ""
            rows.append(f"- {bound} {level}{when}: " + ", ".join(f"`{ddi}`" for ddi in row["ddi"]))
        return "The level each DDI is called at:\n\n" + "\n".join(rows)
    verbs = "/".join(check.get("verbs", ()))
    ddis = check.get("ddi")
    subject = f"`{verbs}` events" + (" of " + ", ".join(f"`{ddi}`" for ddi in ddis) if ddis else "")
    each = f", each of `{check['for']}`" if check.get("for") else ""
    where = f", where `{check['where']}`" if check.get("where") else ""
    return f"On {subject}{each}{where}."


def explain(rulebook: Rulebook, key: str, stream: TextIO, color: bool) -> None:
    rule = rulebook.get(key)
    if rule is None:
        known = [r.code for r in rulebook] + [r.name for r in rulebook]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else " (dmalint rules lists them)"
        raise UsageError(f"no rule is called {key!r}{hint}")
    console = Console(file=stream, color_system="standard" if color else None, force_terminal=color, width=100)
    console.print(Markdown(rule_markdown(rule)))
