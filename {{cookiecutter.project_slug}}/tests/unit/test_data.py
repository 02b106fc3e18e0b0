"""Reading and splitting: clear errors for unusable files and columns; splits by time and at random."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.config.data import DataSettings
from {{ cookiecutter.package_name }}.config.split import SplitSettings
from {{ cookiecutter.package_name }}.data import DataError, features_and_target, read_frame
from {{ cookiecutter.package_name }}.pipeline.check import data_problems, failure_line
from {{ cookiecutter.package_name }}.pipeline.ingest import ingest
from {{ cookiecutter.package_name }}.pipeline.split import random_split_problem, split_by_time, split_frame, time_values
from {{ cookiecutter.package_name }}.schema import Failure

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


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_header_only_csv_is_one_error_with_0_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "source.csv", "age,label\n")
    with pytest.raises(DataError) as caught:
        read_frame(path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("source.csv has 0 rows (columns: age, label)")


@pytest.mark.parametrize(
    ("text", "says"),
    [(None, "not found"), ("", "is empty: not even a header row"), ('a,b\n1,"2\n', "not a readable CSV")],
)
def test_unreadable_csv_is_one_clear_error(tmp_path: Path, text: str | None, says: str) -> None:
    path = tmp_path / "source.csv"
    if text is not None:
        write(path, text)
    with pytest.raises(DataError, match=says) as caught:
        read_frame(path)
    assert "\n" not in str(caught.value)


def test_ingest_refuses_an_empty_source(tmp_path: Path) -> None:
    write(tmp_path / "source.csv", "x,label\n")
    settings = DataSettings(source="csv", csv_path="source.csv", target="label")
    with pytest.raises(DataError, match="has 0 rows"):
        ingest(settings, tmp_path)


def test_missing_time_column_names_it_and_the_columns() -> None:
    frame = pd.DataFrame({"x": range(8), "label": ["a", "b"] * 4})
    with pytest.raises(DataError) as caught:
        split_frame(frame, SplitSettings(test_size=0.25, seed=1), "label", "year", stratify=True)
    assert str(caught.value) == "data.time_column: 'year' is not a column of the data; columns: x, label"


def test_text_time_column_must_be_numeric_or_a_date() -> None:
    frame = pd.DataFrame({"region": ["north", "south"] * 4, "label": ["a", "b"] * 4})
    with pytest.raises(DataError) as caught:
        split_by_time(frame, "region", 0.25)
    message = str(caught.value)
    assert message.startswith("data.time_column 'region' holds text ('north', 'south')"), message
    assert "must be numeric or a date" in message and "\n" not in message


def test_boolean_time_column_is_refused() -> None:
    frame = pd.DataFrame({"flag": [True, False] * 4})
    with pytest.raises(DataError, match="must be numeric or a date"):
        split_by_time(frame, "flag", 0.25)


def test_iso_dates_as_text_split_by_time() -> None:
    frame = pd.DataFrame({"day": ["2024-03-01", "2023-01-15", "2024-12-31", "2023-07-04"], "row": range(4)})
    train, test = split_by_time(frame, "day", 0.25)
    assert list(test["day"]) == ["2024-12-31"]
    assert list(train["row"]) == [0, 1, 3]
    assert list(time_values(frame, "day").dt.year) == [2024, 2023, 2024, 2023]


def test_a_row_without_a_time_is_refused() -> None:
    frame = pd.DataFrame({"year": [2000, 2001, None, 2003]})
    with pytest.raises(DataError, match=r"'year' is empty in 1 row\(s\)"):
        split_by_time(frame, "year", 0.25)


def test_missing_target_is_one_error_not_a_key_error() -> None:
    with pytest.raises(DataError, match=r"data\.target: 'label' is not a column of the data; columns: x"):
        features_and_target(pd.DataFrame({"x": [1, 2]}), "label")


@given(
    counts=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=3),
    test_size=st.sampled_from([0.1, 0.25, 0.5, 0.9]),
    stratify=st.booleans(),
)
def test_random_split_problem_agrees_with_scikit_learn(counts: list[int], test_size: float, stratify) -> None:
    from sklearn.model_selection import train_test_split

    labels = pd.Series([f"c{i}" for i, count in enumerate(counts) for _ in range(count)])
    problem = random_split_problem(labels if stratify else None, len(labels), test_size)
    try:
        train_test_split(labels, test_size=test_size, random_state=0, stratify=labels if stratify else None)
    except ValueError:
        assert problem is not None
    else:
        assert problem is None


# --- the check stage's rules: the data against the settings (pure; the stage runs in the integration tests)


def with_data(settings, task: str = "classification", **data):
    """The project's settings for another task and data section (a quarter of the rows to test)."""
    split = SplitSettings(test_size=0.25, seed=1)
    return settings.model_copy(
        update={"task": task, "data": settings.data.model_copy(update=data), "split": split}
    )


