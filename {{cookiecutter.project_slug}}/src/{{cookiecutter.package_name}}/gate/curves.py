"""The base's and the pull request's curves, from the per-row predictions the gate already has (pure).

Classifiers: the ROC curve of the positive class (two classes) or of each class one-vs-rest
(more; the MAX_CLASSES most frequent only). Regression: the absolute error at each quantile of
the test rows. Each curve is sampled at a few fixed points (GRID), so a report stays small and
the two branches' curves share their x values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..predictions import Rows

POINTS = 21  # per curve: 0, 0.05, ..., 1
GRID = np.linspace(0.0, 1.0, POINTS)
# Quantiles of the absolute error: the largest error alone would set the scale.
LEVELS = np.linspace(0.05, 0.95, 19)
MAX_CLASSES = 4  # one-vs-rest ROC curves shown, of the most frequent classes
MAX_LABEL = 30


@dataclass(frozen=True)
class Curve:
    title: str  # safe to print: class names from files are reduced to plain characters
    x_label: str
    y_label: str
    x_range: tuple[float, float]
    pr: tuple[float, ...]
    base: tuple[float, ...] | None  # None: the base has no such curve (a class it did not have)


@dataclass(frozen=True)
class Curves:
    curves: list[Curve]
    classes_left_out: int = 0


def curves(pr: Rows, base: Rows) -> Curves:
    """The curves of both branches; none when they predict different kinds of target (or have no rows)."""
    if pr.classification != base.classification or not len(pr) or not len(base):
        return Curves([])
    if not pr.classification:
        return Curves([_residual_curve(pr, base)])
    shown = _frequent_labels(pr)
    drawn = [curve for label in shown if (curve := _roc_curve(label, pr, base)) is not None]
    return Curves(drawn, classes_left_out=len(pr.labels) - len(shown))


def _frequent_labels(rows: Rows) -> list[str]:
    """The probability columns' classes, the most frequent in the test rows first, at most MAX_CLASSES."""
    counts = {label: int(np.sum(rows.truth == label)) for label in rows.labels}
    return sorted(rows.labels, key=lambda label: -counts[label])[:MAX_CLASSES]


def _roc_curve(label: str, pr: Rows, base: Rows) -> Curve | None:
    ours = roc_on_grid(pr.truth == label, pr.proba[:, pr.labels.index(label)])
    if ours is None:
        return None
    theirs = None
    if label in base.labels:
        theirs = roc_on_grid(base.truth == label, base.proba[:, base.labels.index(label)])
    which = "" if len(pr.labels) == 1 and len(base.labels) == 1 else " one-vs-rest"
    return Curve(
        title=f"ROC of {safe_label(label)}{which}",
        x_label="false positive rate",
        y_label="true positive rate",
        x_range=(0.0, 1.0),
        pr=ours,
        base=theirs,
    )


def roc_on_grid(is_positive: np.ndarray, score: np.ndarray) -> tuple[float, ...] | None:
    """The true positive rate at each false positive rate of GRID (the highest reached there);
    None without both positive and negative rows."""
    positives, negatives = int(is_positive.sum()), int((~is_positive).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(-score, kind="stable")
    ranked, hits = score[order], is_positive[order]
    last = np.r_[ranked[1:] != ranked[:-1], True]  # the curve turns only after a run of equal scores
    tpr = np.r_[0.0, np.cumsum(hits)[last] / positives]
    fpr = np.r_[0.0, np.cumsum(~hits)[last] / negatives]
    at = np.searchsorted(fpr, GRID, side="right") - 1
    return tuple(float(value) for value in np.round(tpr[at], 4))


def _residual_curve(pr: Rows, base: Rows) -> Curve:
    return Curve(
        title="Absolute error by quantile of the test rows",
        x_label="quantile",
        y_label="absolute error",
        x_range=(float(LEVELS[0]), float(LEVELS[-1])),
        pr=error_quantiles(pr),
        base=error_quantiles(base),
    )


def error_quantiles(rows: Rows) -> tuple[float, ...]:
    errors = np.abs(rows.truth.astype(float) - rows.predicted.astype(float))
    return tuple(float(f"{value:.4g}") for value in np.quantile(errors, LEVELS))  # 4 digits: a small report


def safe_label(text: str) -> str:
    """A class name from a file as plain text: no quote, bracket or markup can reach the report."""
    plain = re.sub(r"[^A-Za-z0-9 _.+-]", "?", " ".join(str(text).split()))
    return plain if len(plain) <= MAX_LABEL else plain[: MAX_LABEL - 1] + "~"
