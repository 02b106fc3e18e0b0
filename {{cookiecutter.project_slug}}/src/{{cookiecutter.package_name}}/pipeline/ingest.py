"""The `ingest` stage: the raw table, from the bundled demo data or the project's DVC-tracked CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config.data import DataSettings
from ..config.reading import Sections
from ..data import DataError, feedback_part, read_frame, require_rows, write_frame
from ..paths import Paths
from .stage import relative, run_stage


class StageSettings(Sections):
    """The sections of params.yaml that ingest reads."""

    data: DataSettings


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


def with_feedback(frame: pd.DataFrame, feedback: pd.DataFrame | None) -> pd.DataFrame:
    """The source rows, then the labelled served rows in the source's columns."""
    if feedback is None or feedback.empty:
        return frame
    return pd.concat([frame, feedback.reindex(columns=frame.columns)], ignore_index=True)


def run(settings: StageSettings, paths: Paths) -> None:
    frame = ingest(settings.data, paths.root)
    added = feedback_part(paths.feedback) if settings.data.include_feedback else None
    frame = with_feedback(frame, added)
    write_frame(frame, paths.raw)
    extra = f" ({len(added)} from {relative(paths.feedback, paths)})" if added is not None else ""
    print(f"ingest: {len(frame)} rows{extra}, {len(frame.columns)} columns -> {relative(paths.raw, paths)}")


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
