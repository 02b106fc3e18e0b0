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


METRICS = (
    Metric("accuracy", "classification", "higher"),
    Metric("balanced_accuracy", "classification", "higher"),
    Metric("f1", "classification", "higher"),
    Metric("roc_auc", "classification", "higher"),
    Metric("log_loss", "classification", "lower"),
    Metric("brier", "classification", "lower"),
    Metric("rmse", "regression", "lower"),
    Metric("mae", "regression", "lower"),
    Metric("r2", "regression", "higher"),
)
BETTER: dict[str, Better] = {metric.name: metric.better for metric in METRICS}
HEADLINE = {"classification": "roc_auc", "regression": "rmse"}  # the one `status` shows per version
# Per-group metrics in reports/slices.json, which the gate watches.
SLICE_METRICS: dict[str, Better] = {"accuracy": "higher", "recall": "higher", "rmse": "lower", "mae": "lower"}


def metric_names(task: str) -> tuple[str, ...]:
    return tuple(metric.name for metric in METRICS if metric.task == task)
