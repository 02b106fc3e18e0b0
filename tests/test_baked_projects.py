"""Bake representative projects and run what was baked, as a user would (slow)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TEMPLATE, bake, csv_answers, run

# Each task on each dataset, and each model kind: random forests in the CSV bake's full suite.
REPRESENTATIVE = [
    {"task": "classification", "dataset": "demo", "model": "linear"},
    {"task": "classification", "dataset": "demo", "model": "gradient_boosting"},
    {"task": "regression", "dataset": "demo", "model": "linear"},
    {"task": "classification", "dataset": "csv", "model": "random_forest", **csv_answers("classification")},
    # Charges of the churn fixture: a regression CSV with missing values in numeric, categorical
    # and sensitive columns.
    {"task": "regression", "dataset": "csv", "model": "gradient_boosting", **csv_answers("regression")},
]
# The baked suite in full (the pipeline in a copy, the registry with real servers, the load
# test) on two bakes: the default and the CSV one. The others run the unit, data, model and
# serving tests (the server's fast path differs by model), less the server's processes, alert
# rules and timeouts: the rest is the same code for all.
FULL_SUITE = {"classification-demo-linear", "classification-csv-random_forest"}
SAME_FOR_EVERY_MODEL = [
    "tests/serving/test_process.py",
    "tests/serving/test_prometheus.py",
    "tests/serving/test_timeouts.py",
]
PARTIAL_SUITE = [
    "-m",
    "not integration and not registry and not load",
    *(f"--ignore={path}" for path in SAME_FOR_EVERY_MODEL),
]
# The team tracking server (PostgreSQL, S3, `mlflow server`) stores what any bake registers the
# same way: its tests run in the default bake's full suite only.
TEAM_SERVER_ONCE = {"classification-csv-random_forest": ["-k", "not team"]}


def answers_id(answers: dict[str, str]) -> str:
    return f"{answers['task']}-{answers['dataset']}-{answers['model']}"


def pipeline_outputs(dvc_yaml: str) -> tuple[set[str], set[str]]:
    """The outputs of dvc.yaml's stages: (kept in git: `cache: false`, kept in DVC's cache)."""
    in_git: set[str] = set()
    in_cache: set[str] = set()
    for stage in yaml.safe_load(dvc_yaml)["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind, []):
                path, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
                (in_git if options.get("cache", True) is False else in_cache).add(path)
    return in_git, in_cache


def unexpected_changes(changed: list[str], in_git: set[str]) -> list[str]:
    """Changed paths that are neither dvc.lock nor a git-kept output (or a file inside one)."""
    return [
        path
        for path in changed
        if path != "dvc.lock" and not any(path == out or path.startswith(f"{out}/") for out in in_git)
    ]


def porcelain(project: Path) -> list[str]:
    """Paths git sees as changed or new, one per file."""
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project).stdout
    return [line[3:] for line in status.splitlines()]


def test_the_full_suite_runs_on_bakes_that_exist():
    assert {answers_id(answers) for answers in REPRESENTATIVE} >= FULL_SUITE
    choices = json.loads((ROOT / "cookiecutter.json").read_text())
    baked = {(answers["task"], answers["dataset"]) for answers in REPRESENTATIVE}
    assert baked == set(itertools.product(choices["task"], choices["dataset"]))
    assert {answers["model"] for answers in REPRESENTATIVE} == set(choices["model"])
    assert set(TEAM_SERVER_ONCE) < FULL_SUITE  # at least one full suite runs the team server's tests


def test_output_checks_catch_stray_files():
    dvc_yaml = """
stages:
  a:
    outs: [data/raw.csv, {reports/v.json: {cache: false}}]
    metrics: [{metrics.json: {cache: false}}]
    plots: [{plots: {cache: false}}]
