"""Tables on disk: read and write the CSV files the stages share, and name what is missing in them."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

MAX_LISTED = 12  # columns or values named in one error line
ROW_ID = ("request_id", "row")  # columns of the feedback partition that say which served row it was


class DataError(ValueError):
    """The data cannot be read, or does not have what the settings name (a column, rows)."""


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the stages after ingest see it: written to CSV and read back (dtypes change)."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


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


def feedback_part(path: Path) -> pd.DataFrame | None:
    """The feedback partition (`feedback export`) as training rows, ids left out; None without one."""
    if not path.exists():
        return None
    return read_frame(path).drop(columns=list(ROW_ID), errors="ignore")


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


def iso_dates(series: pd.Series) -> bool:
    """Text whose every value is an ISO 8601 date or date and time (2024-05-31, 2024-05-31T08:00)."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.dropna()
    return bool(len(values)) and bool(as_times(values).notna().all())


def as_times(values: pd.Series) -> pd.Series:
    """ISO 8601 text as UTC times: NaT where a value is missing or not a date."""
    return pd.to_datetime(values.astype(object), format="ISO8601", errors="coerce", utc=True)


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
