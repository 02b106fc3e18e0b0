"""The pull-request report and gate.

The pure part runs on DVC answers recorded from real runs of this template
(tests/fixtures/report/*.json, written by `report.read_diffs`):

- regression.json       classification, train.model.regularization 1 -> 100000: log_loss regresses
- regression-task.json  regression, regularization 1 -> 300: overall metrics within tolerance, slices regress
- first-pr.json         the template's first commit as the base: no metrics there yet
- unchanged.json        a docs-only change: same params, metrics and dvc.lock
- corrupted.json        metrics.json in the workspace is not valid JSON

The golden reports of regression and regression-task also draw the base's and the pull
request's curves, from per-row predictions beside them (<name>.base.csv, <name>.pr.csv: made
for these tests, as reports/predictions.csv holds them).

The thin DVC layer runs for real against scratch git repositories at the end.
Set UPDATE_GOLDEN=1 to rewrite the golden markdown files after an intended change.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config.reading import ConfigError
from {{ cookiecutter.package_name }}.config.settings import load_settings, parse_settings
from {{ cookiecutter.package_name }}.gate.bounds import slice_changes
from {{ cookiecutter.package_name }}.gate.compare import Change, Comparison, ReportError, comparison_from_record
from {{ cookiecutter.package_name }}.gate.curves import Curves, curves
from {{ cookiecutter.package_name }}.gate.judge import gate_record, judge
from {{ cookiecutter.package_name }}.gate.policy import policy_changes, policy_from_params
from {{ cookiecutter.package_name }}.gate.render import MAX_CHARS, WATERMARK_TITLE, render, render_error
from {{ cookiecutter.package_name }}.metrics import BETTER
from {{ cookiecutter.package_name }}.predictions import parse_rows

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"
ROOT = Path(__file__).resolve().parents[2]

COMMON = {
    "split": {"test_size": 0.25, "seed": 42},
    "train": {"seed": 42, "model": {"kind": "linear", "regularization": 1.0}},
    "serving": {"max_body_bytes": 1000, "max_batch_rows": 10},
    "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "test", "registered_model": "test"},
}
# The template's defaults for the demo data, fixed here so that every bake judges the recordings alike.
CLASSIFICATION = {
    **COMMON,
    "task": "classification",
    "data": {"source": "demo-arrests", "target": "released", "sensitive_features": ["colour", "sex"]},
    "evaluate": {"permutation_repeats": 5, "thresholds": {"roc_auc": {"min": 0.6}, "log_loss": {"max": 1.0}}},
    "gate": {
        "metrics": {
            "roc_auc": {"tolerance": 0.01},
            "log_loss": {"tolerance": 0.02},
            "balanced_accuracy": {"tolerance": 0.02},
        },
        "beat_baseline": ["roc_auc", "log_loss"],
        "slice_tolerance": 0.05,
    },
}
REGRESSION = {
    **COMMON,
    "task": "regression",
    "data": {"source": "demo-diabetes", "target": "target", "sensitive_features": ["sex", "age"]},
    "evaluate": {"permutation_repeats": 5, "thresholds": {"r2": {"min": 0.2}}},
    "gate": {
        "metrics": {
            "rmse": {"tolerance": 1.0},
            "r2": {"tolerance": 0.02},
        },
        "beat_baseline": ["rmse", "r2"],
        "slice_tolerance": 0.05,
    },
}
POLICY = policy_from_params(CLASSIFICATION, "params.yaml")


def settings_with(base: dict, **gate) -> object:
    """The policy of `base` with these gate settings changed."""
    raw = copy.deepcopy(base)
    raw["gate"].update(gate)
    parse_settings(raw)  # still valid settings
    return policy_from_params(raw, "params.yaml")


def record(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def recorded(name: str) -> Comparison:
    return comparison_from_record(record(name), "main")


def recorded_curves(name: str) -> Curves:
    """The curves of the predictions beside a recording: this pull request's, then the base's."""
    sides = [FIXTURES / f"{name}.{side}.csv" for side in ("pr", "base")]
    return curves(*(parse_rows(path.read_bytes(), path.name) for path in sides))


def with_metric(comparison: Comparison, name: str, old: float | None, new: float | None) -> Comparison:
    return dataclasses.replace(comparison, metrics={**comparison.metrics, name: Change(old, new)})


def checks(comparison: Comparison, settings=POLICY) -> set[tuple[str, str]]:
    return {(f.check, f.metric) for f in judge(comparison, settings).findings}


def flat() -> Comparison:
    """The recorded regression with log_loss put back: no check fails."""
    comparison = recorded("regression")
    old = comparison.metrics["model.log_loss"].old
    comparison = with_metric(comparison, "model.log_loss", old, old)
    assert judge(comparison, POLICY).passed
    return comparison


# The gate ------------------------------------------------------------------------


def test_recorded_regression_fails_naming_the_metric_with_old_new_and_delta():
    comparison = recorded("regression")
    assert comparison.has_baseline and comparison.lock_changed
    assert comparison.params == {"train.model.regularization": Change(1.0, 100000.0)}
    verdict = judge(comparison, POLICY)
    assert not verdict.passed
    assert [(f.check, f.metric, f.old, f.new) for f in verdict.findings] == [
        ("regression", "log_loss", 0.426399, 0.463022)
    ]
    markdown = render(comparison, verdict, POLICY)
    assert (
        "| regression | log_loss | 0.4264 | 0.463 | +0.03662 | lower is better, tolerance 0.02 |" in markdown
    )


def test_a_change_within_tolerance_passes():
    comparison = recorded("regression")
    old = comparison.metrics["model.log_loss"].old
    assert judge(with_metric(comparison, "model.log_loss", old, old + 0.019), POLICY).passed
    assert judge(with_metric(comparison, "model.log_loss", old, old + 0.02), POLICY).passed, (
        "the limit itself"
    )
    assert not judge(with_metric(comparison, "model.log_loss", old, old + 0.0201), POLICY).passed


def test_a_higher_is_better_metric_that_drops_beyond_tolerance_fails():
    comparison = flat()
    assert checks(with_metric(comparison, "model.roc_auc", 0.72, 0.70)) == {("regression", "roc_auc")}
    assert checks(with_metric(comparison, "model.roc_auc", 0.72, 0.80)) == set(), "an improvement passes"


def test_a_gated_metric_that_disappears_fails():
    comparison = flat()
    assert ("missing", "balanced_accuracy") in checks(
        with_metric(comparison, "model.balanced_accuracy", 0.5, None)
    )


def test_recorded_slice_regression_fails_while_overall_metrics_pass():
    comparison = recorded("regression-task")
    settings = policy_from_params(REGRESSION, "params.yaml")
    verdict = judge(comparison, settings)
    assert {f.check for f in verdict.findings} == {"slice"}
    assert ("slice", "sex.groups.2.0.rmse") in checks(comparison, settings)
    finding = next(f for f in verdict.findings if f.metric == "sex.groups.2.0.rmse")
    assert (finding.old, finding.new) == (49.899718, 52.862719)
    assert judge(comparison, settings_with(REGRESSION, slice_tolerance=0.2)).passed


def test_slice_metrics_are_gated_by_direction_and_relative_tolerance():
    comparison = flat()
    name = "slices:colour.groups.Black.accuracy"
    old = comparison.metrics[name].old
    assert checks(with_metric(comparison, name, old, old * 0.9)) == {
        ("slice", "colour.groups.Black.accuracy")
    }
    assert checks(with_metric(comparison, name, old, old * 0.97)) == set()
    assert checks(with_metric(comparison, "slices:sex.groups.Male.rmse", 10.0, 10.6)) == {
        ("slice", "sex.groups.Male.rmse")
    }
    assert checks(with_metric(comparison, "slices:sex.groups.Male.rmse", 10.0, 5.0)) == set()
    for neutral in (
        "colour.groups.Black.selection_rate",
        "colour.groups.Black.count",
        "colour.difference.accuracy",
    ):
        assert checks(with_metric(comparison, f"slices:{neutral}", 1.0, 0.1)) == set(), neutral


def test_losing_to_the_trivial_baseline_fails():
    first = recorded("first-pr")
    model = first.metrics["model.roc_auc"].new
    assert checks(with_metric(first, "baseline.roc_auc", None, model + 0.01)) == {("baseline", "roc_auc")}
    assert checks(with_metric(first, "baseline.roc_auc", None, model)) == {("baseline", "roc_auc")}, (
        "a tie loses"
    )
    comparison = flat()
    assert ("baseline", "log_loss") in checks(with_metric(comparison, "baseline.log_loss", 0.46, 0.40))


def test_a_model_no_better_than_the_simple_model_by_its_tolerance_fails():
    policy = settings_with(CLASSIFICATION, beat_simple=["roc_auc", "log_loss"])  # tolerances 0.01, 0.02
    first = recorded("first-pr")
    auc, loss = first.metrics["model.roc_auc"].new, first.metrics["model.log_loss"].new
    clear = with_metric(
        with_metric(first, "simple.roc_auc", None, auc - 0.05), "simple.log_loss", None, loss + 0.05
    )
    assert judge(clear, policy).passed, "a clear lead on both passes, even without a baseline"
    assert checks(with_metric(clear, "simple.roc_auc", None, auc - 0.005), policy) == {
        ("simple", "roc_auc")
    }, "a lead within the tolerance is no lead"
    assert checks(with_metric(clear, "simple.log_loss", None, loss), policy) == {("simple", "log_loss")}
    assert checks(first, policy) == {("simple", "roc_auc"), ("simple", "log_loss")}, "no simple model: fails"
    assert checks(clear, POLICY) == set() and checks(first, POLICY) == set(), "not listed: not checked"
    verdict = judge(with_metric(clear, "simple.roc_auc", None, auc), policy)
    [finding] = verdict.findings
    assert finding.limit == f"higher than the simple model ({auc:.4g}) by over 0.01"
    markdown = render(clear, verdict, policy)
    assert "| simple | roc_auc |" in markdown and "beats the simple model" in markdown


def test_an_absolute_threshold_fails_even_without_a_baseline():
    first = recorded("first-pr")
    assert checks(with_metric(first, "model.roc_auc", None, 0.55)) == {("threshold", "roc_auc")}
    assert checks(with_metric(first, "model.log_loss", None, 1.2)) == {
        ("threshold", "log_loss"),
        ("baseline", "log_loss"),  # the trivial baseline's 0.46 is better too
    }
    assert ("threshold", "roc_auc") in checks(dataclasses.replace(first, metrics={}))


def test_first_pr_has_no_baseline_checks_thresholds_only_and_says_so():
    first = recorded("first-pr")
    assert not first.has_baseline and not first.unchanged
    assert judge(first, POLICY).passed
    worse = with_metric(first, "slices:colour.groups.Black.accuracy", None, 0.1)
    assert judge(worse, POLICY).passed, "nothing to regress from"
    markdown = render(first, judge(first, POLICY), POLICY)
    assert "No baseline yet" in markdown and "✅ Model gate passed" in markdown
    assert '"base"' not in markdown, "the charts show this PR and the trivial baseline only"


def test_a_base_without_slices_still_gates_the_model_metrics():
    raw = record("regression")
    raw["metrics"]["errors"] = {
        "main": {"reports/slices.json": {"error": "FileNotFoundError", "message": "gone", "missing": True}}
    }
    for entry in raw["metrics"]["diff"]["reports/slices.json"].values():
        entry["old"] = None
    comparison = comparison_from_record(raw, "main")
    assert comparison.has_baseline
    assert checks(comparison) == {("regression", "log_loss")}


HIGH_BAR = {"roc_auc": {"min": 0.99}}


def test_nothing_changed_says_so_and_passes():
    comparison = recorded("unchanged")
    assert comparison.unchanged and not comparison.params and not comparison.lock_changed
    strict = policy_from_params(
        {**CLASSIFICATION, "evaluate": {"permutation_repeats": 5, "thresholds": HIGH_BAR}}, "params.yaml"
    )
    verdict = judge(comparison, strict)
    assert verdict.passed, "the base already went through the gate"
    markdown = render(comparison, verdict, strict)
    assert "No changes to the model" in markdown and "✅ Model gate passed" in markdown
    moved = dataclasses.replace(comparison, lock_changed=True)
    assert not moved.unchanged and "No changes to the model" not in render(
        moved, judge(moved, POLICY), POLICY
    )


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            {"metrics": {"rmse": {"tolerance": 1}}, "beat_baseline": []},
            "gate.metrics: unknown metric 'rmse' for classification",
        ),
        ({"metrics": {"roc_auc": {"direction": "up", "tolerance": 0.01}}}, "gate.metrics.roc_auc.direction"),
        (
            {"metrics": {"roc_auc": {"tolerance": -1}}},
            "gate.metrics.roc_auc.tolerance",
        ),
        ({"beat_baseline": ["f1"]}, "'f1' must also be listed in gate.metrics"),
        ({"beat_simple": ["f1"]}, "gate.beat_simple: 'f1' must also be listed in gate.metrics"),
        ({"slice_tolerance": -0.1}, "gate.slice_tolerance"),
    ],
)
def test_the_gate_settings_are_validated(gate, message):
    raw = copy.deepcopy(CLASSIFICATION)
    raw["gate"].update(gate)
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(raw)


def test_the_baked_params_have_a_valid_gate():
    settings = load_settings(ROOT / "params.yaml")
    assert settings.gate.metrics and set(settings.gate.beat_baseline) <= set(settings.gate.metrics)
    assert set(settings.gate.beat_simple) <= set(settings.gate.metrics)


# DVC's errors --------------------------------------------------------------------


def test_recorded_unreadable_metrics_are_an_error_not_a_pass():
    with pytest.raises(ReportError, match=r"metrics\.json at workspace: .*corrupted"):
        recorded("corrupted")


@pytest.mark.parametrize(
    ("revision", "path", "missing"),
    [
        ("main", "metrics.json", False),  # the base's file is corrupted
        ("workspace", "metrics.json", True),  # this PR has no metrics: `dvc repro` did not run
        ("workspace", "reports/slices.json", True),
        ("main", "*", False),  # DVC could not read the base revision at all
        ("main", "*", True),
    ],
)
def test_every_read_error_but_a_file_missing_on_the_base_fails(revision, path, missing):
    raw = record("regression")
    raw["metrics"]["errors"] = {revision: {path: {"error": "Boom", "message": "boom", "missing": missing}}}
    with pytest.raises(ReportError, match=f"at {revision}: boom"):
        comparison_from_record(raw, "main")
    raw["metrics"]["errors"] = {}
    raw["params"]["errors"] = {revision: {path: {"error": "Boom", "message": "boom", "missing": missing}}}
    with pytest.raises(ReportError, match=f"at {revision}: boom"):
        comparison_from_record(raw, "main")


# Markdown ------------------------------------------------------------------------

CASES = {
    "regression": POLICY,
    "regression-task": policy_from_params(REGRESSION, "params.yaml"),
    "first-pr": POLICY,
    "unchanged": POLICY,
}


def assert_follows_the_comment_rules(markdown: str) -> None:
    lines = markdown.splitlines()
    assert lines[0] == f"<!-- {WATERMARK_TITLE} -->", "the hidden watermark comes first"
    assert re.match(r"## (✅|❌) Model gate (passed|failed)", lines[1]), (
        "the verdict is the first visible line"
    )
    assert len(markdown) <= MAX_CHARS
    for index, line in enumerate(lines):
        if line.startswith("|") and index + 1 < len(lines):
            assert lines[index + 1].startswith("|") or lines[index + 1] == "", (
                f"no blank line after line {index + 1}"
            )
    assert not re.search(r"\]\((?!https://)", markdown), "no links or images pointing at local files"
    assert "<img" not in markdown and "src=" not in markdown
    assert not re.search(r"^\s*[-*+] \[[ xX]\]", markdown, flags=re.MULTILINE), "no task lists"
    assert markdown.count("<details") == markdown.count("</details>")
    assert markdown.count("```") % 2 == 0
    assert "![" not in markdown


@pytest.mark.parametrize("name", sorted(CASES))
def test_markdown_follows_the_comment_rules(name):
    comparison = recorded(name)
    markdown = render(comparison, judge(comparison, CASES[name]), CASES[name])
    assert_follows_the_comment_rules(markdown)
    assert "### Metrics" in markdown and "model." in markdown
    assert ("\nxychart-beta\n" in markdown) is not comparison.unchanged, "charts unless nothing changed"


@pytest.mark.parametrize("name", ["regression", "regression-task"])
def test_markdown_matches_the_golden_file(name):
    comparison = recorded(name)
    markdown = render(comparison, judge(comparison, CASES[name]), CASES[name], curves=recorded_curves(name))
    assert_follows_the_comment_rules(markdown)
    golden = FIXTURES / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(markdown, encoding="utf-8")
    assert markdown == golden.read_text(encoding="utf-8")


def test_fairness_markdown_matches_the_golden_file():
    """The recorded regression with log_loss put back, fairness differences and a group too small
    added: a gap whose whole interval lies above its bound fails; the report shows each difference
    with its interval and bound, and the group too small to judge."""
    policy = settings_with(
        CLASSIFICATION,
        slices={"recall": {"min": 0.35}},
        fairness={"demographic_parity_difference": {"max": 0.2}, "equalized_odds_difference": {"max": 0.3}},
    )
    gaps = {
        "colour": {
            "fairness": {
                "groups_judged": 2,
                "demographic_parity_difference": {"value": 0.3791, "low": 0.3312, "high": 0.4275},
                "equalized_odds_difference": {"value": 0.2473, "low": 0.1293, "high": 0.375},
            }
        },
        "sex": {"groups": {"Other": {"count": 12, "too_small": 1}}},
    }
    comparison = flat()
    comparison = dataclasses.replace(comparison, metrics={**comparison.metrics, **slice_changes(gaps)})
    verdict = judge(comparison, policy)
    assert [(f.check, f.metric) for f in verdict.findings] == [
        ("fairness", "colour.fairness.demographic_parity_difference")
    ]
    markdown = render(comparison, verdict, policy)
    assert_follows_the_comment_rules(markdown)
    golden = FIXTURES / "fairness.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(markdown, encoding="utf-8")
    assert markdown == golden.read_text(encoding="utf-8")


def test_a_huge_report_is_cut_to_the_limit_with_a_note():
    comparison = recorded("regression")
    slices = {f"slices:f{i}.groups.g{i}.accuracy": Change(0.9, 0.5) for i in range(5_000)}
    params = {f"train.p{i}": Change("x" * 300, i) for i in range(3_000)}
    big = dataclasses.replace(comparison, metrics={**comparison.metrics, **slices}, params=params)
    verdict = judge(big, POLICY)
    assert len(verdict.findings) == 5_001
    markdown = render(big, verdict, POLICY)
    assert_follows_the_comment_rules(markdown)
    assert "❌ Model gate failed: 5001 checks" in markdown
    assert "| regression | log_loss |" in markdown, "the first failures are shown"
    assert re.search(r"\d+ more rows not shown", markdown)
    assert len(render(big, verdict, POLICY, limit=10_000)) <= 10_000


def test_the_verdict_record_names_each_failed_check():
    comparison = recorded("regression")
    record = gate_record(comparison, judge(comparison, POLICY))
    assert record["verdict"] == "fail" and record["error"] is None and record["has_baseline"]
    assert record["findings"] == [
        {
            "check": "regression",
            "metric": "log_loss",
            "old": 0.426399,
            "new": 0.463022,
            "limit": "lower is better, tolerance 0.02",
        }
    ]
    unchanged = recorded("unchanged")
    assert gate_record(unchanged, judge(unchanged, POLICY))["verdict"] == "pass"
    assert json.dumps(record)


def test_the_error_report_replaces_a_stale_verdict():
    markdown = render_error("origin/main", "DVC could not read metrics.json at workspace: corrupted")
    assert markdown.splitlines()[0] == f"<!-- {WATERMARK_TITLE} -->"
    assert "could not be computed" in markdown and "corrupted" in markdown
    assert "✅" not in markdown and markdown.count("```") == 2


def test_the_policy_of_an_older_base_loads_with_defaults():
    raw = copy.deepcopy(CLASSIFICATION)
    policy = policy_from_params(raw, "params.yaml at main")
    assert policy.canary.min_agreement == 0.85, "no canary section yet: its defaults"
    older = copy.deepcopy(CLASSIFICATION)
    for name, gated in older["gate"]["metrics"].items():
        gated["direction"] = BETTER[name]  # older params named which way is better
    assert policy_changes(policy_from_params(older, "params.yaml at main"), policy) == [], (
        "dropping the direction keys is no policy change"
    )
    older["gate"]["metrics"]["log_loss"]["direction"] = "higher"
    flipped = r"gate\.metrics\.log_loss\.direction: 'higher', but lower is better"
    with pytest.raises(ConfigError, match=flipped):
        policy_from_params(older, "params.yaml at main")
    raw["gate"]["metrics"]["roc_auc"]["tolerance"] = "a lot"
    with pytest.raises(ConfigError, match=r"^params\.yaml at main: gate\.metrics\.roc_auc\.tolerance: "):
        policy_from_params(raw, "params.yaml at main")
    raw = copy.deepcopy(CLASSIFICATION)
    raw["evaluate"]["thresholds"]["roc_auc"] = {"min": "high"}
    with pytest.raises(ConfigError, match=r"evaluate\.thresholds\.roc_auc\.min"):
        policy_from_params(raw, "params.yaml")


def test_values_from_a_pull_request_mention_no_one():
    comparison = dataclasses.replace(
        recorded("regression"), params={"train.note": Change("a", "cc @maintainers [x](https://e.com)")}
    )
    markdown = render(comparison, judge(comparison, POLICY), POLICY)
    assert "@maintainers" not in markdown and "&#64;maintainers" in markdown
    assert "[x](" not in markdown


# Model age (reports/staleness.json) ---------------------------------------------

STALENESS = {
    "time_column": "year",
    "age_unit": "year",
    "metric": "roc_auc",
    "tolerance": 0.02,
    "latest_window": {"from": 2001, "to": 2002, "rows": 1488},
    "models": [
        {"age": 1.0, "trained_from": 1999, "trained_to": 2000, "rows": 2369, "roc_auc": 0.7163},
        {"age": 2.0, "trained_from": "@someone | x", "trained_to": 1999, "rows": 1976, "roc_auc": 0.65},
    ],
    "max_age": 1.0,
    "max_age_is_lower_bound": False,
}


def test_the_report_shows_quality_against_model_age_folded():
    comparison = flat()
    verdict = judge(comparison, POLICY)
    markdown = render(comparison, verdict, POLICY, staleness=STALENESS)
    assert "<details><summary>Model age:" in markdown
    assert "| 1 | 1999 to 2000 | 2369 | 0.7163 | within tolerance |" in markdown
    # A value from the pull request's file is escaped: no mention, no extra column.
    assert "| 2 | &#64;someone \\| x to 1999 | 1976 | 0.65 | too old |" in markdown
    assert "Recommended maximum model age: 1 (year)" in markdown
    assert "Model age" not in render(comparison, verdict, POLICY)  # no file: nothing shown


def test_the_report_says_when_model_age_is_unknown_or_unreadable():
    comparison = flat()
    verdict = judge(comparison, POLICY)
    unknown = {"time_column": None, "max_age": None, "reason": "data.time_column is not set", "models": []}
    assert "gives no maximum model age: data.time_column is not set" in render(
        comparison, verdict, POLICY, staleness=unknown
    )
    broken = {**STALENESS, "models": [{"age": "old"}]}
    assert "not as the backtest stage writes it" in render(comparison, verdict, POLICY, staleness=broken)
