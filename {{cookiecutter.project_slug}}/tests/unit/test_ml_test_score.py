"""The ML Test Score: the shipped table names real tests, and an id scores 1 only when its
checks and its fault tests all passed in the results read (a failed, skipped or absent test,
a missing fault test, or no gate verdict scores 0)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.ml_test_score import GATE_JUDGED, IDS, ScoreError, parse_table, score

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "tests" / "ml_test_score.yaml"


def shipped():
    return parse_table(TABLE.read_text(encoding="utf-8"), "tests/ml_test_score.yaml")


def listed_tests() -> set[str]:
    return {name for entry in shipped().values() for name in [*entry.checks, *entry.faults] if "::" in name}


def junit(cases: dict[str, str]) -> str:
    """A pytest JUnit XML file: test name (path::function) -> passed | failed | skipped."""
    body = {"passed": "", "failed": "<failure message='x'/>", "skipped": "<skipped message='x'/>"}
    rows = []
    for name, outcome in cases.items():
        path, function = name.split("::")
        classname = path.removesuffix(".py").replace("/", ".")
        rows.append(f'<testcase classname="{classname}" name="{function}">{body[outcome]}</testcase>')
    return f'<testsuites><testsuite name="pytest">{"".join(rows)}</testsuite></testsuites>'


def scored(cases: dict[str, str], gate: dict | None = None) -> dict:
    from {{ cookiecutter.package_name }}.ml_test_score import junit_outcomes

    return score(shipped(), junit_outcomes(junit(cases), "junit.xml"), gate)


def complete_ids() -> list[str]:
    return [rid for rid, entry in shipped().items() if entry.checks and entry.faults and not entry.missing]


def test_every_test_the_table_names_is_a_test_of_this_project() -> None:
    for name in sorted(listed_tests()):
        path, function = name.split("::")
        module = ROOT / path
        assert module.is_file(), name
        functions = {
            node.name for node in ast.walk(ast.parse(module.read_text())) if isinstance(node, ast.FunctionDef)
        }
        assert function in functions, f"{name}: no such test"


def test_all_passing_scores_exactly_the_complete_ids() -> None:
    result = scored({name: "passed" for name in listed_tests()}, gate={"verdict": "fail"})
    ones = sorted(rid for rid, item in result["tests"].items() if item["points"] == 1)
    assert ones == sorted(complete_ids()) and ones, ones
    assert set(result) == {"sections", "final", "tests"} and set(result["tests"]) == set(IDS)
    assert result["final"] == min(result["sections"].values())
    per_section = {"data": "D", "model": "M", "infrastructure": "I", "monitoring": "Mon"}
    for section, prefix in per_section.items():
        expected = sum(1 for rid in ones if re.fullmatch(f"{prefix}[0-9]", rid))
        assert result["sections"][section] == expected, section


@pytest.mark.parametrize("outcome", ["failed", "skipped", "absent"])
def test_a_fault_test_that_did_not_pass_scores_its_id_zero(outcome: str) -> None:
    """The fault the score exists for: a check counted without its proof."""
    rubric_id = complete_ids()[0]
    fault = shipped()[rubric_id].faults[0]
    cases = {name: "passed" for name in listed_tests()}
    if outcome == "absent":
        del cases[fault]
    else:
        cases[fault] = outcome
    result = scored(cases, gate={"verdict": "pass"})
    assert result["tests"][rubric_id]["points"] == 0
    shown = "not run" if outcome == "absent" else outcome
    assert f"{shown}: {fault}" in result["tests"][rubric_id]["evidence"]


def test_every_parametrization_of_a_test_must_pass() -> None:
    from {{ cookiecutter.package_name }}.ml_test_score import junit_outcomes, outcome

    name = "tests/unit/test_x.py::test_y"
    text = junit({}).replace(
        "</testsuite>",
        '<testcase classname="tests.unit.test_x" name="test_y[a]"/>'
        '<testcase classname="tests.unit.test_x" name="test_y[b]"><failure/></testcase></testsuite>',
    )
    assert outcome(name, junit_outcomes(text, "junit.xml"), None) == "failed"


def test_the_gate_check_needs_a_verdict() -> None:
    cases = {name: "passed" for name in listed_tests()}
    gated = [rid for rid, entry in shipped().items() if GATE_JUDGED in entry.checks]
    for gate in (None, {"verdict": "error"}):
        result = scored(cases, gate)
        assert all(f"not run: {GATE_JUDGED}" in result["tests"][rid]["evidence"] for rid in gated)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("D1: {test: x, faults: [a]}\n", "needs exactly the 28 rubric ids"),
        ("[1, 2]\n", "needs exactly the 28 rubric ids"),
        ("{", "not valid YAML"),
    ],
)
def test_a_broken_table_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ScoreError, match=message):
        parse_table(text, "tests/ml_test_score.yaml")


def test_an_id_without_a_fault_test_must_say_what_is_missing() -> None:
    text = TABLE.read_text(encoding="utf-8")
    broken = re.sub(
        r"(?ms)^M2:\n.*?(?=^M3:)",  # its checks and fault tests gone, and nothing said instead
        "M2:\n  test: offline and online metrics correlate\n",
        text,
    )
    assert broken != text
    with pytest.raises(ScoreError, match="M2: no fault test, so say what is missing"):
        parse_table(broken, "tests/ml_test_score.yaml")


def test_the_command_prints_the_score_and_refuses_unreadable_results(tmp_path, capsys) -> None:
    results = tmp_path / "junit.xml"
    results.write_text(junit({name: "passed" for name in listed_tests()}))
    args = ["--root", str(ROOT), "test-score", "--junit", str(results), "--gate", str(tmp_path / "none.json")]
    assert main([*args, "--json", "--markdown", str(tmp_path / "score.md")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tests"]["D1"]["points"] == 1
    assert "<details><summary>ML Test Score: " in (tmp_path / "score.md").read_text()
    results.write_text("<not xml")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not JUnit XML" in err


def test_the_junit_files_of_several_test_jobs_are_read_from_their_folders(tmp_path) -> None:
    """CI downloads one folder per test job (junit-test-fast/junit.xml, ...): all of them count."""
    from {{ cookiecutter.package_name }}.ml_test_score import read_results

    names = sorted(listed_tests())
    half = len(names) // 2
    for job, part in (("junit-test-fast", names[:half]), ("junit-test-deploy", names[half:])):
        (tmp_path / job).mkdir()
        (tmp_path / job / "junit.xml").write_text(junit(dict.fromkeys(part, "passed")))
    outcomes, gate = read_results([tmp_path], tmp_path / "gate.json")
    assert gate is None
    result = score(shipped(), outcomes, {"verdict": "pass"})
    assert sorted(rid for rid, item in result["tests"].items() if item["points"]) == sorted(complete_ids())


def test_the_comment_keeps_the_report_and_drops_a_block_that_would_not_fit() -> None:
    from {{ cookiecutter.package_name }}.ml_test_score import MAX_COMMENT, with_report

    assert with_report("report", "<details>score</details>") == "report\n\n<details>score</details>"
    full = "x" * (MAX_COMMENT - 10)
    assert with_report(full, "<details>score</details>") == full
