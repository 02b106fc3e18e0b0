"""Ingest the raw data and split it into train and test sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import DataSettings, SplitSettings


def load_demo(source: str) -> pd.DataFrame:
    """Bundled demo data, read from installed packages (no network)."""
    if source == "demo-arrests":
        from sklego.datasets import load_arrests  # slow import: only where needed

        return load_arrests(as_frame=True)
    if source == "demo-diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True, scaled=False).frame
    raise ValueError(f"unknown demo source {source!r}; allowed: demo-arrests, demo-diabetes")


def ingest(settings: DataSettings, root: Path) -> pd.DataFrame:
    """The raw frame, from the demo package or the project's DVC-tracked CSV."""
    if settings.source == "csv":
        return read_frame(root / str(settings.csv_path))
    return load_demo(settings.source)


def split_frame(
    frame: pd.DataFrame,
    split: SplitSettings,
    target: str,
    time_column: str | None,
    stratify: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split: by time when a time column is set, else random (seeded)."""
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
    times = frame[time_column]
    cutoff = times.quantile(1 - test_size, interpolation="higher")
    if cutoff == times.min():
        # One distinct time (or a huge test share) would leave the train set empty.
        cutoff = times[times > times.min()].min()
    if pd.isna(cutoff):
        raise ValueError(f"cannot split by time: {time_column!r} has a single value")
    is_test = times >= cutoff
    return frame[~is_test], frame[is_test]


def read_frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def features_and_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=[target]), frame[target]
