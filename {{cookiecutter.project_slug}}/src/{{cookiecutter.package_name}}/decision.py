"""How a classifier turns class probabilities into one label (params: `train.decision`).

The most likely class is rarely what a user wants on imbalanced data: it names the majority
class for almost every row. `BalancedDecision` names the class whose probability most exceeds
its share of the training labels (argmax p_k / prior_k), which counts every class equally, as
balanced accuracy does, and leaves the probabilities as the model gave them (log loss, ROC AUC
and calibration are those of the wrapped model). Saved inside the model file: the server, the
canary and evaluate get the same labels without knowing about it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone


class BalancedDecision(ClassifierMixin, BaseEstimator):
    """A classifier's probabilities, and as label the class with the largest p_k / prior_k."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, features: Any, target: Any) -> BalancedDecision:
        self.estimator_ = clone(self.estimator).fit(features, target)
        self.classes_ = self.estimator_.classes_
        self.priors_ = class_shares(np.asarray(target), self.classes_)
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, features: Any) -> np.ndarray:
        return self.estimator_.predict_proba(features)

    def predict(self, features: Any) -> np.ndarray:
        return balanced_labels(self.predict_proba(features), self.priors_, self.classes_)


def class_shares(target: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each class's share of `target`, in the order of `classes`."""
    return np.array([np.mean(target == label) for label in classes], dtype=float)


def balanced_labels(proba: np.ndarray, priors: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return classes.take(np.argmax(np.asarray(proba) / priors, axis=1))
