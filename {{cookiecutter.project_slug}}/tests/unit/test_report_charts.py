"""The report's charts: gated metrics on an axis that shows a failing change, and the base's and the
pull request's curves computed from the per-row predictions (gate/charts.py, gate/curves.py)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from {{ cookiecutter.package_name }}.gate.charts import axis, curve_charts, metric_charts
from {{ cookiecutter.package_name }}.gate.compare import Change, Comparison
from {{ cookiecutter.package_name }}.gate.curves import GRID, LEVELS, MAX_CLASSES, curves, roc_on_grid
from {{ cookiecutter.package_name }}.gate.policy import policy_from_params
from {{ cookiecutter.package_name }}.predictions import Rows, parse_rows, prediction_rows

pytestmark = pytest.mark.unit

GATE = {
    "task": "classification",
    "split": {"test_size": 0.25, "seed": 42},
    "train": {"seed": 42, "model": {"kind": "linear", "regularization": 1.0}},
    "data": {"source": "demo-arrests", "target": "released"},
    "serving": {"max_body_bytes": 1000, "max_batch_rows": 10},
    "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "test", "registered_model": "test"},
    "gate": {
        "metrics": {"log_loss": {"tolerance": 0.02}, "roc_auc": {"tolerance": 0.01}},
        "beat_baseline": [],
        "slice_tolerance": 0.05,
    },
}
POLICY = policy_from_params(GATE, "params.yaml")


def rows(truth, predicted, proba=None, labels=()) -> Rows:
    """Rows as the gate reads them: written as reports/predictions.csv is, then parsed."""
    ids = pd.Series([f"{i:08d}" for i in range(len(truth))])
    frame = prediction_rows(ids, pd.Series(truth), np.asarray(predicted), proba, list(labels))
    return parse_rows(frame.to_csv(index=False).encode(), "predictions.csv")


def classified(classes: list[str], n: int, seed: int, skill: float = 2.0) -> Rows:
    rng = np.random.default_rng(seed)
    weights = np.linspace(2, 1, len(classes))  # distinct frequencies: the most frequent are known
    truth = rng.choice(classes, size=n, p=weights / weights.sum())
    logits = rng.normal(size=(n, len(classes))) + skill * (truth[:, None] == np.array(classes)[None, :])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = np.array(classes)[proba.argmax(axis=1)]
    if len(classes) == 2:
        return rows(truth, predicted, proba[:, [1]], classes[1:])
    return rows(truth, predicted, proba, classes)


def chart(markdown: list[str], title: str) -> dict[str, str]:
    """A chart's lines by their first word (title, x-axis, y-axis, bar, line)."""
    text = "\n".join(markdown)
    for block in text.split("```mermaid")[1:]:
        body = block.split("```")[0].split("xychart-beta\n", 1)[1]  # after the size and colours
        if title in body:
            return dict(line.strip().split(" ", 1) for line in body.splitlines())
    raise AssertionError(f"no chart titled {title!r}")


def numbers(text: str) -> list[float]:
    return [float(value) for value in re.findall(r"-?\d+(?:\.\d+)?", text)]


def comparison(**metrics: Change) -> Comparison:
    named = {f"model.{name}": change for name, change in metrics.items()}
    return Comparison(base="main", metrics=named, params={}, has_baseline=True, lock_changed=True)


def height(value: float, low: float, high: float) -> float:
    """Where a bar ends, as a share of the chart's height (mermaid draws bars up from the axis)."""
    return (value - low) / (high - low)


def test_a_change_that_fails_the_gate_crosses_the_limit_line_and_is_not_a_sliver():
    """log loss 0.426 -> 0.463 (tolerance 0.02): drawn from 0 the two bars differ by 7% of the
    chart; here the axis is fitted around them and the line marks base + tolerance."""
    lines = metric_charts(comparison(log_loss=Change(0.426399, 0.463022)), POLICY)
    drawn = chart(lines, "log_loss")
    low, high = numbers(drawn["y-axis"])
    base, pr = numbers(drawn["bar"])
    limit = numbers(drawn["line"])[0]
    assert drawn["x-axis"] == '["base", "this PR"]'
    assert limit == pytest.approx(0.446399) and pr > limit > base
    assert height(pr, low, high) - height(base, low, high) >= 0.25
    assert height(pr, 0, high) - height(base, 0, high) < 0.1, "from 0 the same change would be a sliver"


@pytest.mark.parametrize(("old", "new"), [(0.70, 0.70), (0.70, 0.6901), (0.70, 0.69), (0.9, 0.5), (0.5, 0.9)])
def test_the_axis_spans_twice_the_tolerance_and_holds_every_value(old: float, new: float):
    tolerance = 0.01
    low, high = axis([old, new, old - tolerance], tolerance)
    assert low < min(old, new, old - tolerance) and high > max(old, new)
    if abs(new - old) <= tolerance:  # a change up to the tolerance is at least a quarter of the chart
        assert tolerance / (high - low) >= 0.25
    assert high - low >= 2 * tolerance


