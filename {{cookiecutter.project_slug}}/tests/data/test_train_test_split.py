"""The train/test split of the project's data: no overlap, nothing lost, the split params.yaml configures."""

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


def split_problems(settings, raw: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """How a split differs from the one params.yaml configures (split.test_size, data.time_column)."""
    share, size, column = len(test) / len(raw), settings.split.test_size, settings.data.time_column
    if column:
        # By time: every test row is later than every train row, and the test set is the latest
        # times that hold test_size of the rows (rows sharing a time stay together).
        problems = []
        if not train[column].max() < test[column].min():
            problems.append("a train row is not earlier than the test set")
        later = (test[column] > test[column].min()).sum() / len(raw)
        if share < size - 1 / len(raw) or later >= size:
            problems.append(f"the test set holds {share:.3f} of the rows, not the latest {size} by {column}")
        return problems
    problems = [] if share == pytest.approx(size, abs=0.01) else [f"test share {share:.3f}, not {size}"]
    if settings.task == "classification":
        target = settings.data.target
        train_share = train[target].value_counts(normalize=True).sort_index()
        test_share = test[target].value_counts(normalize=True).sort_index()
        apart = (train_share - test_share).abs().max()
        if not apart <= 0.02:
            problems.append(f"class shares differ by {apart:.3f} between train and test (0.02 at most)")
    return problems


def test_the_split_is_the_one_params_configure(settings, raw, train_set, test_set) -> None:
    assert split_problems(settings, raw, train_set, test_set) == []


def test_a_split_unlike_the_configured_one_is_caught(settings, raw, train_set, test_set) -> None:
    # The latest test rows moved into the train set: the future leaks into training, and the
    # test set shrinks (in both modes, as either the time order or the share breaks).
    column = settings.data.time_column
    third = len(test_set) // 3
    moved = test_set.sort_values(column).tail(third) if column else test_set.head(third)
    problems = split_problems(settings, raw, pd.concat([train_set, moved]), test_set.drop(moved.index))
    assert problems, "a split that leaks and shrinks the test set passed"


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
