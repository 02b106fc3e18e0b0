"""The gate's command (`{{ cookiecutter.package_name }} report`) and its thin DVC layer, against real git
and DVC in scratch repositories: the diffs it reads, the policy taken from the base, results
judged from elsewhere, and the refusals. The judging and rendering themselves are unit tests
(tests/unit/test_report.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.gate.compare import Change, ReportError, comparison_from_record, read_diffs
from {{ cookiecutter.package_name }}.provenance import git_commit

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"
ROOT = Path(__file__).resolve().parents[2]


def recorded_shape() -> set[str]:
    """The top-level keys of a recorded comparison (tests/fixtures/report), as read_diffs returns them."""
    return set(json.loads((FIXTURES / "regression.json").read_text()))


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def scratch(scratch_repository) -> Path:
    """A git + DVC repository: dvc.yaml naming the metrics, params and metrics committed on main."""
    metrics = json.dumps({"model": {"roc_auc": 0.7}})
    # No simple model to beat: these tests judge tolerances and where the policy comes from (a
    # looser tolerance would also widen the margin over the simple model, tested in test_report).
    params = re.sub(r"(?m)^  beat_simple: .*$", "  beat_simple: []", (ROOT / "params.yaml").read_text())
    files = {"dvc.yaml": "metrics:\n  - metrics.json\n", "metrics.json": metrics, "params.yaml": params}
    return scratch_repository(files)


def test_read_diffs_returns_what_the_pure_code_reads(scratch):
    (scratch / "metrics.json").write_text(json.dumps({"model": {"roc_auc": 0.75}}))
    (scratch / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("seed: 42", "seed: 7"))
    raw = read_diffs(scratch, "main")
    assert set(raw) == recorded_shape(), "the recordings have the same shape"
    entry = raw["metrics"]["diff"]["metrics.json"]["model.roc_auc"]
    assert (entry["old"], entry["new"]) == (0.7, 0.75)
    comparison = comparison_from_record(json.loads(json.dumps(raw)), "main")
    assert comparison.has_baseline and not comparison.lock_changed
    assert comparison.metrics["model.roc_auc"] == Change(0.7, 0.75)
    assert {name: change for name, change in comparison.params.items() if name.endswith("seed")} == {
        "split.seed": Change(42, 7),
        "train.seed": Change(42, 7),
    }

    (scratch / "metrics.json").write_text("{not json")
    raw = read_diffs(scratch, "main")
    [[path, error]] = raw["metrics"]["errors"]["workspace"].items()
    assert (path, error["missing"], set(error)) == ("metrics.json", False, {"error", "message", "missing"})
    with pytest.raises(ReportError, match=r"metrics\.json at workspace"):
        comparison_from_record(raw, "main")


def test_read_diffs_tells_a_base_without_metrics_from_an_unknown_base(scratch):
    git(scratch, "rm", "-q", "metrics.json")
    git(scratch, "commit", "-qm", "no metrics")
    git(scratch, "branch", "empty")
    git(scratch, "checkout", "-q", "HEAD~1", "--", "metrics.json")
    (scratch / "dvc.lock").write_text("schema: '2.0'\n")
    raw = read_diffs(scratch, "empty")
    assert raw["metrics"]["errors"]["empty"]["metrics.json"]["missing"] is True
    comparison = comparison_from_record(raw, "empty")
    assert not comparison.has_baseline and comparison.lock_changed, "an untracked dvc.lock is a change"
    with pytest.raises(ReportError, match="nosuch"):
        read_diffs(scratch, "nosuch")


def test_the_command_exits_2_with_one_error_line_and_an_error_report(scratch, capsys, monkeypatch):
    summary = scratch / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    output = scratch / "reports" / "pr-report.md"
    (scratch / "metrics.json").write_text("{not json")
    args = ["--root", str(scratch), "report", "--base", "main", "--output", str(output)]
    args += ["--json", str(scratch / "gate.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "metrics.json" in err
    assert "could not be computed" in output.read_text() and "could not be computed" in summary.read_text()
    verdict = json.loads((scratch / "gate.json").read_text())
    assert verdict["verdict"] == "error" and "metrics.json" in verdict["error"]
    assert verdict["commit"] == git_commit(scratch), "the verdict names the commit `register` tags"
    args[args.index("main")] = "nosuch"
    assert main(args) == 2
    assert "nosuch" in capsys.readouterr().err


# The policy comes from the base, the results may come from elsewhere ------------


def degrade(scratch: Path, **gate_changes: str) -> None:
    """This tree's metrics get worse beyond the gate's tolerance; params.yaml edits apply."""
    worse = {
        "model": {"roc_auc": 0.65, "log_loss": 0.4, "balanced_accuracy": 0.6},
        "baseline": {"roc_auc": 0.5, "log_loss": 0.46, "balanced_accuracy": 0.5},
    }
    (scratch / "metrics.json").write_text(json.dumps(worse))
    text = (scratch / "params.yaml").read_text()
    for old, new in gate_changes.items():
        assert old in text
        text = text.replace(old, new)
    (scratch / "params.yaml").write_text(text)


def report(scratch: Path, *extra: str) -> tuple[int, dict, str]:
    args = ["--root", str(scratch), "report", "--base", "main", "--json", str(scratch / "gate.json")]
    output = scratch / "reports" / "pr-report.md"
    code = main([*args, "--output", str(output), *extra])
    return code, json.loads((scratch / "gate.json").read_text()), output.read_text()


def labeled(tmp_path: Path, sender: str, author: str = "author", label: str = "gate-policy-approved") -> str:
    event = {
        "action": "labeled",
        "label": {"name": label},
        "sender": {"login": sender},
        "pull_request": {"number": 7, "user": {"login": author}, "labels": [{"name": label}]},
    }
    path = tmp_path / f"event-{sender}.json"
    path.write_text(json.dumps(event))
    return str(path)


{%- if cookiecutter.task == "classification" %}


LOOSER = {"roc_auc: {tolerance: 0.02}": "roc_auc: {tolerance: 1.0}"}


def test_a_pull_request_that_loosens_its_own_tolerance_still_fails(scratch, capsys, tmp_path):
    degrade(scratch)
    assert report(scratch)[0] == 1, "the regression fails the base's gate"
    degrade(scratch, **LOOSER)
    code, record, markdown = report(scratch)
    assert code == 1, "its own looser tolerance does not apply"
    assert record["policy"] == {
        "changed": ["gate.metrics.roc_auc.tolerance"],
        "applied": "base",
        "approved_by": None,
    }
    assert "This pull request changes the gate's policy" in markdown and "Not applied" in markdown
    assert "| gate.metrics.roc_auc.tolerance | 0.02 | 1 |" in markdown
    assert report(scratch, "--event", labeled(tmp_path, sender="author"))[0] == 1, "no self-approval"
    code, record, markdown = report(scratch, "--event", labeled(tmp_path, sender="reviewer"))
    assert code == 0 and record["policy"]["applied"] == "pull request"
    assert record["policy"]["approved_by"] == "reviewer" and "Applied: approved by `reviewer`" in markdown
    assert report(scratch, "--policy", "workspace")[0] == 0, "a merged commit's own policy applies"


def predictions_and_metrics(learned: float) -> tuple[str, dict]:
    """Per-row predictions of 600 fixed rows by a model that kept `learned` of what it could
    learn (1: all), as reports/predictions.csv holds them, and the metrics they give."""
    import numpy as np
    import pandas as pd

    from {{ cookiecutter.package_name }}.gate.noise import scorers
    from {{ cookiecutter.package_name }}.predictions import parse_rows, prediction_rows

    rng = np.random.default_rng(0)
    truth = rng.random(600) < 0.7
    proba = np.clip(0.5 + learned * (np.where(truth, 0.75, 0.35) + rng.normal(0, 0.2, 600) - 0.5), 0.01, 0.99)
    labels = np.where(truth, "Yes", "No")
    frame = prediction_rows(
        pd.Series([f"{i:04d}" for i in range(600)]),
        pd.Series(labels),
        np.where(proba >= 0.5, "Yes", "No"),
        proba[:, None],
        ["Yes"],
    )
    rows = parse_rows(frame.to_csv(index=False).encode(), "predictions.csv")
    names = ("roc_auc", "log_loss", "balanced_accuracy")
    model = {name: float(scorers(rows)[name](np.ones((1, len(rows))))[0]) for name in names}
    return frame.to_csv(index=False), {
        "model": model,
        "baseline": {"roc_auc": 0.5, "log_loss": 0.7, "balanced_accuracy": 0.5},
    }


def test_the_gate_tells_a_change_from_noise_with_the_bases_committed_predictions(scratch):
    """The base's reports/predictions.csv is read from git, this tree's from the workspace; a base
    older than the file is judged on point estimates and the report says so."""
    base_rows, base_metrics = predictions_and_metrics(learned=1.0)
    (scratch / "metrics.json").write_text(json.dumps(base_metrics))
    (scratch / "reports").mkdir()
    (scratch / "reports" / "predictions.csv").write_text(base_rows)
    git(scratch, "add", "-A")
    git(scratch, "commit", "-qm", "results with per-row predictions")
    worse_rows, worse_metrics = predictions_and_metrics(learned=0.5)
    (scratch / "metrics.json").write_text(json.dumps(worse_metrics))
    (scratch / "reports" / "predictions.csv").write_text(worse_rows)
    code, record, markdown = report(scratch)
    assert code == 1 and record["noise"]["paired"] and record["noise"]["rows"] == 600
    changes = {item["metric"]: item for item in record["changes"]}
    assert changes["log_loss"]["meaning"] == "regression" and changes["log_loss"]["interval"]["low"] > 0
    assert "paired bootstrap over the same 600 test rows, 1,000 resamples" in markdown
    assert "Charts: curves of the base and this pull request" in markdown and "ROC of" in markdown

    git(scratch, "rm", "-q", "--cached", "reports/predictions.csv")
    git(scratch, "commit", "-qm", "a base from before the per-row predictions")
    code, record, markdown = report(scratch)
    assert record["noise"] == {
        "reason": "the base has no reports/predictions.csv (older than the per-row predictions)"
    }
    assert "Changes judged on the point estimates alone" in markdown
    assert "Charts: curves" not in markdown, "no base predictions: no curves to overlay"
    assert {item["metric"]: item["interval"] for item in record["changes"]}["log_loss"] is None


{%- endif %}


def test_results_from_elsewhere_are_judged_in_this_tree(scratch, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").write_text(json.dumps({"model": {"roc_auc": 0.5}}))
    (results / "params.yaml").write_text((scratch / "params.yaml").read_text())
    (results / "dvc.yaml").write_text((scratch / "dvc.yaml").read_text())
    code, record, _ = report(scratch, "--results", str(results))
    assert code == 1 and record["findings"], "the results' regression is found"
    assert record["commit"] is None, "judged here, made elsewhere: no commit a version could claim"
    assert json.loads((scratch / "metrics.json").read_text()) == {"model": {"roc_auc": 0.5}}


def test_missing_results_report_a_failed_pipeline(scratch, tmp_path, capsys):
    code, record, markdown = report(scratch, "--results", str(tmp_path / "none"))
    assert code == 2 and record["verdict"] == "error"
    assert "The pipeline failed on this pull request" in markdown and "✅" not in markdown
    assert capsys.readouterr().err.startswith("error: the pull request's results have no metrics.json")


def test_results_that_are_not_plain_files_are_refused(scratch, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").write_text("{}")
    (results / "params.yaml").symlink_to(scratch / "params.yaml")
    code, record, _ = report(scratch, "--results", str(results))
    assert code == 2 and "params.yaml is not a regular file" in record["error"]


@pytest.mark.parametrize("base", ["main`id`", "main;id", "$(id)", "-x", "a..b", "main\nid", "1'; id; '"])
def test_a_base_that_is_no_plain_ref_is_refused_with_one_line(scratch, capsys, base):
    args = ["--root", str(scratch), "report", f"--base={base}", "--json", str(scratch / "gate.json")]
    assert main([*args, "--output", str(scratch / "r.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --base ") and err.count("\n") == 1