FRAME = pd.DataFrame(
    {
        "year": [2001, 2002, 2003, 2004] * 5,
        "colour": ["a", "b"] * 10,
        "x": range(20),
        "label": ["no", "yes", "yes", "no", "no"] * 4,
    }
)


def checked(settings, frame: pd.DataFrame = FRAME, task: str = "classification", **data) -> list[str]:
    defaults = {
        "target": "label",
        "positive_class": None,
        "sensitive_features": ["colour"],
        "time_column": None,
    }
    return data_problems(frame, with_data(settings, task, **(defaults | data)))


def test_fitting_data_has_no_problems(settings) -> None:
    assert checked(settings) == []
    assert checked(settings, time_column="year", positive_class="yes") == []


def test_every_missing_column_is_named_once(settings) -> None:
    sensitive = ["colour", "sex", "race"]
    problems = checked(settings, target="released", sensitive_features=sensitive, time_column="t")
    columns = "is not a column of the data; columns: year, colour, x, label"
    assert problems == [
        f"data.target: 'released' {columns}",
        f"data.sensitive_features: 'sex' {columns}",
        f"data.sensitive_features: 'race' {columns}",
        f"data.time_column: 't' {columns}",
    ]


def test_positive_class_must_be_a_class(settings) -> None:
    assert checked(settings, positive_class="Yes") == [
        "data.positive_class 'Yes' is not a class of 'label'; classes: no, yes"
    ]


def test_classification_needs_two_classes_or_more(settings) -> None:
    (problem,) = checked(settings, frame=FRAME.assign(label=["a"] * 20))
    assert problem == "data.target 'label' has 1 class(es) (a): classification needs two or more", problem
    assert checked(settings, frame=FRAME.assign(label=["a", "b", "c", "d"] * 5)) == []


def test_a_target_with_a_different_value_in_every_row_is_an_id(settings) -> None:
    (problem,) = checked(settings, frame=FRAME.assign(label=[f"id-{i}" for i in range(20)]))
    assert problem.startswith("data.target 'label' has a different value in each of its 20 rows"), problem


def test_a_positive_class_needs_two_classes(settings) -> None:
    (problem,) = checked(settings, frame=FRAME.assign(label=["a", "b", "c", "d"] * 5), positive_class="a")
    assert problem == (
        "data.positive_class 'a' is for two classes: 'label' has 4 (a, b, c, d); set it to null"
    ), problem


def test_regression_needs_a_numeric_target(settings) -> None:
    (problem,) = checked(settings, task="regression", sensitive_features=[])
    assert problem.startswith("data.target 'label' is not numeric ("), problem
    assert problem.endswith("): regression needs numbers"), problem


def test_the_model_needs_an_input(settings) -> None:
    (problem,) = checked(settings, sensitive_features=["year", "colour", "x"], use_sensitive_features=False)
    assert problem.startswith("the model would have no inputs"), problem
    assert checked(settings, sensitive_features=["year", "colour", "x"], use_sensitive_features=True) == []


def test_a_split_by_time_must_leave_both_classes_in_the_test_set(settings) -> None:
    frame = FRAME.copy()
    frame.loc[frame["year"] == 2004, "label"] = "yes"  # the latest year: the test set
    (problem,) = checked(settings, frame=frame, time_column="year")
    assert problem.startswith("split: the test set (rows by data.time_column 'year') has 1 of the 2 classes")


def test_a_stratified_split_needs_two_rows_of_each_class(settings) -> None:
    frame = FRAME.assign(label=["no"] * 19 + ["yes"])
    (problem,) = checked(settings, frame=frame)
    assert problem.startswith("split: class 'yes' of the target has a single row: a stratified split needs")


def test_contract_failures_read_as_one_line_each() -> None:
    missing = Failure("released", "column_in_dataframe", 1, ("released",))
    rows = Failure("age", "less_than_or_equal_to(100)", 3, ("101", "250"))
    assert failure_line("schema.yaml", missing) == "schema.yaml: column 'released' is not in the data"
    assert failure_line("schema.yaml", rows) == (
        "schema.yaml: column 'age' fails 'less_than_or_equal_to(100)' in 3 row(s), e.g. 101, 250"
    )
