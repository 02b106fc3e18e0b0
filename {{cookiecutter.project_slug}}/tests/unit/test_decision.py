"""The decision rule (train.decision): balanced labels from unchanged probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package_name }}.decision import BalancedDecision, balanced_labels, class_shares

pytestmark = pytest.mark.unit


def imbalanced(rows: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """One weak feature and a 9:1 target: the most likely class is the majority for nearly all rows."""
    rng = np.random.default_rng(seed)
    minority = rng.random(rows) < 0.1
    feature = rng.normal(size=rows) + 0.8 * minority
    return pd.DataFrame({"x": feature}), np.where(minority, "rare", "common")


def test_balanced_labels_divide_each_probability_by_its_class_share() -> None:
    classes = np.array(["a", "b", "c"])
    priors = class_shares(np.array(["a"] * 6 + ["b"] * 3 + ["c"]), classes)
    np.testing.assert_allclose(priors, [0.6, 0.3, 0.1])
    proba = np.array([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.7, 0.25, 0.05]])
    # p / prior: [1, 1, 1] (ties: the first), [0.83, 1, 2], [1.17, 0.83, 0.5]
    assert balanced_labels(proba, priors, classes).tolist() == ["a", "c", "a"]


def test_balanced_decision_finds_the_minority_class_and_keeps_the_probabilities() -> None:
    features, target = imbalanced()
    plain = LogisticRegression().fit(features, target)
    balanced = BalancedDecision(LogisticRegression()).fit(features, target)
    np.testing.assert_allclose(balanced.predict_proba(features), plain.predict_proba(features))
    assert list(balanced.classes_) == list(plain.classes_)
    most_likely = skm.balanced_accuracy_score(target, plain.predict(features))
    chosen = skm.balanced_accuracy_score(target, balanced.predict(features))
    assert most_likely < 0.55, "the most likely class should be the majority almost everywhere"
    assert chosen > most_likely + 0.1, (most_likely, chosen)


def test_the_wrapped_estimator_is_cloned_not_fitted_in_place() -> None:
    features, target = imbalanced(rows=200)
    inner = LogisticRegression()
    BalancedDecision(inner).fit(features, target)
    assert not hasattr(inner, "coef_")
