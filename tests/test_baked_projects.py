"""Bake representative projects and run what was baked, as a user would (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import bake, csv_answers, run

pytestmark = pytest.mark.slow

REPRESENTATIVE = [
    {"task": "classification", "dataset": "demo", "model": "linear"},
    {"task": "classification", "dataset": "demo", "model": "random_forest"},
    {"task": "classification", "dataset": "demo", "model": "gradient_boosting"},
    {"task": "regression", "dataset": "demo", "model": "linear"},
    {"task": "classification", "dataset": "csv", "model": "random_forest", **csv_answers("classification")},
]
# What `dvc repro` may add to git: the lock file and the git-tracked metrics and plots.
PIPELINE_OUTPUTS = ("dvc.lock", "metrics.json", "reports/", "plots/")


def answers_id(answers: dict[str, str]) -> str:
    return f"{answers['task']}-{answers['dataset']}-{answers['model']}"


def porcelain(project: Path) -> list[str]:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project).stdout.splitlines()


@pytest.mark.parametrize("answers", REPRESENTATIVE, ids=answers_id)
def test_baked_project_installs_tests_and_reproduces(tmp_path, answers):
    project = bake(tmp_path, init_git="yes", **answers)
    run(["make", "install"], cwd=project)
    if answers["dataset"] == "csv":
        # The README's first step for a CSV project: write the contract, review, commit.
        run(["uv", "run", "ml_project", "schema", "infer"], cwd=project)
        run(["git", "commit", "-qam", "Data contract inferred from the CSV"], cwd=project)

    run(["make", "test"], cwd=project)
    assert porcelain(project) == [], "the tests must not leave files behind"

    repro = run(["uv", "run", "dvc", "repro"], cwd=project)
    assert "Running stage 'evaluate'" in repro.stdout
    status = run(["uv", "run", "dvc", "status"], cwd=project).stdout
    assert "up to date" in status, status
    changed = [line[3:] for line in porcelain(project)]
    assert changed, "dvc repro wrote no tracked outputs"
    assert all(path.startswith(PIPELINE_OUTPUTS) for path in changed), changed

    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    assert porcelain(project) == []
    again = run(["uv", "run", "dvc", "repro"], cwd=project).stdout
    assert "Running stage" not in again, again
    assert porcelain(project) == []
