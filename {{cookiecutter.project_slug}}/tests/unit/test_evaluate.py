"""Evaluation helpers: slice groups (property-based), the positive class, metric sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.metrics import metric_names
from {{ cookiecutter.package_name }}.pipeline.evaluate import (
    MAX_NUMERIC_GROUPS,
    MISSING_GROUP,
    NUMERIC_SLICE_BINS,
    slice_groups,
    slice_metrics,
)
from {{ cookiecutter.package_name }}.pipeline.scoring import classification_metrics, positive_label, regression_metrics

pytestmark = pytest.mark.unit


@given(
    values=st.lists(
        st.integers(min_value=0, max_value=120)
        # Measurements, not float edge cases: pd.qcut fails on subnormals and "-0.0" is a label of its own.
        | st.floats(min_value=-1e6, max_value=1e6).map(lambda value: round(value, 3) + 0.0),
        min_size=1,
        max_size=200,
    )
)
def test_numeric_slices_are_few_and_cover_every_row(values: list[float]) -> None:
    series = pd.Series(values, dtype=float)
    groups = slice_groups(series)
    assert len(groups) == len(series)
    assert groups.notna().all()
    if series.nunique() > MAX_NUMERIC_GROUPS:
        assert groups.nunique() <= NUMERIC_SLICE_BINS
    else:
        assert groups.nunique() == series.nunique()


@given(values=st.lists(st.sampled_from(["Black", "White", "Other"]), min_size=1, max_size=50))
def test_text_slices_are_the_values(values: list[str]) -> None:
    groups = slice_groups(pd.Series(values))
    assert groups.tolist() == values


@pytest.mark.parametrize(
    "values",
    [
        ["Black", None, "White", np.nan, "White"],
        [1.0, np.nan, 2.0, np.nan, 3.0],
        [float(age) for age in range(18, 60)] + [np.nan, np.nan],  # banded into quartiles
    ],
)
def test_a_missing_value_is_a_slice_of_its_own(values: list) -> None:
    series = pd.Series(values)
    groups = slice_groups(series)
    assert groups[series.isna()].eq(MISSING_GROUP).all()
    assert not groups[series.notna()].eq(MISSING_GROUP).any()
    assert groups.notna().all() and not groups.isin(["nan", "None", "<NA>"]).any()


def test_slice_metrics_with_missing_sensitive_values_count_them_as_a_group() -> None:
    truth = pd.Series(["Yes", "No", "Yes", "No"])
    predicted = np.array(["Yes", "No", "No", "No"])
    sensitive = pd.DataFrame({"group": ["a", None, np.nan, "a"]})
    groups = slice_metrics(truth, predicted, sensitive, "classification", positive="Yes")["group"]["groups"]
    assert {name: values["count"] for name, values in groups.items()} == {"a": 2, MISSING_GROUP: 2}


def test_positive_label() -> None:
    classes = np.array(["No", "Yes"])
    assert positive_label(classes, None) == "Yes"
    assert positive_label(classes, "No") == "No"
    with pytest.raises(ValueError, match="'Maybe' is not a class"):
        positive_label(classes, "Maybe")
    with pytest.raises(ValueError, match="binary classification only"):
        positive_label(np.array(["a", "b", "c"]), None)


def test_metric_functions_give_every_metric_params_may_bound() -> None:
    truth = pd.Series(["No", "Yes", "Yes", "No"])
    proba = np.array([0.2, 0.9, 0.6, 0.4])
    predicted = np.where(proba >= 0.5, "Yes", "No")
    scores = classification_metrics(truth, predicted, proba, "Yes")
    assert set(scores) == set(metric_names("classification"))
    assert scores["accuracy"] == 1.0 and scores["roc_auc"] == 1.0
    regression = regression_metrics(pd.Series([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert set(regression) == set(metric_names("regression"))
    assert regression["mae"] == pytest.approx(1 / 3, abs=1e-6)


def test_slice_metrics_count_every_row_once() -> None:
    truth = pd.Series(["Yes", "No", "Yes", "Yes", "No", "No"])
    predicted = np.array(["Yes", "No", "No", "Yes", "Yes", "No"])
    sensitive = pd.DataFrame({"group": ["a", "a", "b", "b", "b", "c"]})
    result = slice_metrics(truth, predicted, sensitive, "classification", positive="Yes")
    groups = result["group"]["groups"]
    assert {name: values["count"] for name, values in groups.items()} == {"a": 2, "b": 3, "c": 1}
    assert groups["a"]["accuracy"] == 1.0
    assert result["group"]["difference"]["accuracy"] == pytest.approx(1 - 1 / 3, abs=1e-6)
