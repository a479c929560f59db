"""Every rule's fixtures: findings exactly on the `# ruleid:` lines, none on the `# ok:` lines.

As in semgrep-rules: an annotation applies to the next line that is not a comment.
`# todoruleid:` marks a known miss (the finding must still be absent) and `# todook:` a known
false alarm (still present), so fixing either makes this test say so.
"""

import re

import pytest

from checker.language.rulebook import builtin_rulebook

from .helpers import check_bytes

ANNOTATION = re.compile(r"^\s*#\s*(ruleid|ok|todoruleid|todook):\s*([a-z0-9-]+)\s*$")
SUPPRESSION = re.compile(r"^\s*#\s*dmalint:")  # a suppression comment can be annotated: TRACE006 sits on it

CASES = [(rule, index, fixture) for rule in builtin_rulebook() for index, fixture in enumerate(rule.doc["tests"])]


def annotations(fixture: str) -> dict[int, str]:
    """Line number (1-based) of the annotated event -> the annotation's kind."""
    marks: dict[int, str] = {}
    pending: list[str] = []
    for number, line in enumerate(fixture.splitlines(), start=1):
        match = ANNOTATION.match(line)
        if match:
            pending.append(match.group(1))
        elif line.strip() and (not line.lstrip().startswith("#") or SUPPRESSION.match(line)):
            for kind in pending:
                marks[number] = kind
            pending = []
    return marks


@pytest.mark.parametrize("rule, index, fixture", CASES, ids=[f"{r.code}-{i}" for r, i, _ in CASES])
def test_rule_fixture(rule, index, fixture):
    marks = annotations(fixture)
    assert marks, "a fixture annotates at least one event"
    found = {f.location.line for f in check_bytes(fixture.encode(), f"{rule.name}.trace") if f.code == rule.code}
    expected = {line for line, kind in marks.items() if kind in ("ruleid", "todook")}
    assert found == expected, f"{rule.code}: findings on lines {sorted(found)}, annotated ruleid on {sorted(expected)}"


def test_every_rule_has_a_ruleid_and_an_ok_case():
    for rule in builtin_rulebook():
        kinds = {kind for fixture in rule.doc["tests"] for kind in annotations(fixture).values()}
        assert {"ruleid", "ok"} <= kinds, rule.code
