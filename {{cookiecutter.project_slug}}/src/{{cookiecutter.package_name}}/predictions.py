"""The test set's per-row predictions (reports/predictions.csv): written by `evaluate`, read by the gate.

Rows are keyed by a stable id, a hash of the row's values, so the gate can pair a pull
request's predictions with its base's row by row (gate/noise.py). Columns: `row`, `truth`,
`predicted`, and for classification `proba:<class>`: the positive class's only when there
are two classes, each class's when there are more. Small and git-tracked: at most MAX_ROWS
rows, the same sample on every branch (the rows with the smallest ids, which are hashes).

The gate runs the base's code on the pull request's file: the format changes only compatibly.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROBA_PREFIX = "proba:"
MAX_ROWS = 100_000
DIGITS = 6
# Part of every id: a sample taken by id is the same on every branch, and unlike any other hash.
SALT = b"mlgate-row"


class PredictionsError(ValueError):
    """A predictions file that cannot be read."""


@dataclass(frozen=True)
class Rows:
    """One branch's predictions, as arrays in the file's order."""

    ids: np.ndarray  # str
    truth: np.ndarray  # str labels (classification) or floats
    predicted: np.ndarray
    labels: tuple[str, ...]  # the probability columns' classes; () for regression
    proba: np.ndarray  # one column per label; shape (rows, 0) for regression

    @property
    def classification(self) -> bool:
        return bool(self.labels)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, order: np.ndarray) -> Rows:
        return Rows(self.ids[order], self.truth[order], self.predicted[order], self.labels, self.proba[order])


def row_ids(frame: pd.DataFrame) -> pd.Series:
    """A stable id per row: a hash of its values by column name (the order of the columns does
    not matter); a repeated row gets its occurrence appended (`<hash>-2`)."""
    columns = sorted(map(str, frame.columns))
    text = frame.set_axis(list(map(str, frame.columns)), axis=1)[columns].astype(str)
    joined = text.apply(
        lambda row: "\x1f".join(f"{c}={v}" for c, v in zip(columns, row, strict=True)), axis=1
    )
    hashes = joined.map(lambda line: hashlib.blake2b(line.encode(), digest_size=8, key=SALT).hexdigest())
    occurrence = hashes.groupby(hashes).cumcount()
    return hashes.where(occurrence == 0, hashes + "-" + (occurrence + 1).astype(str)).reset_index(drop=True)


def prediction_rows(
    ids: pd.Series,
    truth: pd.Series,
    predicted: np.ndarray,
    proba: np.ndarray | None,
    labels: Sequence[object],
) -> pd.DataFrame:
    """The file's rows, sorted by id and capped at MAX_ROWS. `proba`: one column per label."""
    frame = pd.DataFrame({"row": ids.to_numpy(), "truth": truth.to_numpy(), "predicted": predicted})
    if proba is not None:
        for column, label in enumerate(labels):
            frame[f"{PROBA_PREFIX}{label}"] = np.round(proba[:, column], DIGITS)
    return frame.sort_values("row", kind="stable").head(MAX_ROWS).reset_index(drop=True)


def parse_rows(data: bytes, source: str) -> Rows:
    """A predictions file's content as arrays; PredictionsError names what is wrong."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"row": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise PredictionsError(f"{source}: not a readable CSV file ({type(err).__name__})") from None
    missing = [name for name in ("row", "truth", "predicted") if name not in frame.columns]
    if missing:
        raise PredictionsError(f"{source}: no column {missing[0]!r}")
    if frame["row"].duplicated().any():
        raise PredictionsError(f"{source}: a row id repeats")
    proba_columns = [c for c in frame.columns if c.startswith(PROBA_PREFIX)]
    labels = tuple(c.removeprefix(PROBA_PREFIX) for c in proba_columns)
    try:
        proba = frame[proba_columns].to_numpy(dtype=float)
        if labels:
            truth, predicted = (
                frame["truth"].astype(str).to_numpy(),
                frame["predicted"].astype(str).to_numpy(),
            )
        else:
            truth, predicted = frame["truth"].to_numpy(dtype=float), frame["predicted"].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise PredictionsError(f"{source}: a value is not a number where one is needed") from None
    if not np.isfinite(proba).all() or (not labels and not np.isfinite(predicted).all()):
        raise PredictionsError(f"{source}: a prediction is missing or not finite")
    return Rows(frame["row"].to_numpy(dtype=str), truth, predicted, labels, proba)
