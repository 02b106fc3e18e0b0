"""Splitting: by time (property-based) and at random."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.config import SplitSettings
from {{ cookiecutter.package_name }}.data import features_and_target, split_by_time, split_frame

pytestmark = pytest.mark.unit


@given(
    times=st.lists(st.integers(min_value=1990, max_value=2030), min_size=2, max_size=60).filter(
        lambda times: len(set(times)) > 1
    ),
    test_size=st.floats(min_value=0.05, max_value=0.95),
)
def test_split_by_time_trains_on_the_past_and_loses_no_row(times: list[int], test_size: float) -> None:
    frame = pd.DataFrame({"year": times, "row": range(len(times))})
    train, test = split_by_time(frame, "year", test_size)
    assert len(train) > 0 and len(test) > 0
    assert train["year"].max() < test["year"].min()
    assert not set(train.index) & set(test.index)
    assert sorted([*train["row"], *test["row"]]) == list(range(len(times)))


def test_split_by_time_refuses_a_single_time() -> None:
    with pytest.raises(ValueError, match="'year' has a single value"):
        split_by_time(pd.DataFrame({"year": [2000] * 5}), "year", 0.25)


def test_random_split_is_seeded_and_stratified() -> None:
    frame = pd.DataFrame({"x": range(200), "label": ["a"] * 150 + ["b"] * 50})
    split = SplitSettings(test_size=0.2, seed=7)
    train, test = split_frame(frame, split, target="label", time_column=None, stratify=True)
    again, _ = split_frame(frame, split, target="label", time_column=None, stratify=True)
    other, _ = split_frame(frame, split.model_copy(update={"seed": 8}), "label", None, stratify=True)
    assert len(test) == 40
    assert test["label"].value_counts().to_dict() == {"a": 30, "b": 10}
    assert list(train.index) == list(again.index)
    assert list(train.index) != list(other.index)


def test_features_and_target() -> None:
    frame = pd.DataFrame({"x": [1, 2], "label": ["a", "b"]})
    features, target = features_and_target(frame, "label")
    assert list(features.columns) == ["x"]
    assert target.tolist() == ["a", "b"]
