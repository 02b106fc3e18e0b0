"""The pull-request report and gate, on DVC diffs recorded from real runs (tests/fixtures/report)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import parse_settings
from {{ cookiecutter.package_name }}.report import (
    MAX_CHARS,
    WATERMARK_TITLE,
    Change,
    Comparison,
    ReportError,
    compare,
    judge,
    metric_changes,
    param_changes,
    render,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"

# Fixed classification settings, so that the recorded cases mean the same in every bake.
SETTINGS = parse_settings(
    {
        "task": "classification",
        "data": {"source": "demo-arrests", "target": "released", "sensitive_features": ["colour", "sex"]},
        "split": {"test_size": 0.25, "seed": 42},
        "train": {"seed": 42, "model": {"kind": "linear", "regularization": 1.0}},
        "evaluate": {"permutation_repeats": 5, "thresholds": {"roc_auc": {"min": 0.6}}},
        "gate": {
            "metrics": {
                "roc_auc": {"direction": "higher", "tolerance": 0.01},
                "log_loss": {"direction": "lower", "tolerance": 0.02},
            },
            "beat_baseline": ["roc_auc"],
            "slice_tolerance": 0.05,
        },
        "serving": {"max_body_bytes": 1000, "max_batch_rows": 10},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "test", "registered_model": "test"},
    }
)


def recorded(name: str, base: str = "main", lock_changed: bool = True) -> Comparison:
    """A Comparison from a DVC diff recorded in a real project (errors stored by class name)."""
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    errors = {
        revision: {
            path: FileNotFoundError(text) if text.startswith("FileNotFoundError") else ValueError(text)
        }
        for revision, files in raw["metrics"]["errors"].items()
        for path, text in files.items()
    }
    metrics, has_baseline = metric_changes(raw["metrics"]["diff"], errors, base)
    params = param_changes(raw["params"].get("diff", {}))
    return Comparison(base, metrics, params, has_baseline, lock_changed)


def with_metric(comparison: Comparison, name: str, old: float | None, new: float | None) -> Comparison:
    return dataclasses.replace(comparison, metrics={**comparison.metrics, name: Change(old, new)})


def checks(comparison: Comparison) -> set[tuple[str, str]]:
    return {(f.check, f.metric) for f in judge(comparison, SETTINGS).findings}


def test_recorded_regression_fails_naming_the_metric():
    comparison = recorded("regression")
    verdict = judge(comparison, SETTINGS)
    assert not verdict.passed
    [finding] = [f for f in verdict.findings if f.metric == "log_loss"]
    assert (finding.check, finding.old, finding.new) == ("regression", 0.426399, 0.463022)


def test_change_within_tolerance_passes():
    comparison = recorded("regression")
    old = comparison.metrics["model.log_loss"].old
    assert judge(with_metric(comparison, "model.log_loss", old, old + 0.019), SETTINGS).passed


def test_regression_beyond_tolerance_in_a_higher_is_better_metric_fails():
    comparison = with_metric(recorded("regression"), "model.log_loss", 0.42, 0.42)
    assert checks(with_metric(comparison, "model.roc_auc", 0.72, 0.70)) == {("regression", "roc_auc")}


def test_slice_regression_fails():
    comparison = with_metric(recorded("regression"), "model.log_loss", 0.42, 0.42)
    name = "slices:colour.groups.Black.accuracy"
    old = comparison.metrics[name].old
    assert checks(with_metric(comparison, name, old, old * 0.9)) == {
        ("slice", "colour.groups.Black.accuracy")
    }
    assert checks(with_metric(comparison, name, old, old * 0.97)) == set()


def test_losing_to_the_baseline_fails():
    comparison = with_metric(recorded("regression"), "model.log_loss", 0.42, 0.42)
    comparison = with_metric(comparison, "model.roc_auc", 0.72, 0.715)
    assert checks(with_metric(comparison, "baseline.roc_auc", 0.5, 0.72)) == {("baseline", "roc_auc")}


def test_absolute_threshold_applies_without_a_baseline():
    first = recorded("first-pr")
    assert not first.has_baseline
    assert judge(first, SETTINGS).passed
    assert checks(with_metric(first, "model.roc_auc", None, 0.55)) == {("threshold", "roc_auc")}


def test_first_pr_ignores_regressions_and_says_no_baseline():
    first = recorded("first-pr")
    markdown = render(first, judge(first, SETTINGS), SETTINGS)
    assert "No baseline yet" in markdown
    assert "mermaid" not in markdown


def test_unreadable_metrics_are_an_error_not_a_pass():
    errors = {"workspace": {"metrics.json": ValueError("Expecting value: line 1 column 1")}}
    with pytest.raises(ReportError, match=r"metrics\.json at workspace"):
        metric_changes({}, errors, "main")
    with pytest.raises(ReportError, match="at workspace"):
        metric_changes({}, {"workspace": {"metrics.json": FileNotFoundError("gone")}}, "main")
    with pytest.raises(ReportError, match="at main"):
        metric_changes({}, {"main": ValueError("revision broken")}, "main")


def test_nothing_changed_says_so():
    comparison = recorded("regression", lock_changed=False)
    same = {name: Change(change.old, change.old) for name, change in comparison.metrics.items()}
    unchanged = dataclasses.replace(comparison, metrics=same, params={})
    markdown = render(unchanged, judge(unchanged, SETTINGS), SETTINGS)
    assert "No changes to the model" in markdown
    assert "No changes to the model" not in render(comparison, judge(comparison, SETTINGS), SETTINGS)


def test_markdown_follows_the_comment_rules():
    comparison = recorded("regression")
    markdown = render(comparison, judge(comparison, SETTINGS), SETTINGS)
    lines = markdown.splitlines()
    assert lines[0] == f"<!-- {WATERMARK_TITLE} -->"
    assert "❌ Model gate failed" in markdown
    assert "| regression | log_loss | 0.4264 | 0.463 | +0.03662 | tolerance 0.02 |" in markdown
    for index, line in enumerate(lines[:-1]):
        if line.startswith("|") and not lines[index + 1].startswith("|"):
            assert lines[index + 1] == "", f"table not followed by a blank line at line {index + 1}"
    assert not re.search(r"\]\((?!https?://)", markdown), "no links to local files"
    assert "- [ ]" not in markdown and "- [x]" not in markdown
    assert "```mermaid" in markdown and "<details>" in markdown


def test_markdown_matches_the_golden_file():
    comparison = recorded("regression")
    markdown = render(comparison, judge(comparison, SETTINGS), SETTINGS)
    assert markdown == (FIXTURES / "regression.md").read_text(encoding="utf-8")


def test_huge_report_is_truncated_with_a_note():
    comparison = recorded("regression")
    many = {f"slices:f{i}.groups.g{i}.accuracy": Change(0.5, 0.5) for i in range(5000)}
    big = dataclasses.replace(comparison, metrics={**comparison.metrics, **many})
    markdown = render(big, judge(big, SETTINGS), SETTINGS)
    assert len(markdown) <= MAX_CHARS
    assert "more rows not shown" in markdown
    assert markdown.rstrip().endswith("</details>")


# The thin DVC layer, against the real DVC API in a scratch repository ----------


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    dvc = str(Path(sys.executable).parent / "dvc")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "Test")
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text("metrics:\n  - metrics.json\n")
    (tmp_path / "params.yaml").write_text("train:\n  seed: 1\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"model": {"roc_auc": 0.7}}))
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def test_compare_reads_real_dvc_diffs(scratch_repo):
    (scratch_repo / "metrics.json").write_text(json.dumps({"model": {"roc_auc": 0.75}}))
    (scratch_repo / "params.yaml").write_text("train:\n  seed: 2\n")
    comparison = compare(scratch_repo, "main")
    assert comparison.has_baseline
    assert comparison.metrics["model.roc_auc"] == Change(0.7, 0.75)
    assert comparison.params["train.seed"] == Change(1, 2)
    assert not comparison.lock_changed


def test_compare_fails_on_a_corrupted_metrics_file(scratch_repo):
    (scratch_repo / "metrics.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"metrics\.json"):
        compare(scratch_repo, "main")
