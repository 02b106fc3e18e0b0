"""The `backtest` stage: how quality falls as the model ages (reports/staleness.json).

Models are trained, as `train` trains, on windows of the training periods (the distinct values
of data.time_column) that end ever earlier, all of the same length, and each is scored on the
test set: the latest window. A model's age is the time from its training data's end to the
test window's start, in the time column's units (days for dates). The recommended maximum
age is the largest age up to which every model stays within backtest.tolerance of the
freshest one (staleness.py); monitoring checks a served model's age against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.backtest import BacktestSettings
from ..data import features_and_target, read_frame
from ..metrics import BETTER, HEADLINE, metric_names
from ..paths import Paths
from ..staleness import max_age
from .scoring import score
from .split import time_values
from .stage import relative, run_stage, write_json
from .train import StageSettings as TrainStageSettings
from .train import fit, with_tuning


class StageSettings(TrainStageSettings):
    """The sections of params.yaml that backtest reads: train's, and its own."""

    backtest: BacktestSettings = BacktestSettings()


@dataclass(frozen=True)
class Window:
    periods: list  # the training periods, oldest first
    age: float


def plan_windows(periods: list, latest_start: object, count: int) -> list[Window]:
    """Up to `count` windows of equal length over the sorted distinct training `periods`, each
    ending one period before the previous one, freshest first; the oldest starts at the first."""
    count = min(count, len(periods))
    length = len(periods) - count + 1
    ends = range(len(periods) - 1, len(periods) - 1 - count, -1)
    return [
        Window(periods[end - length + 1 : end + 1], age_between(periods[end], latest_start)) for end in ends
    ]


def age_between(end: Any, latest_start: Any) -> float:
    """Time from a training window's end to the latest window's start: days for dates."""
    if isinstance(end, pd.Timestamp):
        return float((pd.Timestamp(latest_start) - end) / pd.Timedelta(days=1))
    return float(latest_start - end)


def plain(value: object) -> object:
    """A period as JSON: a date's ISO text, a number as a number."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat() if value != value.normalize() else value.date().isoformat()
    return value.item() if hasattr(value, "item") else value


def no_max_age(time_column: str | None, reason: str) -> dict:
    """The report when age cannot be measured: said so, so monitoring knows there is no limit."""
    return {"time_column": time_column, "max_age": None, "reason": reason, "models": []}


def backtest(train: pd.DataFrame, test: pd.DataFrame, settings: StageSettings) -> dict:
    """The staleness report: each window's model scored on `test`, and the maximum age."""
    column = settings.data.time_column
    if column is None:
        return no_max_age(None, "data.time_column is not set: without time there is no model age")
    train_times, test_times = time_values(train, column), time_values(test, column)
    periods = sorted(train_times.unique())
    if len(periods) < 2:
        return no_max_age(
            column, f"the training set has {len(periods)} period(s) of {column!r}: no older model"
        )
    metric = backtest_metric(settings)
    windows = plan_windows(periods, test_times.min(), settings.backtest.windows)
    models = [
        score_window(train[train_times.isin(window.periods)], test, window, metric, settings)
        for window in windows
    ]
    limit, beyond = max_age(
        [(m["age"], m[metric]) for m in models], BETTER[metric], settings.backtest.tolerance
    )
    return {
        "time_column": column,
        "age_unit": "days" if isinstance(periods[0], pd.Timestamp) else column,
        "metric": metric,
        "tolerance": settings.backtest.tolerance,
        "latest_window": {"from": plain(test_times.min()), "to": plain(test_times.max()), "rows": len(test)},
        "models": models,
        "max_age": limit,
        # Even the oldest model stayed within tolerance: the true limit lies beyond this one.
        "max_age_is_lower_bound": beyond,
    }


def score_window(
    rows: pd.DataFrame, test: pd.DataFrame, window: Window, metric: str, settings: StageSettings
) -> dict:
    """The model trained on one window's rows, scored on the test set."""
    model = fit(rows, settings)
    features, target = features_and_target(test, settings.data.target)
    inputs = features[list(model.feature_names_in_)]
    values = score(model, inputs, target, settings.task, settings.data.positive_class)
    if metric not in values:
        raise ValueError(f"backtest.metric: {metric!r} is for two classes; the target has more")
    return {
        "age": window.age,
        "trained_from": plain(window.periods[0]),
        "trained_to": plain(window.periods[-1]),
        "rows": len(rows),
        metric: values[metric],
    }


def backtest_metric(settings: StageSettings) -> str:
    """backtest.metric, or the task's headline metric; one the task has (as check also finds)."""
    metric = settings.backtest.metric or HEADLINE[settings.task]
    allowed = metric_names(settings.task)
    if metric not in allowed:
        raise ValueError(
            f"backtest.metric: unknown metric {metric!r} for {settings.task}; allowed: {', '.join(allowed)}"
        )
    return metric


def summary(report: dict) -> str:
    """One line for the stage's output and `status`."""
    if report["max_age"] is None:
        return f"no maximum model age: {report['reason']}"
    unit = report["age_unit"]
    bound = " (or more: the oldest model tested)" if report["max_age_is_lower_bound"] else ""
    ages = ", ".join(f"{m['age']:g}: {m[report['metric']]:.4g}" for m in report["models"])
    return f"maximum model age {report['max_age']:g} ({unit}){bound}; {report['metric']} by age: {ages}"


def run(settings: StageSettings, paths: Paths) -> None:
    settings = with_tuning(settings, paths)  # the model train fits, tuned or not
    report = backtest(read_frame(paths.train), read_frame(paths.test), settings)
    write_json(paths.staleness, report)
    print(f"backtest: {summary(report)} -> {relative(paths.staleness, paths)}")


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
