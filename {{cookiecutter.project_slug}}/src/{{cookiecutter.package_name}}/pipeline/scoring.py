"""The metrics a model is scored by, on any set: what train logs and evaluate writes to metrics.json."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..config import Settings

DIGITS = 6  # rounding keeps metrics files stable across platforms and small in diffs


def positive_label(classes: np.ndarray, wanted: str | None) -> object:
    """The class scored as positive: the one named in params, else the last in sort order."""
    if len(classes) != 2:
        raise ValueError(
            f"binary classification only: the target has {len(classes)} classes "
            f"({', '.join(map(str, classes))})"
        )
    if wanted is None:
        return classes[-1]
    for label in classes:
        if str(label) == wanted:
            return label
    raise ValueError(
        f"data.positive_class {wanted!r} is not a class; allowed: {', '.join(map(str, classes))}"
    )


def classification_metrics(y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray, positive) -> dict:
    is_positive = (y_true == positive).to_numpy()
    return rounded(
        {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "f1": skm.f1_score(y_true, y_pred, pos_label=positive),
            "roc_auc": skm.roc_auc_score(is_positive, proba),
            "log_loss": skm.log_loss(is_positive, proba, labels=[False, True]),
            "brier": skm.brier_score_loss(is_positive, proba),
        }
    )


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict:
    return rounded(
        {
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        }
    )


def score(model, features: pd.DataFrame, target: pd.Series, settings: Settings) -> dict:
    predictions = model.predict(features)
    if settings.task == "regression":
        return regression_metrics(target, predictions)
    positive = positive_label(model.classes_, settings.data.positive_class)
    proba = positive_proba(model, features, positive)
    return classification_metrics(target, predictions, proba, positive)


def positive_proba(model, features: pd.DataFrame, positive) -> np.ndarray:
    column = list(model.classes_).index(positive)
    return model.predict_proba(features)[:, column]


def rounded(values: dict) -> dict:
    return {str(k): round(float(v), DIGITS) if k != "count" else int(v) for k, v in values.items()}
