"""The simple model (pipeline/simple.py): inputs ranked on the training set, the same every run,
through the project's preprocessing (missing values, categories, several classes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.decision import BalancedDecision
from {{ cookiecutter.package_name }}.pipeline.simple import fit_simple, rank_inputs

pytestmark = pytest.mark.unit


def frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Three classes driven by `signal` (numeric, some missing) and `plan` (a category); `noise` is not."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    plan = rng.choice(["basic", "plus", "pro"], size=rows)
    noise = rng.normal(size=rows)
    score = signal + (plan == "pro") * 1.5 + rng.normal(scale=0.5, size=rows)
    target = pd.Series(np.where(score > 1, "up", np.where(score < -0.5, "down", "same")))
    features = pd.DataFrame({"noise": noise, "plan": plan, "signal": signal})
    features.loc[rng.random(rows) < 0.1, "signal"] = np.nan
    return features, target


def test_inputs_that_predict_alone_rank_before_noise_the_same_every_run():
    features, target = frame()
    ranked = rank_inputs(features, target, "classification", seed=1)
    assert ranked[-1] == "noise" and set(ranked) == set(features.columns)
    assert rank_inputs(features, target, "classification", seed=1) == ranked


def test_the_simple_model_uses_the_k_best_inputs_and_the_decision_rule():
    features, target = frame()
    model = fit_simple(features, target, "classification", "balanced", k=2, seed=1)
    assert sorted(model.feature_names_in_) == ["plan", "signal"]
    assert isinstance(model.named_steps["model"], BalancedDecision)
    assert set(model.predict(features[list(model.feature_names_in_)])) <= {"up", "down", "same"}
    alone = fit_simple(features, target, "classification", "most_likely", k=5, seed=1)
    assert len(alone.feature_names_in_) == 3, "k beyond the inputs: all of them"


def test_regression_ranks_with_ridge():
    features, _ = frame()
    target = pd.Series(3 * features["signal"].fillna(0) + np.random.default_rng(2).normal(size=len(features)))
    assert rank_inputs(features, target, "regression", seed=1)[0] == "signal"
