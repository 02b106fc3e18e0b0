"""The gate against a base without committed results, or with stale ones: the base reproduced
in a worktree, with real git and DVC in a scratch repository whose one stage writes the
metrics; and the warning when a pull request's results were not committed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.gate.compare import COMMITTED_LOCK

pytestmark = pytest.mark.integration

# The stage writes the metrics that `value.txt` says: the base reproduced gives what its code gives.
STAGE = {
    "stages": {
        "evaluate": {
            "cmd": "python -c \"import json; v = float(open('value.txt').read()); "
            "json.dump({'model': {'roc_auc': v}}, open('metrics.json', 'w'))\"",
            "deps": ["value.txt"],
            "metrics": [{"metrics.json": {"cache": False}}],
        }
    }
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def dvc(cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def project(scratch_repository) -> Path:
    """A git + DVC repository whose main has a one-stage pipeline but no committed results."""
    files = {"dvc.yaml": yaml.safe_dump(STAGE), "value.txt": "0.9", ".gitignore": "reports/\n"}
    return scratch_repository(files)


def report(project: Path, *extra: str) -> tuple[int, dict, str]:
    output, verdict = project / "reports" / "pr-report.md", project / "reports" / "gate.json"
    args = [
        "--root",
        str(project),
        "report",
        "--base",
        "main",
        "--output",
        str(output),
        "--json",
        str(verdict),
    ]
    code = main([*args, *extra])
    return code, json.loads(verdict.read_text()), output.read_text()


def test_a_base_without_results_is_reproduced_and_a_regression_against_it_fails(project, capsys):
    main_before = git(project, "rev-parse", "main")
    (project / "value.txt").write_text("0.5")  # the pull request: roc_auc 0.9 on the base, 0.5 here
    dvc(project, "repro")
    code, record, markdown = report(project)
    assert code == 1, markdown
    assert record["has_baseline"] and record["reproduced"] == "it has no committed metrics.json"
    assert ("regression", "roc_auc") in {(f["check"], f["metric"]) for f in record["findings"]}
    assert "| model.roc_auc | 0.9 | 0.5 |" in markdown
    assert "as reproduced for this report (it has no committed metrics.json)" in markdown
    assert "main is reproduced for the comparison" in capsys.readouterr().out
    assert git(project, "worktree", "list").count("\n") == 1, "the worktree is removed"
    assert git(project, "rev-parse", "main") == main_before, "main is left as it was"


def test_a_base_whose_results_are_stale_is_reproduced(project):
    dvc(project, "repro")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results")
    (project / "value.txt").write_text("0.6")  # the code changed, the results were not reproduced
    git(project, "commit", "-qam", "a change without its results")
    dvc(project, "repro")  # the pull request reproduces: 0.6, as main's code gives
    code, record, markdown = report(project)
    assert code == 0, markdown
    assert record["reproduced"].endswith("(value.txt)")
    assert "| model.roc_auc | 0.6 | 0.6 |" in markdown, "compared with main as reproduced, not with 0.9"


def test_a_base_that_cannot_be_reproduced_is_said_so_and_has_no_baseline(project):
    (project / "value.txt").write_text("not a number")
    git(project, "commit", "-qam", "main is broken")
    (project / "value.txt").write_text("0.8")
    dvc(project, "repro")
    code, record, markdown = report(project)
    assert code != 2 and not record["has_baseline"], markdown
    assert "No baseline yet" in markdown and "regression" not in {f["check"] for f in record["findings"]}
    assert (
        "was reproduced for this report because it has no committed metrics.json, and that failed" in markdown
    )
    assert "dvc repro of the base failed" in markdown
    assert git(project, "worktree", "list").count("\n") == 1


def test_results_that_were_not_committed_are_warned_about(project, tmp_path):
    dvc(project, "repro")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results")
    assert "not what its pipeline produced" not in report(project)[2]
    (project / "value.txt").write_text("0.85")
    dvc(project, "repro")  # dvc.lock changed and is not committed
    _, record, markdown = report(project)
    assert record["results_uncommitted"] and "its results were not committed" in markdown
    # Handed over by the workflow: the committed copy travels with the results.
    results = tmp_path / "results"
    results.mkdir()
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", "metrics.json"):
        (results / name).write_bytes((project / name).read_bytes())
    (results / COMMITTED_LOCK).write_bytes((project / "dvc.lock").read_bytes())
    assert not report(project, "--results", str(results))[1]["results_uncommitted"]
    (results / COMMITTED_LOCK).write_text("")  # the pull request committed no dvc.lock
    assert report(project, "--results", str(results))[1]["results_uncommitted"]
