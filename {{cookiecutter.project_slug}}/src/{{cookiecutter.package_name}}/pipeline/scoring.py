"""The metrics a model is scored by, on any set: what train logs and evaluate writes to metrics.json.

Classification covers two or more classes. Two: the positive class's measures (f1, ROC AUC,
Brier score) as well. More: ROC AUC one-vs-rest (macro average), the Brier score summed over
the classes, and no single positive class.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn import metrics as skm

DIGITS = 6  # rounding keeps metrics files stable across platforms and small in diffs


def positive_label(classes: np.ndarray, wanted: str | None) -> object | None:
    """Two classes: the class scored as positive, the one named in params, else the last in sort
    order. More classes: None (each class is scored one-vs-rest)."""
    listed = ", ".join(map(str, classes))
    if len(classes) < 2:
        raise ValueError(
            f"classification needs two or more classes: the target has {len(classes)} ({listed})"
        )
    if len(classes) > 2:
        if wanted is not None:
            raise ValueError(
                f"data.positive_class {wanted!r} is for two classes: the target has {len(classes)} "
                f"({listed}); set it to null"
            )
        return None
    if wanted is None:
        return classes[-1]
    for label in classes:
        if str(label) == wanted:
            return label
    raise ValueError(f"data.positive_class {wanted!r} is not a class; allowed: {listed}")


def classification_metrics(
    y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray, classes: np.ndarray, positive
) -> dict:
    """`proba`: one column per class, in the order of `classes`."""
    labels = list(classes)
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "macro_f1": skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
    }
    if positive is None:
        values |= {
            "roc_auc": skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels),
            "log_loss": skm.log_loss(y_true, proba, labels=labels),
            "brier": skm.brier_score_loss(y_true, proba, labels=labels),
        }
    else:
        is_positive = (y_true == positive).to_numpy()
        scores = proba[:, labels.index(positive)]
        values |= {
            "f1": skm.f1_score(y_true, y_pred, pos_label=positive, zero_division=0),
            "roc_auc": skm.roc_auc_score(is_positive, scores),
            "log_loss": skm.log_loss(is_positive, scores, labels=[False, True]),
            "brier": skm.brier_score_loss(is_positive, scores),
        }
    return rounded(values)


def balanced_accuracy(y_true: pd.Series | np.ndarray, y_pred: np.ndarray) -> float:
    # Quiet about predicted classes absent from y_true: in a small slice that is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.balanced_accuracy_score(y_true, y_pred))


def class_metrics(y_true: pd.Series, y_pred: np.ndarray, classes: np.ndarray) -> dict:
    """Precision, recall and F1 of each class (one-vs-rest) and its count in `y_true`."""
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(classes), zero_division=0
    )
    return {
        str(label): rounded({"precision": p, "recall": r, "f1": f, "count": n})
        for label, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)
    }


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict:
    return rounded(
        {
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        }
    )


def score(model, features: pd.DataFrame, target: pd.Series, task: str, positive_class: str | None) -> dict:
    predictions = model.predict(features)
    if task == "regression":
        return regression_metrics(target, predictions)
    positive = positive_label(model.classes_, positive_class)
    proba = model.predict_proba(features)
    return classification_metrics(target, predictions, proba, model.classes_, positive)


def class_proba(model, features: pd.DataFrame, label) -> np.ndarray:
    """The probability of one class (a label of `model.classes_`, or its text) for each row."""
    names = [str(c) for c in model.classes_]
    return model.predict_proba(features)[:, names.index(str(label))]


def rounded(values: dict) -> dict:
    return {str(k): round(float(v), DIGITS) if k != "count" else int(v) for k, v in values.items()}
