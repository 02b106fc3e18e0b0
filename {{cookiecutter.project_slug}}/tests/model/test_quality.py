"""Model quality on the test set: better than a trivial baseline and (where params say so) than a
simple model, within the bounds in params.yaml."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config.evaluate import Threshold
from {{ cookiecutter.package_name }}.config.gate import GateSettings
from {{ cookiecutter.package_name }}.data import features_and_target
from {{ cookiecutter.package_name }}.gate.judge import beats_by
from {{ cookiecutter.package_name }}.metrics import BETTER, HEADLINE, metric_names
from {{ cookiecutter.package_name }}.pipeline.evaluate import (
    CLASS_SLICE,
    SENSITIVE_INPUTS,
    baseline_model,
    importance_plot,
)
from {{ cookiecutter.package_name }}.pipeline.scoring import {% if cookiecutter.task == "classification" %}positive_label, {% endif %}score

pytestmark = pytest.mark.model


def shortfalls(metrics: dict, task: str) -> list[str]:
    """Every metric on which the model does not clearly beat the baseline (none when it does).

    "Clearly": a model trained on noise can edge past the baseline by chance (measured on
    the demo data: a random forest fitted to shuffled labels had a log loss 0.1% below it).
    """
    model, baseline = metrics["model"], metrics["baseline"]
    if task == "classification":
        wanted = {
            "roc_auc": (">=", baseline["roc_auc"] + 0.02),
            "log_loss": ("<=", baseline["log_loss"] * 0.99),
            "balanced_accuracy": (">=", baseline["balanced_accuracy"] + 0.02),
        }
    else:
        wanted = {"rmse": ("<=", baseline["rmse"] * 0.99), "r2": (">=", baseline["r2"] + 0.02)}
    return [
        f"{name} = {model[name]} but must be {op} {bound:.6g} (baseline {baseline[name]})"
        for name, (op, bound) in wanted.items()
        if not (model[name] >= bound if op == ">=" else model[name] <= bound)
    ]


def broken_thresholds(model_metrics: dict, thresholds: dict) -> list[str]:
    return [
        f"{name} = {model_metrics[name]} is outside {bound.model_dump(exclude_none=True)}"
        for name, bound in thresholds.items()
        if not bound.holds(model_metrics[name])
    ]


def loose_thresholds(baseline_metrics: dict, thresholds: dict) -> list[str]:
    """Bounds the trivial baseline meets too: they can never fail a model that learned nothing."""
    return [
        f"evaluate.thresholds.{name} {bound.model_dump(exclude_none=True)} holds for the trivial "
        f"baseline too ({baseline_metrics[name]}): tighten it past the baseline"
        for name, bound in thresholds.items()
        if bound.holds(baseline_metrics[name])
    ]


def test_model_beats_the_baseline(evaluation, settings) -> None:
    problems = shortfalls(evaluation.metrics, settings.task)
    assert not problems, "; ".join(problems)


def test_quality_thresholds_from_params_hold(evaluation, settings) -> None:
    thresholds = settings.evaluate.thresholds
    if not thresholds:
        pytest.skip("params.yaml sets no evaluate.thresholds")
    problems = broken_thresholds(evaluation.metrics["model"], thresholds)
    assert not problems, "; ".join(problems)


def test_every_threshold_is_tighter_than_the_trivial_baseline(evaluation, settings) -> None:
    assert loose_thresholds(evaluation.metrics["baseline"], settings.evaluate.thresholds) == []


def test_a_threshold_the_baseline_meets_is_caught(evaluation, settings) -> None:
    name = HEADLINE[settings.task]
    baseline = evaluation.metrics["baseline"][name]
    # Just past the trivial baseline's value, on the worse side: a bound that cannot fire.
    loose = Threshold(min=baseline - 0.01) if BETTER[name] == "higher" else Threshold(max=baseline + 0.01)
    [problem] = loose_thresholds(evaluation.metrics["baseline"], {name: loose})
    assert problem.startswith(f"evaluate.thresholds.{name} ") and "trivial baseline" in problem


def valued_features(importance: list[dict]) -> list[str]:
    """Inputs whose permutation importance is clearly above noise: over twice its spread."""
    return [row["feature"] for row in importance if row["importance"] > 2 * row["std"]]


def test_the_model_draws_on_its_inputs(evaluation) -> None:
    importance = evaluation.plots["importance.json"]["importance"]
    assert valued_features(importance), f"no input clearly matters to the model: {importance}"


def test_a_model_that_ignores_its_inputs_is_caught(settings, train_set, test_set) -> None:
    inputs = [column for column in train_set.columns if column != settings.data.target]
    train_x, train_y = features_and_target(train_set, settings.data.target)
    test_x, test_y = features_and_target(test_set, settings.data.target)
    ignoring = baseline_model(settings.task, settings.train.seed).fit(train_x[inputs], train_y)
    plot = importance_plot(ignoring, test_x[inputs], test_y, settings)
    assert valued_features(plot["importance.json"]["importance"]) == []


def test_the_baseline_check_fails_a_model_whose_answers_are_unrelated_to_the_truth(
    model, settings, train_set, test_set
) -> None:
    # The model's answers against the test labels in shuffled order: no better than chance.
    # (Not a model fitted to shuffled labels: with few features, a linear one can land on the
    # right direction by luck, and AUC does not care how small its coefficients are.)
    target = settings.data.target
    inputs = list(model.feature_names_in_)
    train_x, train_y = features_and_target(train_set, target)
    test_x, test_y = features_and_target(test_set, target)
    shuffled_y = pd.Series(np.random.default_rng(settings.train.seed).permutation(test_y.to_numpy()))
    baseline = baseline_model(settings.task, settings.train.seed).fit(train_x[inputs], train_y)
    metrics = {
        "model": score(model, test_x[inputs], shuffled_y, settings.task, settings.data.positive_class),
        "baseline": score(baseline, test_x[inputs], shuffled_y, settings.task, settings.data.positive_class),
    }
    assert shortfalls(metrics, settings.task), f"answers unrelated to the truth passed: {metrics}"


def simple_mismatches(metrics: dict, gate: GateSettings) -> list[str]:
    """Gated metrics on which gate.beat_simple is wrong: listed, but the model does not beat the
    simple model by more than the tolerance (the gate's rule); or not listed, though it does
    (then the list claims less than is true, and a later change could lose the lead unseen)."""
    problems = []
    for name, rule in gate.metrics.items():
        model, simple = metrics["model"][name], metrics["simple"][name]
        wins = beats_by(model, simple, BETTER[name], rule.tolerance)
        if name in gate.beat_simple and not wins:
            problems.append(
                f"{name} = {model}: not better than the simple model's {simple} by over {rule.tolerance}"
            )
        if name not in gate.beat_simple and wins:
            problems.append(f"{name} = {model} beats the simple model's {simple}: add it to gate.beat_simple")
    return problems


def test_the_model_beats_the_simple_model_exactly_where_params_say(evaluation, settings) -> None:
    problems = simple_mismatches(evaluation.metrics, settings.gate)
    assert not problems, "; ".join(problems)


def test_the_simple_model_check_fails_a_model_no_better_than_the_simple_model(evaluation, settings) -> None:
    # The fault: the simple model itself shipped as the model (its test-set scores as the
    # model's), on a gate that lists every metric.
    simple = evaluation.metrics["simple"]
    gate = settings.gate.model_copy(update={"beat_simple": list(settings.gate.metrics)})
    problems = simple_mismatches({"model": simple, "simple": simple}, gate)
    assert len(problems) == len(gate.metrics), problems


def test_the_simple_model_check_fails_a_list_that_omits_a_clear_win(evaluation, settings) -> None:
    # The fault: a simple model no better than the trivial baseline, with nothing gated on it.
    metrics = {"model": evaluation.metrics["model"], "simple": evaluation.metrics["baseline"]}
    gate = settings.gate.model_copy(update={"beat_simple": []})
    problems = simple_mismatches(metrics, gate)
    assert problems and all("add it to gate.beat_simple" in problem for problem in problems), problems


def test_evaluation_has_every_metric_for_model_and_baseline(
    evaluation, settings, train_set, test_set
) -> None:
    names = set(metric_names(settings.task, train_set[settings.data.target].nunique()))
    assert set(evaluation.metrics["model"]) == names
    assert set(evaluation.metrics["baseline"]) == names
    assert set(evaluation.metrics["simple"]) == names
    assert 0 < len(evaluation.simple_inputs) <= settings.evaluate.simple_features
    values = [*evaluation.metrics["model"].values(), *evaluation.metrics["baseline"].values()]
    assert all(math.isfinite(value) for value in values)
    assert evaluation.metrics["test_rows"] == len(test_set)


def test_slices_cover_each_sensitive_feature_each_class_and_every_test_row(
    evaluation, settings, test_set
) -> None:
    expected = [f for f in settings.data.sensitive_features if f in test_set.columns]
    if settings.task == "classification":
        expected.append(CLASS_SLICE)
        classes = {str(label) for label in test_set[settings.data.target].unique()}
        assert set(evaluation.slices[CLASS_SLICE]["groups"]) == classes
    assert list(evaluation.slices) == [*expected, SENSITIVE_INPUTS]
    for feature, result in evaluation.slices.items():
        if feature == SENSITIVE_INPUTS:
            continue
        counts = sum(group["count"] for group in result["groups"].values())
        assert counts == len(test_set), feature
        for label, one_class in result.get("classes", {}).items():  # more than two classes
            assert sum(group["count"] for group in one_class["groups"].values()) == len(test_set), label


def test_evaluation_makes_every_plot_dvc_yaml_shows(evaluation, root) -> None:
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    shown = {name.removeprefix("plots/") for entry in pipeline.get("plots", []) for name in entry}
    assert shown, "dvc.yaml shows no plots"
    assert shown == set(evaluation.plots)
    assert all(len(content) > 0 for content in evaluation.plots.values())

{%- if cookiecutter.task == "classification" %}


def test_curves_are_drawn_for_the_positive_class_or_for_every_class(evaluation, settings, model) -> None:
    positive = positive_label(model.classes_, settings.data.positive_class)
    wanted = {str(positive)} if positive is not None else {str(label) for label in model.classes_}
    for name in ("roc", "precision_recall", "calibration"):
        drawn = {row["class"] for row in evaluation.plots[f"{name}.json"][name]}
        assert drawn == wanted, name
{%- endif %}
