"""Ingest the raw data and split it into train and test sets."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from .config import DataSettings, SplitSettings

MAX_LISTED = 12  # columns or values named in one error line


class DataError(ValueError):
    """The data cannot be read, or does not have what the settings name (a column, rows)."""


def load_demo(source: str) -> pd.DataFrame:
    """Bundled demo data, read from installed packages (no network)."""
    if source == "demo-arrests":
        try:
            from sklego.datasets import load_arrests  # slow import: only where needed
        except ImportError:
            raise DataError(
                "data.source 'demo-arrests' needs the scikit-lego package, which is not installed"
            ) from None
        return load_arrests(as_frame=True)
    if source == "demo-diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True, scaled=False).frame
    raise DataError(f"unknown demo source {source!r}; allowed: demo-arrests, demo-diabetes")


def ingest(settings: DataSettings, root: Path) -> pd.DataFrame:
    """The raw frame, from the demo package or the project's DVC-tracked CSV; never empty."""
    if settings.source == "csv":
        return read_frame(root / str(settings.csv_path))
    return require_rows(load_demo(settings.source), f"the {settings.source} data")


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the stages after ingest see it: written to CSV and read back (dtypes change)."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


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


def require_rows(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if len(frame) == 0:
        raise DataError(f"{what} has 0 rows (columns: {listed(frame.columns)})")
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], key: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"{key}: {column!r} is not a column of the data; columns: {listed(frame.columns)}"
            )


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV file with at least one row; anything else is one clear DataError."""
    shown = _shown(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{shown}: not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown} is empty: not even a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise DataError(f"{shown}: not a readable CSV file ({reason})") from None
    except IsADirectoryError:
        raise DataError(f"{shown}: a folder, not a CSV file") from None
    return require_rows(frame, shown)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def features_and_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    require_columns(frame, [target], "data.target")
    return frame.drop(columns=[target]), frame[target]


def listed(values, limit: int = MAX_LISTED) -> str:
    """Names for an error line: the first `limit`, then how many more."""
    names = [str(value) for value in values]
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def _shown(path: Path) -> str:
    # Relative to where the command runs (the project root), as dvc.yaml and params.yaml name it.
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
