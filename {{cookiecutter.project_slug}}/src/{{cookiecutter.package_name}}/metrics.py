"""The metric vocabulary, in one table: each metric's task and which way is better.

`pipeline/scoring.py` computes these (a test checks it computes exactly them), params.yaml's
gate and thresholds may name only these, and the report and `status` show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Metric:
    name: str
    task: Literal["classification", "regression"]
    better: Better
    binary_only: bool = False  # a measure of the positive class: two classes only


METRICS = (
    Metric("accuracy", "classification", "higher"),
    Metric("balanced_accuracy", "classification", "higher"),
    Metric("macro_f1", "classification", "higher"),
    Metric("f1", "classification", "higher", binary_only=True),
    Metric("roc_auc", "classification", "higher"),  # more classes: one-vs-rest, macro average
    Metric("log_loss", "classification", "lower"),
    Metric("brier", "classification", "lower"),  # more classes: summed over the classes
    Metric("rmse", "regression", "lower"),
    Metric("mae", "regression", "lower"),
    Metric("r2", "regression", "higher"),
)
BETTER: dict[str, Better] = {metric.name: metric.better for metric in METRICS}
HEADLINE = {"classification": "roc_auc", "regression": "rmse"}  # the one `status` shows per version
# Per-group and per-class metrics in reports/slices.json, which the gate watches.
SLICE_METRICS: dict[str, Better] = {
    "accuracy": "higher",
    "recall": "higher",
    "precision": "higher",
    "rmse": "lower",
    "mae": "lower",
}
# What gate.slices may bound per group and per class: the above, and what the groups also report.
BOUNDED_SLICE_METRICS: dict[str, Better] = SLICE_METRICS | {"balanced_accuracy": "higher", "f1": "higher"}


def metric_names(task: str, classes: int = 2) -> tuple[str, ...]:
    """The metrics of a task; for classification, of a target with this many classes."""
    return tuple(
        metric.name for metric in METRICS if metric.task == task and not (metric.binary_only and classes > 2)
    )
