"""Staleness: the backtest's windows and ages, the maximum-age rule, and the check monitoring reuses."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config.reading import ConfigError, read_params
from {{ cookiecutter.package_name }}.config.settings import parse_settings
from {{ cookiecutter.package_name }}.pipeline.backtest import (
    StageSettings,
    age_between,
    backtest,
    backtest_metric,
    plan_windows,
    summary,
)
from {{ cookiecutter.package_name }}.staleness import (
    StalenessUnknown,
    max_age,
    read_report,
    recommended_max_age,
    render_table,
    too_old,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def params(**sections: dict) -> dict:
    """The shipped params.yaml, with some sections' keys replaced."""
    raw = read_params(ROOT / "params.yaml")
    assert isinstance(raw, dict)
    for name, keys in sections.items():
        raw[name] = {**raw.get(name, {}), **keys}
    return raw


def test_windows_are_equally_long_and_end_ever_earlier() -> None:
    windows = plan_windows([1997, 1998, 1999, 2000], 2001, 3)
    assert [window.periods for window in windows] == [[1999, 2000], [1998, 1999], [1997, 1998]]
    assert [window.age for window in windows] == [1.0, 2.0, 3.0]


def test_more_windows_than_periods_takes_one_period_each() -> None:
    windows = plan_windows([1, 2], 5, 4)
    assert [(window.periods, window.age) for window in windows] == [([2], 3.0), ([1], 4.0)]


def test_the_age_of_dates_is_in_days() -> None:
    assert age_between(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-31")) == 30.0


def test_max_age_is_the_last_age_within_tolerance_of_the_freshest() -> None:
    assert max_age([(1, 0.80), (2, 0.79), (3, 0.75), (4, 0.80)], "higher", 0.02) == (2, False)
    assert max_age([(1, 0.80), (2, 0.79), (3, 0.795)], "higher", 0.02) == (3, True)  # limit not reached
    assert max_age([(1, 10.0), (2, 10.5), (3, 13.0)], "lower", 1.0) == (2, False)  # rmse: lower is better


def test_a_model_that_could_not_be_scored_ends_the_range() -> None:
    assert max_age([(1, 0.8), (2, float("nan")), (3, 0.8)], "higher", 0.02) == (1, False)


def test_too_old_compares_an_age_with_the_recommended_maximum() -> None:
    report = {"max_age": 2.0}
    assert not too_old(2, report)
    assert too_old(2.5, report)


def test_no_maximum_age_is_never_a_pass() -> None:
    report = {"time_column": None, "max_age": None, "reason": "data.time_column is not set"}
    with pytest.raises(StalenessUnknown, match=r"no maximum model age: data.time_column is not set"):
        too_old(100, report)
    with pytest.raises(StalenessUnknown, match="no max_age"):
        recommended_max_age({})


def test_a_missing_or_broken_report_says_so(tmp_path: Path) -> None:
    with pytest.raises(StalenessUnknown, match="not found"):
        read_report(tmp_path / "staleness.json")
    (tmp_path / "staleness.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(StalenessUnknown, match="not a JSON object"):
        read_report(tmp_path / "staleness.json")
    (tmp_path / "staleness.json").write_text(json.dumps({"max_age": 3}), encoding="utf-8")
    assert too_old(4, read_report(tmp_path / "staleness.json"))


def test_without_a_time_column_the_report_says_there_is_no_maximum_age() -> None:
    settings = StageSettings.parse(params(data={"time_column": None}))
    frame = pd.DataFrame({"x": [1, 2]})
    report = backtest(frame, frame, settings)  # no model is fitted: nothing to age
    assert report["max_age"] is None
    assert "data.time_column is not set" in report["reason"]
    assert summary(report).startswith("no maximum model age")


def test_too_few_periods_is_said_not_passed() -> None:
    settings = StageSettings.parse(params(data={"time_column": "t"}))
    frame = pd.DataFrame({"t": [1, 1], "x": [1, 2]})
    report = backtest(frame, frame, settings)
    assert report["max_age"] is None
    assert "1 period(s)" in report["reason"]


def test_an_unknown_backtest_metric_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"backtest.metric: unknown metric 'no_such'"):
        parse_settings(params(backtest={"metric": "no_such"}))
    with pytest.raises(ValueError, match=r"backtest.metric: unknown metric 'no_such'"):
        backtest_metric(StageSettings.parse(params(backtest={"metric": "no_such"})))
    with pytest.raises(ConfigError, match=r"backtest.windows"):
        parse_settings(params(backtest={"windows": 1}))


def test_a_params_file_without_backtest_still_loads() -> None:
    raw = params()
    raw.pop("backtest")
    assert parse_settings(raw).backtest.windows == 3


def test_the_shipped_backtest_is_full_size() -> None:
    # The tests run two windows (a budget); the project itself compares at least three ages.
    assert parse_settings(read_params(ROOT / "params.yaml")).backtest.windows >= 3


REPORT = {
    "time_column": "year",
    "age_unit": "year",
    "metric": "roc_auc",
    "tolerance": 0.02,
    "latest_window": {"from": 2001, "to": 2002, "rows": 10},
    "models": [
        {"age": 1.0, "trained_from": 1999, "trained_to": 2000, "rows": 5, "roc_auc": 0.8},
        {"age": 2.0, "trained_from": 1998, "trained_to": 1999, "rows": 5, "roc_auc": 0.7},
    ],
    "max_age": 1.0,
    "max_age_is_lower_bound": False,
}


def test_the_table_shows_each_age_and_the_maximum() -> None:
    table = render_table(REPORT)
    assert "| 1 | 1999 to 2000 | 5 | 0.8 | within tolerance |" in table
    assert "| 2 | 1998 to 1999 | 5 | 0.7 | too old |" in table
    assert "Recommended maximum model age: 1 (year);" in table


def test_the_staleness_command_exits_1_for_a_model_over_the_maximum_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "staleness.json").write_text(json.dumps(REPORT), encoding="utf-8")
    assert main(["--root", str(tmp_path), "staleness", "--age", "1"]) == 0
    assert main(["--root", str(tmp_path), "staleness", "--age", "1.5"]) == 1
    assert "is too old" in capsys.readouterr().out
    no_time = {"time_column": None, "max_age": None, "reason": "data.time_column is not set", "models": []}
    (tmp_path / "reports" / "staleness.json").write_text(json.dumps(no_time), encoding="utf-8")
    assert main(["--root", str(tmp_path), "staleness", "--age", "0"]) == 1
    assert "gives no maximum model age: data.time_column is not set" in capsys.readouterr().err
