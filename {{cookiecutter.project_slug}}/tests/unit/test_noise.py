"""The gate tells noise from a real change: per-row predictions, resampled metrics that equal
scoring.py's on the rows drawn, the rule, and faults injected on both sides of it (a real
regression fails; a change inside the noise passes, or fails as too small to judge)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import predictions
from {{ cookiecutter.package_name }}.config.gate import GateSettings
from {{ cookiecutter.package_name }}.gate import judge as judging
from {{ cookiecutter.package_name }}.gate.compare import Change, Comparison
from {{ cookiecutter.package_name }}.gate.judge import judge, meaning
from {{ cookiecutter.package_name }}.gate.noise import Interval, mcnemar, resample_weights, scorers, significance
from {{ cookiecutter.package_name }}.gate.policy import Policy
from {{ cookiecutter.package_name }}.gate.render import render
from {{ cookiecutter.package_name }}.metrics import BETTER, metric_names
from {{ cookiecutter.package_name }}.pipeline.scoring import classification_metrics, regression_metrics
from {{ cookiecutter.package_name }}.predictions import PredictionsError, parse_rows, prediction_rows, row_ids

pytestmark = pytest.mark.unit


def _classified(n: int, classes: list[str], seed: int, skill: float = 1.5):
    """Truth, labels and probabilities of a classifier with some skill, on n synthetic rows."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(
        classes, size=n, p=np.linspace(2, 1, len(classes)) / np.linspace(2, 1, len(classes)).sum()
    )
    logits = rng.normal(size=(n, len(classes))) + skill * (truth[:, None] == np.array(classes)[None, :])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = np.array(classes)[proba.argmax(axis=1)]
    return truth, predicted, proba


def _file(ids, truth, predicted, proba, labels) -> predictions.Rows:
    """Rows as the gate reads them: written by prediction_rows, then parsed."""
    frame = prediction_rows(pd.Series(ids), pd.Series(truth), predicted, proba, labels)
    return parse_rows(frame.to_csv(index=False).encode(), "predictions.csv")


def _ids(n: int, offset: int = 0) -> list[str]:
    return [f"{i + offset:08d}" for i in range(n)]


def binary(n: int, seed: int, skill: float = 1.5) -> predictions.Rows:
    truth, predicted, proba = _classified(n, ["No", "Yes"], seed, skill)
    return _file(_ids(n), truth, predicted, proba[:, [1]], ["Yes"])


# The file's probabilities are rounded (6 digits): scikit-learn notes that they do not sum to 1.
@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
@pytest.mark.parametrize("kind", ["binary", "three classes", "regression"])
def test_resampled_metrics_are_the_scoring_values_of_the_rows_drawn(kind: str) -> None:
    """Every metric the task has, on each resample, equals scoring.py's (scikit-learn's) value on
    the rows that resample draws; so the intervals are intervals of the metrics the gate reads."""
    n = 150
    rng = np.random.default_rng(3)
    if kind == "regression":
        truth = rng.normal(50, 10, n)
        predicted = truth + rng.normal(0, 4, n)
        rows = _file(_ids(n), truth, predicted, None, [])
        names = metric_names("regression")
    else:
        classes = ["No", "Yes"] if kind == "binary" else ["a", "b", "c"]
        truth, predicted, proba = _classified(n, classes, seed=4)
        kept = proba[:, [1]] if kind == "binary" else proba
        rows = _file(_ids(n), truth, predicted, kept, ["Yes"] if kind == "binary" else classes)
        names = metric_names("classification", len(classes))
    assert set(scorers(rows)) == set(names), "every metric of the task can be resampled"
    weights = resample_weights(rng, n, rounds=4)
    for round_, drawn in enumerate(weights):
        picked = np.repeat(np.argsort(_ids(n)), drawn.astype(int))  # the file is sorted by id
        if kind == "regression":
            expected = regression_metrics(pd.Series(rows.truth[picked]), rows.predicted[picked])
        else:
            full = (
                np.column_stack([1 - rows.proba[:, 0], rows.proba[:, 0]]) if kind == "binary" else rows.proba
            )
            expected = classification_metrics(
                pd.Series(rows.truth[picked]),
                rows.predicted[picked],
                full[picked],
                np.array(classes),
                "Yes" if kind == "binary" else None,
            )
        for name in names:
            value = scorers(rows)[name](weights[round_ : round_ + 1])[0]
            assert value == pytest.approx(expected[name], abs=2e-6), (kind, name, round_)