"""
    in_git, in_cache = pipeline_outputs(dvc_yaml)
    assert in_git == {"reports/v.json", "metrics.json", "plots"}
    assert in_cache == {"data/raw.csv"}
    changed = ["dvc.lock", "metrics.json", "plots/roc.json", "reports/v.json"]
    assert unexpected_changes(changed, in_git) == []
    stray = ["data/raw.csv", "plotsy.json", "reports/other.json", "models/.gitignore"]
    assert unexpected_changes(changed + stray, in_git) == stray


def template_paths() -> set[str]:
    """The files a bake writes before its first run, as paths in the project."""
    files = {str(path.relative_to(TEMPLATE)) for path in TEMPLATE.rglob("*") if path.is_file()}
    return {name.replace("{{cookiecutter.package_name}}", "ml_project") for name in files} | BAKE_WRITES


# Written by the bake itself: the lock file, the answers, where the template came from (for
# updates), the user's CSV (in git or DVC-tracked).
BAKE_WRITES = {
    "uv.lock",
    ".cookiecutter.json",
    ".cruft.json",
    "data/external/source.csv",
    "data/external/source.csv.dvc",
}


@pytest.mark.slow
@pytest.mark.parametrize("answers", REPRESENTATIVE, ids=answers_id)
def test_baked_project_installs_tests_and_reproduces(tmp_path, answers):
    project = bake(tmp_path, init_git="yes", first_run="yes", **answers)
    # The bake's first run: its first commit holds the results, and nothing is left to run or commit.
    assert porcelain(project) == [], "the first run must leave nothing uncommitted"
    committed = run(["git", "ls-files"], cwd=project).stdout.split()
    in_git, in_cache = pipeline_outputs((project / "dvc.yaml").read_text())
    assert unexpected_changes(sorted(set(committed) - template_paths()), in_git) == []
    assert "dvc.lock" in committed
    for out in in_git:
        assert any(path == out or path.startswith(f"{out}/") for path in committed), f"{out} not committed"
    for out in in_cache:
        assert (project / out).exists(), out
        run(["git", "check-ignore", "-q", out], cwd=project)  # DVC-cached outputs stay out of git
    assert json.loads((project / "metrics.json").read_text()), "metrics.json is empty"
    status = run(["uv", "run", "dvc", "status", "--json"], cwd=project).stdout
    assert json.loads(status) == {}, status
    assert yaml.safe_load((project / "schema.yaml").read_text())["columns"]
    known = yaml.safe_load((project / "tests" / "model" / "known_examples.yaml").read_text())
    assert len(known["examples"]) == 5 if answers["dataset"] == "csv" else known["examples"]

    selection = (
        TEAM_SERVER_ONCE.get(answers_id(answers), []) if answers_id(answers) in FULL_SUITE else PARTIAL_SUITE
    )
    junit = tmp_path / "junit.xml"
    tests = run(["uv", "run", "pytest", "-q", "-rs", f"--junitxml={junit}", *selection], cwd=project)
    assert " passed" in tests.stdout
    assert porcelain(project) == [], "the baked tests must not leave files behind"
    again = run(["uv", "run", "dvc", "repro"], cwd=project).stdout
    assert "Running stage" not in again, again
    assert porcelain(project) == []

    if answers_id(answers) in FULL_SUITE:
        lint_catches_a_wrong_argument_type(project)
        every_complete_id_scores_in_the_full_suite(project, junit)
        a_deleted_check_lowers_the_score(project, tmp_path)
    if answers["dataset"] == "csv":
        absent_data_fails_under_ci(project)
        no_examples_fail_under_ci(project)


def no_examples_fail_under_ci(project: Path) -> None:
    """With no known examples, their tests skip on a laptop and fail under CI=true, naming the
    command that records them."""
    known = project / "tests" / "model" / "known_examples.yaml"
    recorded = known.read_text()
    known.write_text("examples: []\ndirectional: []\n")
    try:
        tests = ["uv", "run", "pytest", "-q", "-rs", "tests/model/test_known_examples.py"]
        laptop = run(["env", "-u", "CI", *tests], cwd=project)
        ci = run(["env", "CI=true", *tests], cwd=project, check=False)
    finally:
        known.write_text(recorded)
    assert " failed" not in laptop.stdout and "examples record" in laptop.stdout, laptop.stdout
    assert ci.returncode == 1 and "ml_project examples record` proposes" in ci.stdout, ci.stdout
    assert "CI=true: a test that needs it fails rather than skips" in ci.stdout, ci.stdout


def absent_data_fails_under_ci(project: Path) -> None:
    """Without its data, a test skips on a laptop and fails under CI=true, saying how to get it."""
    source = project / "data" / "external" / "source.csv"
    aside = source.with_name("aside.csv")
    source.rename(aside)
    try:
        laptop = run(["env", "-u", "CI", "uv", "run", "pytest", "-q", "-rs", "tests/data"], cwd=project)
        ci = run(["env", "CI=true", "uv", "run", "pytest", "-q", "tests/data"], cwd=project, check=False)
    finally:
        aside.rename(source)
    assert " skipped" in laptop.stdout and " failed" not in laptop.stdout, laptop.stdout
    assert "the raw data is not here" in laptop.stdout, laptop.stdout
    assert ci.returncode == 1 and " skipped" not in ci.stdout, ci.stdout
    # No shared DVC remote (the default): the CSV is in git, and the message says how to restore it.
    assert "restore it with `git checkout -- data/external/source.csv` (CI=true:" in ci.stdout, ci.stdout


# A call that runs fine past ruff but passes text where the function takes an int.
WRONG_TYPE_CALL = """

