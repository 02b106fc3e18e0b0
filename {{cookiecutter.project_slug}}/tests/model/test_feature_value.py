"""Every input is worth its place (ML Test Score D2): its permutation importance's interval, and
the gate's check on inputs of no measurable value (gate.require_feature_value)."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.data import features_and_target
from {{ cookiecutter.package_name }}.feature_value import SECTION
from {{ cookiecutter.package_name }}.gate.compare import Change, Comparison
from {{ cookiecutter.package_name }}.gate.judge import judge
from {{ cookiecutter.package_name }}.gate.policy import Policy
from {{ cookiecutter.package_name }}.pipeline.evaluate import importance_metrics, importance_plot
from {{ cookiecutter.package_name }}.pipeline.train import fit

pytestmark = pytest.mark.model

NOISE = "pure_noise"


def first_pr(importance: dict) -> Comparison:
    """A first pull request (no base metrics) whose metrics.json holds these intervals."""
    metrics = {
        f"{SECTION}.{feature}.{part}": Change(None, value)
        for feature, interval in importance.items()
        for part, value in interval.items()
    }
    return Comparison(base="main", metrics=metrics, params={}, has_baseline=False, lock_changed=True)


def value_findings(importance: dict, settings, required: bool) -> list:
    gate = settings.gate.model_copy(update={"require_feature_value": required})
    verdict = judge(first_pr(importance), Policy(gate=gate))
    return [finding for finding in verdict.findings if finding.check == "feature_value"]


def test_each_input_has_an_importance_interval_and_the_shipped_gate_passes_it(
    evaluation, settings, model
) -> None:
    importance = evaluation.metrics[SECTION]
    assert set(importance) == set(model.feature_names_in_)
    for feature, interval in importance.items():
        assert interval["low"] <= interval["mean"] <= interval["high"], (feature, interval)
    assert value_findings(importance, settings, settings.gate.require_feature_value) == []
    assert any(interval["low"] > 0 for interval in importance.values()), f"no input has value: {importance}"


def test_a_pure_noise_input_fails_the_gate_when_value_is_required(settings, train_set, test_set) -> None:
    rng = np.random.default_rng(settings.train.seed)
    noisy_train = train_set.assign(**{NOISE: rng.normal(size=len(train_set))})
    noisy_test = test_set.assign(**{NOISE: rng.normal(size=len(test_set))})
    model = fit(noisy_train, settings)
    assert NOISE in model.feature_names_in_
    test_x, test_y = features_and_target(noisy_test, settings.data.target)
    importance = importance_metrics(
        importance_plot(model, test_x[list(model.feature_names_in_)], test_y, settings)
    )
    findings = value_findings(importance, settings, required=True)
    assert len(findings) == 1 and NOISE in findings[0].metric.split(", "), (findings, importance[NOISE])
    assert value_findings(importance, settings, required=False) == []