def test_with_no_base_the_bars_are_this_pr_and_the_trivial_baseline_without_a_limit():
    first = Comparison(
        base="main",
        metrics={"model.roc_auc": Change(None, 0.71), "baseline.roc_auc": Change(None, 0.5)},
        params={},
        has_baseline=False,
        lock_changed=True,
    )
    drawn = chart(metric_charts(first, POLICY), "roc_auc")
    assert drawn["x-axis"] == '["this PR", "trivial baseline"]' and "line" not in drawn


def test_the_roc_curve_on_the_grid_is_scikit_learns_curve_at_those_rates():
    binary = classified(["No", "Yes"], 400, seed=1)
    is_positive = binary.truth == "Yes"
    fpr, tpr, _ = skm.roc_curve(is_positive, binary.proba[:, 0])
    expected = [tpr[fpr <= x + 1e-12].max() for x in GRID]
    assert roc_on_grid(is_positive, binary.proba[:, 0]) == pytest.approx(expected, abs=1e-4)
    assert roc_on_grid(np.ones(5, dtype=bool), np.linspace(0, 1, 5)) is None, "no negatives: no curve"


def test_binary_predictions_give_one_roc_chart_with_both_branches():
    shown = curves(classified(["No", "Yes"], 300, seed=2, skill=1.0), classified(["No", "Yes"], 300, seed=3))
    [curve] = shown.curves
    assert curve.title == "ROC of Yes" and curve.base is not None and len(curve.pr) == len(GRID)
    drawn = chart(curve_charts(shown), "ROC of Yes")
    assert drawn["x-axis"] == '"false positive rate" 0 --> 1'
    assert "base grey, this PR blue" in drawn["title"]
    assert [line for line in curve_charts(shown) if line.startswith("    line")] == [
        f"    line [{', '.join(f'{v:g}' for v in points)}]" for points in (curve.base, curve.pr)
    ]


def test_many_classes_show_the_most_frequent_one_vs_rest_and_say_how_many_are_left_out():
    classes = [f"c{i}" for i in range(MAX_CLASSES + 2)]
    shown = curves(classified(classes, 600, seed=4), classified(classes[:-1], 600, seed=5))
    assert [curve.title for curve in shown.curves] == [f"ROC of c{i} one-vs-rest" for i in range(MAX_CLASSES)]
    assert shown.classes_left_out == 2
    assert "2 less frequent classes not drawn." in curve_charts(shown)


def test_a_class_the_base_did_not_have_is_drawn_for_this_pr_alone():
    pr, base = classified(["a", "b", "c", "new"], 300, seed=6), classified(["a", "b", "c"], 300, seed=7)
    drawn = {curve.title: curve for curve in curves(pr, base).curves}
    assert drawn["ROC of new one-vs-rest"].base is None and drawn["ROC of a one-vs-rest"].base is not None
    assert "this PR (not on the base)" in chart(curve_charts(curves(pr, base)), "ROC of new")["title"]


def test_a_class_name_from_the_file_cannot_inject_markdown_or_mermaid():
    evil = 'x"]\n```\n@team <img src=x> [link](http://a) `'
    shown = curves(classified(["ok", evil], 200, seed=8), classified(["ok", evil], 200, seed=9))
    text = "\n".join(curve_charts(shown))
    assert text.count("```") == 2, "one block, opened and closed by the chart alone"
    for fragment in ("@", "<", "[link", '"]', "`\n", "(http"):
        assert fragment not in text.replace("```mermaid", "").replace("```", "")
    [title] = [line for line in text.splitlines() if line.startswith("    title")]
    assert title.count('"') == 2


def test_regression_shows_the_absolute_error_by_quantile_for_both_branches():
    rng = np.random.default_rng(10)
    truth = rng.uniform(0, 100, 300)
    base, pr = rows(truth, truth + rng.normal(0, 5, 300)), rows(truth, truth + rng.normal(0, 8, 300))
    [curve] = curves(pr, base).curves
    assert curve.base == pytest.approx(np.quantile(np.abs(base.truth - base.predicted), LEVELS), abs=1e-3)
    assert np.mean(curve.pr) > np.mean(curve.base), "the worse model's errors are larger"
    drawn = chart(curve_charts(curves(pr, base)), "Absolute error")
    assert drawn["x-axis"] == '"quantile" 0.05 --> 0.95'
    assert numbers(drawn["y-axis"].split('"')[-1])[1] >= max(curve.pr)


def test_different_kinds_of_target_or_no_rows_give_no_curves():
    classifier = classified(["No", "Yes"], 50, seed=11)
    regression = rows(np.arange(50.0), np.arange(50.0))
    assert curves(classifier, regression).curves == []
    assert curves(rows(np.array([]), np.array([])), regression).curves == []


def test_four_classes_of_curves_stay_small():
    classes = [f"class-{i}" for i in range(8)]
    shown = curves(classified(classes, 800, seed=12), classified(classes, 800, seed=13))
    text = "\n".join(curve_charts(shown))
    assert len(text) < 8_000
