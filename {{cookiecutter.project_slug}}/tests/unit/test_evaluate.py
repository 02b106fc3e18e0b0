"""Evaluation helpers: slice groups (property-based), the positive class, metric sets for two
classes and for more, per-class and per-group metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from {{ cookiecutter.package_name }}.metrics import metric_names
from {{ cookiecutter.package_name }}.pipeline.evaluate import (
    MAX_NUMERIC_GROUPS,
    MISSING_GROUP,
    NUMERIC_SLICE_BINS,
    slice_groups,
    slice_metrics,
)
from {{ cookiecutter.package_name }}.pipeline.scoring import (
    class_metrics,
    classification_metrics,
    positive_label,
    regression_metrics,
)

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
    assert positive_label(np.array(["a", "b", "c"]), None) is None  # every class one-vs-rest
    with pytest.raises(ValueError, match="'a' is for two classes: the target has 3"):
        positive_label(np.array(["a", "b", "c"]), "a")
    with pytest.raises(ValueError, match="two or more classes: the target has 1"):
        positive_label(np.array(["a"]), None)


def test_metric_functions_give_every_metric_params_may_bound() -> None:
    truth = pd.Series(["No", "Yes", "Yes", "No"])
    positive = np.array([0.2, 0.9, 0.6, 0.4])
    predicted = np.where(positive >= 0.5, "Yes", "No")
    classes = np.array(["No", "Yes"])
    proba = np.column_stack([1 - positive, positive])
    scores = classification_metrics(truth, predicted, proba, classes, "Yes")
    assert set(scores) == set(metric_names("classification"))
    assert scores["accuracy"] == 1.0 and scores["roc_auc"] == 1.0 and scores["f1"] == 1.0
    regression = regression_metrics(pd.Series([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert set(regression) == set(metric_names("regression"))
    assert regression["mae"] == pytest.approx(1 / 3, abs=1e-6)


THREE = np.array(["a", "b", "c"])


def test_three_classes_are_scored_one_vs_rest_without_a_positive_class() -> None:
    truth = pd.Series(["a", "b", "c", "a", "b", "c"])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2], [0.3, 0.4, 0.3], [0.1, 0.5, 0.4]]
    )
    predicted = THREE.take(proba.argmax(axis=1))
    scores = classification_metrics(truth, predicted, proba, THREE, None)
    assert set(scores) == set(metric_names("classification", 3)) and "f1" not in scores
    assert scores["accuracy"] == pytest.approx(5 / 6, abs=1e-6)
    assert scores["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-6)
    assert scores["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, proba, multi_class="ovr"), abs=1e-6)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(truth, proba), abs=1e-6)
    per_class = class_metrics(truth, predicted, THREE)
    assert per_class["c"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "count": 2}
    assert per_class["b"]["precision"] == pytest.approx(2 / 3, abs=1e-6)


def test_integer_class_labels_are_classes() -> None:
    truth = pd.Series([0, 1, 2, 0, 1, 2])
    proba = np.tile([0.5, 0.3, 0.2], (6, 1))
    classes = np.array([0, 1, 2])
    assert positive_label(classes, None) is None
    scores = classification_metrics(truth, np.zeros(6, dtype=int), proba, classes, None)
    assert scores["roc_auc"] == 0.5 and scores["balanced_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert set(class_metrics(truth, np.zeros(6, dtype=int), classes)) == {"0", "1", "2"}
    assert positive_label(np.array([0, 1]), "1") == 1  # params name a label as text


def test_three_class_slices_hold_each_class_one_vs_rest_per_group() -> None:
    truth = pd.Series(["a", "b", "c", "a", "b", "c"])
    predicted = np.array(["a", "b", "b", "a", "a", "c"])
    sensitive = pd.DataFrame({"group": ["x", "x", "x", "y", "y", None]})
    result = slice_metrics(truth, predicted, sensitive, "classification", THREE)["group"]
    assert set(result["groups"]["x"]) == {"accuracy", "balanced_accuracy", "count"}
    assert result["groups"]["x"]["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert set(result["classes"]) == {"a", "b", "c"}
    b_in_y = result["classes"]["b"]["groups"]["y"]
    assert (b_in_y["recall"], b_in_y["selection_rate"], b_in_y["count"]) == (0.0, 0.0, 2)
    assert result["classes"]["c"]["groups"][MISSING_GROUP]["recall"] == 1.0
    assert result["classes"]["a"]["difference"]["selection_rate"] == 1.0  # 1 in y, 0 in (missing)


def test_slice_metrics_count_every_row_once() -> None:
    truth = pd.Series(["Yes", "No", "Yes", "Yes", "No", "No"])
    predicted = np.array(["Yes", "No", "No", "Yes", "Yes", "No"])
    sensitive = pd.DataFrame({"group": ["a", "a", "b", "b", "b", "c"]})
    result = slice_metrics(truth, predicted, sensitive, "classification", positive="Yes")
    groups = result["group"]["groups"]
    assert {name: values["count"] for name, values in groups.items()} == {"a": 2, "b": 3, "c": 1}
    assert groups["a"]["accuracy"] == 1.0
    assert result["group"]["difference"]["accuracy"] == pytest.approx(1 - 1 / 3, abs=1e-6)
