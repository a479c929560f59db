"""Rule files: the schema and its located errors, the rulebook, `dmalint rules` and `explain`,
`--select` / `--ignore`."""

import json
import shutil

import pytest

from checker import cli
from checker.errors import RuleFileError
from checker.language.rule_schema import validate_rule_text
from checker.language.rulebook import Rulebook, builtin_rulebook
from checker.resources import rules_dir

from .helpers import ROOT

GOOD = (rules_dir() / "trace" / "trace-syntax-error.yaml").read_text()


def problems(text, stem="trace-syntax-error"):
    return [str(p) for p in validate_rule_text(text, "r.yaml", stem)]


def test_the_builtin_rules_validate():
    assert problems(GOOD) == []


def _line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    "old, new, message, needle",
    [
        ("severity: error", "severity: fatal", "severity: 'fatal' is not one of", "severity:"),
        ("code: TRACE001", "code: trace-1", "does not match", "code:"),
        ("status: stable", "status: stable\nfrobnicate: 1", "unknown field 'frobnicate'", "frobnicate"),
        ("name: trace-syntax-error", "name: trace-syntax-errors", "differs from its file name", "name:"),
        ("# ok: trace-syntax-error\n    t=0.000100", "# ok: other-rule\n    t=0.000100", "fixture annotates 'other-rule'", "# ok: other-rule"),
    ],
)
def test_schema_errors_name_file_line_and_column(old, new, message, needle):
    assert_one_problem(GOOD, "trace-syntax-error", old, new, message, needle)


def assert_one_problem(original, stem, old, new, message, needle):
    """Editing `old` into `new` gives exactly one problem saying `message`, on the line of `needle`."""
    text = original.replace(old, new, 1)
    assert text != original
    found = [p for p in problems(text, stem) if message in p]
    assert len(found) == 1, problems(text, stem)
    assert found[0].startswith(f"r.yaml:{_line_of(text, needle)}:")


DOUBLE_PUT = (rules_dir() / "sgl" / "sgl-double-put.yaml").read_text()


@pytest.mark.parametrize(
    "old, new, message, needle",
    [
        ("  kind: event", "  kind: eventful", "check/kind: 'eventful' is not one of", "kind:"),
        ("  verbs: [call, enter]", "  verbs: [call, entre]", "'entre' is not one of", "verbs:"),
        ("  verbs: [call, enter]\n", "", "'verbs' is a required property", "kind: event"),
        ("  kind: event", "  kind: end", "'verbs' has no use in a check of kind end", "verbs:"),
        ("  where: fact.list_put_before", "  where: fact.list_put_before and", "check/where: unexpected end", "where:"),
        ("  where: fact.list_put_before", "  where: lenn(fact.list_put_before)", "unknown function 'lenn'", "where:"),
        ("    list: fact.list_put_before.buffer", "    lst: fact.list_put_before.buffer", "template names '{list}'", "message:"),
        ("  identity: [fact.list_put_before.ordinal]", "  identity: [fact.list_put_before.ordinal]\n  on: [call]",
         "unknown field 'on' (YAML reads it as true", "on:"),
    ],
)
def test_check_errors_name_file_line_and_column(old, new, message, needle):
    assert_one_problem(DOUBLE_PUT, "sgl-double-put", old, new, message, needle)


def test_all_problems_at_once_and_sorted():
    text = GOOD.replace("severity: error", "severity: fatal").replace("status: stable", "status: stable\nextra: 1")
    text = text.replace("why: >", "whyy: >")
    found = problems(text)
    assert len(found) >= 4  # the bad severity, two unknown fields, the missing `why`
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    assert any("'why' is a required property" in p for p in found)


def test_yaml_syntax_error_is_located():
    (problem,) = problems("code: [TRACE001\n")
    assert problem.startswith("r.yaml:2:1: error: not valid YAML")


def test_fixtures_need_both_kinds():
    text = GOOD.replace("# ok: trace-syntax-error", "# ruleid: trace-syntax-error")
    assert any("need at least one '# ok: trace-syntax-error'" in p for p in problems(text))


def test_rulebook_refuses_invalid_files_and_duplicate_codes(tmp_path):
    (tmp_path / "trace").mkdir()
    shutil.copy(rules_dir() / "trace" / "trace-syntax-error.yaml", tmp_path / "trace")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "trace-syntax-error.yaml").write_text(GOOD)
    (tmp_path / "extra" / "broken.yaml").write_text(GOOD.replace("name: trace-syntax-error", "name: broken").replace("severity: error", "severity: bad"))
    with pytest.raises(RuleFileError) as info:
        Rulebook.load(tmp_path)
    text = str(info.value)
    assert "broken.yaml:3:11: error: severity: 'bad'" in text
    assert "code TRACE001 is already used by" in text and "extra/trace-syntax-error.yaml" in text