def _comparison(pr: predictions.Rows, base: predictions.Rows, names: list[str]) -> Comparison:
    """The comparison DVC would give: each side's metrics as metrics.json holds them."""
    ones = lambda rows: np.ones((1, len(rows)))  # noqa: E731 - every row once: the metric itself
    metrics = {
        f"model.{name}": Change(
            float(scorers(base)[name](ones(base))[0]), float(scorers(pr)[name](ones(pr))[0])
        )
        for name in names
    }
    return Comparison(base="main", metrics=metrics, params={}, has_baseline=True, lock_changed=True)


def _policy(tolerance: float, allow_underpowered: bool = False, names=("roc_auc", "log_loss")) -> Policy:
    gate = GateSettings(
        metrics={name: {"tolerance": tolerance} for name in names},
        slice_tolerance=1.0,
        bootstrap_rounds=300,
        allow_underpowered=allow_underpowered,
    )
    return Policy(gate=gate)


def _judged(pr: predictions.Rows, base: predictions.Rows, policy: Policy):
    names = list(policy.gate.metrics)
    noise = significance(pr, base, names, policy.gate.bootstrap_rounds, policy.gate.bootstrap_seed)
    return judge(_comparison(pr, base, names), policy, noise)


def _jittered(rows: predictions.Rows, scale: float, seed: int) -> predictions.Rows:
    """The same rows scored by a model that differs only by chance (a retrain on other draws)."""
    rng = np.random.default_rng(seed)
    logit = np.log(rows.proba / (1 - rows.proba)) + rng.normal(0, scale, rows.proba.shape)
    proba = 1 / (1 + np.exp(-logit))
    predicted = np.where(proba[:, 0] >= 0.5, "Yes", "No")
    return dataclasses.replace(rows, proba=proba, predicted=predicted)


def _degraded(rows: predictions.Rows) -> predictions.Rows:
    """A model that learned less: every probability pulled halfway to a coin flip, labels unchanged."""
    return dataclasses.replace(rows, proba=0.5 + (rows.proba - 0.5) * 0.3)


def test_a_real_regression_fails_with_an_interval_that_excludes_zero() -> None:
    base = binary(2_000, seed=1)
    verdict = _judged(_degraded(base), base, _policy(tolerance=0.02))
    assert not verdict.passed
    failed = {(f.check, f.metric) for f in verdict.findings}
    assert ("regression", "log_loss") in failed, verdict.findings
    item = next(a for a in verdict.assessments if a.metric == "log_loss")
    assert item.interval is not None and item.interval.low > 0.02, item


def test_a_change_within_the_noise_passes_where_the_point_estimate_alone_fails_it() -> None:
    """The fault the noise rule exists for: a model that differs from the base by chance, worse
    on the point estimate by more than a tight tolerance. Judged on the point estimate (the old
    gate, and the gate with no per-row predictions) it fails; told from noise, with a policy that
    accepts what its test set cannot judge, it passes, and the report says why."""
    base = binary(400, seed=2)
    noisy = _jittered(base, 0.3, seed=1)
    assert _comparison(noisy, base, ["roc_auc"]).metrics["model.roc_auc"].delta < -0.004
    policy = _policy(tolerance=0.002, allow_underpowered=True, names=("roc_auc",))
    assert not judge(_comparison(noisy, base, ["roc_auc"]), policy).passed, (
        "the point estimate alone fails it"
    )
    verdict = _judged(noisy, base, policy)
    assert verdict.passed, verdict.findings
    [item] = verdict.assessments
    assert item.meaning == judging.UNDERPOWERED and item.interval is not None
    assert item.interval.low < 0 < item.interval.high
    assert "| too small to judge (allowed) |" in render(
        _comparison(noisy, base, ["roc_auc"]), verdict, policy
    )


def test_a_test_set_too_small_for_the_tolerance_fails_as_too_small_to_judge() -> None:
    base = binary(120, seed=5)
    noisy = _jittered(base, 0.5, seed=1)
    verdict = _judged(noisy, base, _policy(tolerance=0.005, names=("roc_auc",)))
    assert not verdict.passed
    [finding] = verdict.findings
    assert finding.check == "underpowered" and finding.metric == "roc_auc"
    assert "too few test rows to judge (gate.allow_underpowered)" in finding.limit
    assert "| too small to judge |" in render(_comparison(noisy, base, ["roc_auc"]), verdict, _policy(0.005))


