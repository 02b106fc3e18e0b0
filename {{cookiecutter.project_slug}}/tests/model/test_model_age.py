"""The backtest on data whose relationship drifts over time: old models get much worse, and the
recommended maximum age drops so that monitoring flags them (the fault M4's check exists for)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config.reading import read_params
from {{ cookiecutter.package_name }}.pipeline.backtest import StageSettings, backtest
from {{ cookiecutter.package_name }}.staleness import too_old

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
PERIODS = 6  # 1..5 train, 6 is the latest window


def synthetic_settings(task: str) -> StageSettings:
    """The project's model and task, on the synthetic columns; two windows more than the budget."""
    raw = read_params(ROOT / "params.yaml")
    assert isinstance(raw, dict)
    raw["data"] = {
        **raw["data"],
        "target": "y",
        "time_column": "period",
        "sensitive_features": [],
        "positive_class": "Yes" if task == "classification" else None,
    }
    raw["backtest"] = {"windows": 3, "tolerance": 0.05}
    return StageSettings.parse(raw)


def periods_frame(task: str, drift: bool, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """x1, x2 and a target that follows the direction at angle theta; with drift, theta turns by
    a fifth of a half turn each period (the latest period's relationship is the first's, reversed)."""
    rng = np.random.default_rng(seed)
    frames = []
    for period in range(1, PERIODS + 1):
        theta = (period - 1) * np.pi / 5 if drift else 0.0
        x = rng.normal(size=(rows, 2))
        signal = x[:, 0] * np.cos(theta) + x[:, 1] * np.sin(theta) + rng.normal(scale=0.2, size=rows)
        y = np.where(signal > 0, "Yes", "No") if task == "classification" else signal
        frames.append(pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "period": period, "y": y}))
    return pd.concat(frames, ignore_index=True)


@functools.cache  # each report is read by two tests
def run(task: str, drift: bool) -> dict:
    frame = periods_frame(task, drift)
    latest = frame["period"] == PERIODS
    return backtest(frame[~latest], frame[latest], synthetic_settings(task))


@pytest.fixture(scope="module")
def task() -> str:
    raw = read_params(ROOT / "params.yaml")
    assert isinstance(raw, dict)
    return str(raw["task"])


def test_stable_data_keeps_every_age_within_tolerance(task: str) -> None:
    report = run(task, drift=False)
    assert [model["age"] for model in report["models"]] == [1.0, 2.0, 3.0]
    assert report["max_age"] == 3.0 and report["max_age_is_lower_bound"]
    assert not too_old(3, report)


def test_drift_makes_old_models_worse_and_the_maximum_age_drops(task: str) -> None:
    stable, drifted = run(task, drift=False), run(task, drift=True)
    metric = drifted["metric"]
    scores = [model[metric] for model in drifted["models"]]
    better_first = scores == sorted(scores, reverse=metric != "rmse")
    assert better_first, scores  # each older model is worse on the latest window
    assert drifted["max_age"] < stable["max_age"]
    assert drifted["max_age"] == 1.0 and not drifted["max_age_is_lower_bound"]
    assert too_old(2, drifted) and not too_old(2, stable)  # the check monitoring runs flags it


def test_the_demo_backtest_runs_on_a_budget(
    settings, train_set: pd.DataFrame, test_set: pd.DataFrame
) -> None:
    # Two windows (the shipped default is full-size: tests/unit/test_staleness.py).
    if settings.data.time_column is None:
        # Staleness cannot be known (M4 scores 0): the report says so (tests/unit/test_staleness.py).
        pytest.skip("no data.time_column: reports/staleness.json says there is no maximum model age")
    raw = read_params(ROOT / "params.yaml")
    assert isinstance(raw, dict)
    raw["backtest"] = {**raw.get("backtest", {}), "windows": 2}
    report = backtest(train_set, test_set, StageSettings.parse(raw))
    assert len(report["models"]) == 2
    assert report["models"][0]["age"] < report["models"][1]["age"]
    assert report["max_age"] >= report["models"][0]["age"]