def test_rulebook_lookup_by_code_or_name():
    book = Rulebook.load(rules_dir())
    assert book.get("trace001").name == "trace-syntax-error" and book.get("TRACE-SYNTAX-ERROR").code == "TRACE001"
    assert book.get("SGL999") is None


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_rules_lists_codes_names_severities_statuses(capsys):
    status, out, _ = run(capsys, "rules")
    lines = out.splitlines()
    assert status == 0 and len(lines) == len(builtin_rulebook()) and lines[0].split()[0] == "ADP001"
    assert next(line for line in lines if line.startswith("TRACE001")).split()[:4] == ["TRACE001", "trace-syntax-error", "error", "stable"]
    status, out, _ = run(capsys, "rules", "--format", "json")
    assert next(row for row in json.loads(out) if row["code"] == "TRACE001") == {
        "code": "TRACE001", "name": "trace-syntax-error", "severity": "error", "status": "stable", "family": "trace",
        "summary": "A line of the trace does not parse as dmatrace version 1.",
    }


def test_rules_validate_a_users_directory(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "my-rule.yaml").write_text(GOOD.replace("name: trace-syntax-error", "name: my-rule").replace("code: TRACE001", "code: MINE001").replace("severity: error", "severity: loud").replace("trace-syntax-error", "my-rule"))
    status, out, _ = run(capsys, "rules", "validate", str(tmp_path))
    assert status == 1
    assert f"{tmp_path / 'mine' / 'my-rule.yaml'}:3:11: error: severity: 'loud' is not one of" in out
    assert out.strip().endswith("1 rule file(s) in " + str(tmp_path) + ": 1 problem(s)")
    status, out, _ = run(capsys, "rules", "validate")
    assert status == 0 and "0 problem(s)" in out


def test_explain_prints_the_rules_documentation(capsys):
    status, out, _ = run(capsys, "explain", "trace-syntax-error", "--no-color")
    assert status == 0
    for heading in ("TRACE001 trace-syntax-error", "Why it matters", "The contract", "Example", "Use instead"):
        assert heading in out
    assert "\x1b[" not in out


def test_explain_unknown_rule_suggests(capsys):
    status, _, err = run(capsys, "explain", "TRACE01")
    assert status == 2 and "did you mean TRACE001?" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ignore", "TRACE001"], "cannot be turned off"),
        (["--select", "NOPE"], "--select: no rule or family is called 'NOPE'"),
        (["--ignore", "TRACE01"], "did you mean TRACE001?"),
    ],
)
def test_select_and_ignore_refuse_what_cannot_be(capsys, tmp_path, flags, message):
    trace = tmp_path / "t.trace"
    trace.write_text("call KeGetCurrentIrql()\n")
    status, _, err = run(capsys, "check", *flags, str(trace))
    assert status == 2 and message in err


def test_select_a_family_and_the_syntax_rule_stays_on(capsys, tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text("call KeGetCurrentIrql()\ncal B()\n")
    status, out, _ = run(capsys, "check", "--select", "TRACE", str(trace))
    family = [rule for rule in builtin_rulebook() if rule.code.startswith("TRACE")]
    assert status == 1 and "TRACE001" in out and f"against {len(family)} rules" in out


def _user_rule(tmp_path, code="MINE001", name="my-rule"):
    directory = tmp_path / "user"
    (directory / "mine").mkdir(parents=True, exist_ok=True)
    text = GOOD.replace("code: TRACE001", f"code: {code}").replace("trace-syntax-error", name)
    (directory / "mine" / f"{name}.yaml").write_text(text)
    return directory


def test_user_rules_load_beside_the_builtin_ones(capsys, tmp_path):
    directory = _user_rule(tmp_path)
    status, out, _ = run(capsys, "rules", "--rules", str(directory))
    codes = [line.split()[0] for line in out.splitlines()]
    assert status == 0 and "MINE001" in codes and len(codes) == len(builtin_rulebook()) + 1
    status, out, _ = run(capsys, "explain", "my-rule", "--rules", str(directory), "--no-color")
    assert status == 0 and "MINE001 my-rule" in out


def test_user_rule_clashing_with_a_builtin_code_names_both_files(capsys, tmp_path):
    directory = _user_rule(tmp_path, code="TRACE001", name="my-clash")
    trace = tmp_path / "t.trace"
    trace.write_text("call KeGetCurrentIrql()\n")
    status, _, err = run(capsys, "check", "--rules", str(directory), str(trace))
    assert status == 2
    assert "code TRACE001 is already used by" in err and "trace-syntax-error.yaml" in err and "my-clash.yaml" in err
    status, _, err = run(capsys, "check", "--rules", str(tmp_path / "nope"), str(trace))
    assert status == 2 and "not a directory" in err


def test_the_readme_family_table_names_every_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    families: dict[str, list[int]] = {}
    for rule in builtin_rulebook():
        families.setdefault(rule.code.rstrip("0123456789"), []).append(int(rule.code[-3:]))
    for family, numbers in families.items():
        assert numbers == list(range(1, len(numbers) + 1)), family  # codes are never skipped
        assert f"| {family} | {family}001-{family}{len(numbers):03d} |" in readme, family