@pytest.mark.parametrize(
    ("delta", "interval", "expected"),
    [
        (-0.03, Interval(-0.05, -0.011), judging.REGRESSION),  # worse beyond tolerance, 0 excluded
        (-0.03, Interval(-0.045, 0.001), judging.UNDERPOWERED),  # 0 inside, wider than 2 x 0.02
        (-0.025, Interval(-0.035, 0.001), judging.NOT_SIGNIFICANT),  # 0 inside, narrow enough
        (-0.01, Interval(-0.015, -0.005), judging.WITHIN_TOLERANCE),  # significant, but within tolerance
        (0.03, Interval(0.01, 0.05), judging.IMPROVEMENT),
        (
            0.03,
            Interval(-0.015, 0.08),
            judging.WITHIN_TOLERANCE,
        ),  # wide, yet the worst case is within tolerance
        (-0.03, None, judging.REGRESSION),  # no intervals: the point estimate decides
        (-0.01, None, judging.WITHIN_TOLERANCE),
    ],
)
def test_the_rule_for_a_metric_where_higher_is_better(delta, interval, expected) -> None:
    assert meaning(delta, interval, 0.02, "higher") == expected
    mirrored = None if interval is None else Interval(-interval.high, -interval.low)
    assert meaning(-delta, mirrored, 0.02, "lower") == expected, "lower is better: the same rule, mirrored"


def test_a_changed_test_set_is_resampled_unpaired_and_the_report_says_so() -> None:
    base = binary(300, seed=6)
    truth, predicted, proba = _classified(280, ["No", "Yes"], seed=7)
    changed = _file(_ids(280, offset=100), truth, predicted, proba[:, [1]], ["Yes"])
    noise = significance(changed, base, ["roc_auc"], rounds=200, seed=0)
    assert not noise.paired and noise.common == 200 and noise.mcnemar is None
    verdict = judge(_comparison(changed, base, ["roc_auc"]), _policy(0.05, names=("roc_auc",)), noise)
    markdown = render(_comparison(changed, base, ["roc_auc"]), verdict, _policy(0.05, names=("roc_auc",)))
    assert (
        "the test set changed (200 rows in common; 300 on the base, 280 here): unpaired bootstrap" in markdown
    )


def test_intervals_are_reproducible_and_follow_the_seed() -> None:
    base = binary(300, seed=8)
    pr = _jittered(base, 0.4, seed=2)
    first, again = (significance(pr, base, ["roc_auc"], 200, seed=0) for _ in range(2))
    assert first == again
    assert significance(pr, base, ["roc_auc"], 200, seed=1).intervals != first.intervals


def test_mcnemar_counts_the_rows_each_side_alone_gets_right() -> None:
    ids = _ids(6)
    base = _file(
        ids, ["Yes"] * 6, np.array(["Yes", "Yes", "Yes", "No", "No", "No"]), np.full((6, 1), 0.6), ["Yes"]
    )
    pr = _file(
        ids, ["Yes"] * 6, np.array(["Yes", "No", "No", "Yes", "No", "No"]), np.full((6, 1), 0.6), ["Yes"]
    )
    test = mcnemar(pr, base)
    assert (test.base_only, test.pr_only) == (2, 1)
    assert test.p_value == pytest.approx(1.0)


def test_row_ids_are_stable_ignore_column_order_and_number_repeats() -> None:
    frame = pd.DataFrame({"a": [1, 2, 1], "b": ["x", "y", "x"]})
    ids = row_ids(frame)
    assert ids.tolist() == row_ids(frame[["b", "a"]]).tolist()
    assert ids[2] == f"{ids[0]}-2" and ids[0] != ids[1]
    assert row_ids(frame.assign(a=[1, 3, 1]))[1] != ids[1], "a changed value is another row"


def test_the_file_is_capped_by_id_so_every_branch_keeps_the_same_rows(monkeypatch) -> None:
    monkeypatch.setattr(predictions, "MAX_ROWS", 10)
    frame = pd.DataFrame({"x": range(40), "y": ["a", "b"] * 20})
    ids = row_ids(frame)
    kept = prediction_rows(ids, frame["y"], frame["y"].to_numpy(), None, [])
    shuffled = frame.sample(frac=1, random_state=0)
    again = prediction_rows(row_ids(shuffled), shuffled["y"], shuffled["y"].to_numpy(), None, [])
    assert len(kept) == 10 and kept["row"].tolist() == again["row"].tolist() == sorted(ids)[:10]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"row,truth\n1,a\n", "no column 'predicted'"),
        (b"row,truth,predicted\n1,2,3\n1,2,3\n", "a row id repeats"),
        (b"row,truth,predicted,proba:Yes\n1,Yes,Yes,\n", "a prediction is missing or not finite"),
        (b"row,truth,predicted\n1,2,x\n", "not a number"),
        (b"", "not a readable CSV file"),
    ],
)
def test_a_broken_predictions_file_is_one_clear_error(content: bytes, message: str) -> None:
    with pytest.raises(PredictionsError, match=message):
        parse_rows(content, "the base's reports/predictions.csv")


def test_every_gated_metric_of_each_task_can_be_told_from_noise() -> None:
    regression = _file(_ids(20), np.arange(20.0), np.arange(20.0) + 1, None, [])
    assert set(scorers(binary(50, 0))) | set(scorers(regression)) == set(BETTER)