def shown_columns() -> str:
    return listed(["a", "b"], limit="3")
"""


def scored_by_test_score(project: Path, *junit: Path) -> dict:
    command = ["uv", "run", "ml_project", "test-score", "--json", "--junit", *map(str, junit)]
    return json.loads(run(command, cwd=project).stdout)


def every_complete_id_scores_in_the_full_suite(project: Path, junit: Path) -> None:
    """Each rubric id whose table entry is complete scores 1 on the bake's own full run: every
    test it names ran here and passed (none skipped for this bake's answers)."""
    score = scored_by_test_score(project, junit)
    complete = [
        rid
        for rid, item in score["tests"].items()
        if item["evidence"]
        and not any(line.startswith(("missing:", "not run: gate:")) for line in item["evidence"])
    ]
    assert complete, score
    assert {rid: score["tests"][rid] for rid in complete if score["tests"][rid]["points"] != 1} == {}
    # Every id is complete on these bakes (classifiers); I4 also needs the gate's verdict, which a
    # pull request's run has (`report`) and this bare run does not: infrastructure 6, final 6.
    expected = {"data": 7, "model": 7, "infrastructure": 6, "monitoring": 7}
    assert score["sections"] == expected and score["final"] == 6, score["sections"]
    assert "not run: gate:judged" in score["tests"]["I4"]["evidence"]


def a_deleted_check_lowers_the_score(project: Path, where: Path) -> None:
    """Delete one test that checks D7 (feature code is tested) from the bake: D7 and the data
    section drop by one, and the evidence names the test that did not run."""
    module = project / "tests" / "unit" / "test_features.py"
    original = module.read_text()
    check = "test_iso_dates_are_days_not_categories"
    before, after = where / "before.xml", where / "after.xml"
    run(["uv", "run", "pytest", "-q", "tests/unit/test_features.py", f"--junitxml={before}"], cwd=project)
    start = original.index(f"def {check}(")
    end = original.index("\ndef ", start + 1)
    module.write_text(original[:start] + original[end + 1 :])
    try:
        run(["uv", "run", "pytest", "-q", "tests/unit/test_features.py", f"--junitxml={after}"], cwd=project)
    finally:
        module.write_text(original)
    scored, dropped = scored_by_test_score(project, before), scored_by_test_score(project, after)
    assert (scored["tests"]["D7"]["points"], dropped["tests"]["D7"]["points"]) == (1, 0)
    assert dropped["sections"]["data"] == scored["sections"]["data"] - 1
    assert f"not run: tests/unit/test_features.py::{check}" in dropped["tests"]["D7"]["evidence"]


def lint_catches_a_wrong_argument_type(project: Path) -> None:
    """`make lint` type-checks: clean as baked, failing once a wrong-type call is added."""
    run(["make", "lint"], cwd=project)
    module = project / "src" / "ml_project" / "data.py"
    original = module.read_text()
    module.write_text(original + WRONG_TYPE_CALL)
    try:
        result = run(["make", "lint"], cwd=project, check=False)
    finally:
        module.write_text(original)
    assert result.returncode != 0, result.stdout
    assert 'Argument "limit" to "listed" has incompatible type "str"' in result.stdout, result.stdout
