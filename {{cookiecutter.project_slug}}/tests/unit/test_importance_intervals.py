"""Importance intervals and inputs of no measurable value (feature_value.py), as the gate and the
report see them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.config.gate import GateSettings
from {{ cookiecutter.package_name }}.feature_value import importance_intervals, without_value
from {{ cookiecutter.package_name }}.gate.compare import Change, Comparison
from {{ cookiecutter.package_name }}.gate.judge import judge
from {{ cookiecutter.package_name }}.gate.policy import Policy
from {{ cookiecutter.package_name }}.gate.render import render

pytestmark = pytest.mark.unit

GATE = {"metrics": {}, "slice_tolerance": 0.05}


def comparison(importance: dict) -> Comparison:
    metrics = {
        f"importance.{name}.{part}": Change(None, value)
        for name, interval in importance.items()
        for part, value in interval.items()
    }
    return Comparison(base="main", metrics=metrics, params={}, has_baseline=False, lock_changed=True)


def test_an_interval_is_t_over_the_repeats_and_a_used_input_lies_above_0() -> None:
    repeats = np.array([[0.010, 0.012, 0.011], [0.0, 0.0, 0.0], [0.002, -0.001, 0.0005]])
    found = importance_intervals(["used", "unused", "noise"], repeats)
    # mean ± t(0.975, 2) · std / √3 = 0.011 ± 4.303 · 0.001 / 1.732
    assert found["used"] == pytest.approx({"mean": 0.011, "low": 0.008516, "high": 0.013484}, abs=1e-6)
    assert found["unused"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    flat = {f"importance.{name}.{part}": value for name, row in found.items() for part, value in row.items()}
    assert without_value(flat) == ["noise", "unused"]


def test_one_repeat_gives_no_interval() -> None:
    with pytest.raises(ValueError, match="at least 2 repeats"):
        importance_intervals(["a"], np.array([[0.1]]))


def test_a_dotted_input_name_is_kept_whole() -> None:
    assert without_value({"importance.a.b.low": -0.1, "importance.a.b.high": 0.2, "model.low": -1}) == ["a.b"]


def gate_on_no_value(required: bool) -> None:
    policy = Policy(gate=GateSettings.model_validate(GATE | {"require_feature_value": required}))
    found = comparison(
        {"good": {"mean": 0.1, "low": 0.05, "high": 0.15}, "noise": {"mean": 0, "low": -0.01, "high": 0.01}}
    )
    verdict = judge(found, policy)
    assert [(f.check, f.metric) for f in verdict.findings] == (
        [("feature_value", "noise")] if required else []
    )
    text = render(found, verdict, policy)
    assert "Inputs of no measurable value" in text and "`noise`" in text and "`good`" not in text
    assert ("fails the gate" in text) is required
    assert "importance.noise" not in text, "the per-input metrics are summed up, not listed"


def test_the_gate_fails_on_an_input_of_no_value_when_value_is_required() -> None:
    gate_on_no_value(required=True)


def test_the_report_lists_an_input_of_no_value_when_value_is_not_required() -> None:
    gate_on_no_value(required=False)


def test_an_older_gate_policy_does_not_require_value() -> None:
    assert GateSettings.model_validate(GATE).require_feature_value is False


def test_every_input_of_value_is_said_and_an_older_pipeline_says_nothing() -> None:
    policy = Policy(gate=GateSettings.model_validate(GATE | {"require_feature_value": True}))
    valued = comparison({"good": {"mean": 0.1, "low": 0.05, "high": 0.15}})
    assert judge(valued, policy).passed
    assert "Every input has measurable value" in render(valued, judge(valued, policy), policy)
    older = dataclasses.replace(valued, metrics={"model.roc_auc": Change(None, 0.7)})
    assert judge(older, policy).passed, "a pull request without importance intervals is not failed for it"
    assert "measurable value" not in render(older, judge(older, policy), policy)
