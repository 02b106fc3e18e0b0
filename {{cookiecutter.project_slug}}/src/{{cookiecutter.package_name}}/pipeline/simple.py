"""The simple model the project's model must beat (gate.beat_simple): a linear model on the few
inputs that predict best on their own.

The trivial baseline knows no input; this one knows the obvious ones. A model that does not
beat it by more than the gate's tolerance adds complexity without adding quality. The inputs
are ranked on the training set only, each by the cross-validated score of the same linear
model fitted to it alone (seeded folds), so the simple model never depends on the project's
model, nor on the test set, and is the same on every run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from .features import build_preprocessor

FOLDS = 3  # cheap, and enough to tell an input that predicts from one that does not
SCORING = {"classification": "neg_log_loss", "regression": "neg_root_mean_squared_error"}


def simple_estimator(task: str, decision: str) -> BaseEstimator:
    """Logistic regression (labels by the project's decision rule) or ridge, at their defaults."""
    if task == "regression":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0)
    from sklearn.linear_model import LogisticRegression

    linear = LogisticRegression(C=1.0, max_iter=1000)
    if decision == "balanced":
        from ..decision import BalancedDecision

        return BalancedDecision(linear)
    return linear


def simple_pipeline(inputs: pd.DataFrame, task: str, decision: str) -> Pipeline:
    """The project's preprocessing (imputation, one-hot, scaling) and the simple estimator."""
    return Pipeline([("features", build_preprocessor(inputs)), ("model", simple_estimator(task, decision))])


def rank_inputs(features: pd.DataFrame, target: pd.Series, task: str, seed: int) -> list[str]:
    """The inputs, best first by the cross-validated score of the simple model on each alone;
    ties (and inputs it cannot fit, e.g. empty in a fold) keep the columns' order."""
    folds = (StratifiedKFold if task == "classification" else KFold)(FOLDS, shuffle=True, random_state=seed)
    scores = []
    for column in features.columns:
        alone = features[[column]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a failed fold scores -inf: ranked last, not reported
            fold_scores = cross_val_score(
                simple_pipeline(alone, task, "most_likely"),
                alone,
                target,
                scoring=SCORING[task],
                cv=folds,
                error_score=-np.inf,
            )
        scores.append(float(np.mean(fold_scores)))
    order = sorted(range(len(scores)), key=lambda position: (-scores[position], position))
    return [str(features.columns[position]) for position in order]


def fit_simple(
    features: pd.DataFrame, target: pd.Series, task: str, decision: str, k: int, seed: int
) -> Pipeline:
    """The simple model fitted to the training set's `k` best inputs (`feature_names_in_`)."""
    chosen = rank_inputs(features, target, task, seed)[:k]
    inputs = features[chosen]
    return simple_pipeline(inputs, task, decision).fit(inputs, target)
