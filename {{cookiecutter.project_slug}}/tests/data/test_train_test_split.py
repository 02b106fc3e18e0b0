"""The train/test split of the project's data: no overlap, nothing lost, the past before the future."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.pipeline.split import split_frame

pytestmark = pytest.mark.data


def test_split_has_no_overlap_and_loses_no_row(raw: pd.DataFrame, train_set, test_set) -> None:
    assert len(train_set) > 0 and len(test_set) > 0
    assert not set(train_set.index) & set(test_set.index)
    assert sorted([*train_set.index, *test_set.index]) == list(raw.index)
    pd.testing.assert_frame_equal(pd.concat([train_set, test_set]).sort_index(), raw)


def test_split_by_time_tests_on_the_future(settings, train_set, test_set) -> None:
    column = settings.data.time_column
    if not column:
        pytest.skip("params.yaml sets no data.time_column: the split is random")
    assert train_set[column].max() < test_set[column].min()


def test_random_split_has_the_configured_size_and_class_balance(settings, raw, train_set, test_set) -> None:
    if settings.data.time_column:
        pytest.skip("the split is by time: its size follows the time column")
    assert len(test_set) / len(raw) == pytest.approx(settings.split.test_size, abs=0.01)
    if settings.task == "classification":
        target = settings.data.target
        train_share = train_set[target].value_counts(normalize=True).sort_index()
        test_share = test_set[target].value_counts(normalize=True).sort_index()
        pd.testing.assert_series_equal(train_share, test_share, atol=0.02, check_names=False)


def test_split_is_reproducible(settings, raw, train_set) -> None:
    again, _ = split_frame(
        raw,
        settings.split,
        target=settings.data.target,
        time_column=settings.data.time_column,
        stratify=settings.task == "classification",
    )
    assert list(again.index) == list(train_set.index)


def test_every_class_is_in_both_sets(settings, train_set, test_set) -> None:
    if settings.task != "classification":
        pytest.skip("regression has no classes")
    target = settings.data.target
    assert set(train_set[target]) == set(test_set[target])
