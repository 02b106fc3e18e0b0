"""The `split` stage: train and test sets, by time when a time column is set, else seeded at random."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..config.data import DataSettings
from ..config.reading import Sections, Task
from ..config.split import SplitSettings
from ..data import DataError, read_frame, require_columns, write_frame
from ..paths import Paths
from .stage import run_stage


class StageSettings(Sections):
    """The sections of params.yaml that split reads."""

    task: Task
    data: DataSettings
    split: SplitSettings


def split_frame(
    frame: pd.DataFrame,
    split: SplitSettings,
    target: str,
    time_column: str | None,
    stratify: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split: by time when a time column is set, else random (seeded)."""
    require_columns(frame, [target], "data.target")
    if time_column:
        return split_by_time(frame, time_column, split.test_size)
    from sklearn.model_selection import train_test_split  # slow import: only where needed

    labels = frame[target] if stratify else None
    train, test = train_test_split(frame, test_size=split.test_size, random_state=split.seed, stratify=labels)
    return train, test


def split_by_time(
    frame: pd.DataFrame, time_column: str, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier rows, test on later ones; rows sharing a time stay together."""
    times = time_values(frame, time_column)
    missing = int(times.isna().sum())
    if missing:
        raise DataError(
            f"data.time_column {time_column!r} is empty in {missing} row(s): "
            "a split by time needs every row's time"
        )
    cutoff = times.quantile(1 - test_size, interpolation="higher")
    if cutoff == times.min():
        # One distinct time (or a huge test share) would leave the train set empty.
        cutoff = times[times > times.min()].min()
    if pd.isna(cutoff):
        raise DataError(f"cannot split by time: {time_column!r} has a single value")
    is_test = times >= cutoff
    return frame[~is_test], frame[is_test]


def time_values(frame: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as orderable values: numbers or dates (ISO text such as 2024-05-31 is parsed)."""
    require_columns(frame, [time_column], "data.time_column")
    values = frame[time_column]
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"data.time_column {time_column!r} is true/false: it must be numeric or a date")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        examples = ", ".join(repr(str(value)) for value in values.dropna().unique()[:3])
        raise DataError(
            f"data.time_column {time_column!r} holds text ({examples}): it must be numeric or a date "
            "(YYYY-MM-DD)"
        ) from None


def random_split_problem(labels: pd.Series | None, rows: int, test_size: float) -> str | None:
    """Why a seeded random split (stratified by `labels`, if given) cannot be made; None if it can.

    The same rules scikit-learn applies, without importing it: the `check` stage stays quick.
    """
    test_rows = math.ceil(test_size * rows)
    train_rows = rows - test_rows
    if train_rows < 1 or test_rows < 1:
        return f"{rows} row(s) cannot be split into train and test sets (split.test_size {test_size})"
    if labels is None:
        return None
    counts = labels.value_counts()
    if counts.min() < 2:
        return (
            f"class {str(counts.idxmin())!r} of the target has a single row: a stratified split needs "
            "at least 2 rows of each class"
        )
    if min(train_rows, test_rows) < len(counts):
        return (
            f"{rows} rows are too few to put each of the {len(counts)} classes in both the train "
            f"and the test set (split.test_size {test_size})"
        )
    return None


def run(settings: StageSettings, paths: Paths) -> None:
    frame = read_frame(paths.raw)
    train, test = split_frame(
        frame,
        settings.split,
        target=settings.data.target,
        time_column=settings.data.time_column,
        stratify=settings.task == "classification",
    )
    write_frame(train, paths.train)
    write_frame(test, paths.test)
    print(f"split: {len(train)} train rows, {len(test)} test rows")


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
