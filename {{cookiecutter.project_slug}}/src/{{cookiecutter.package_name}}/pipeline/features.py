"""Which columns reach the model, and how they are encoded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ..data import as_times, iso_dates


class BannedFeatureError(ValueError):
    """A column that must not be a model input (a sensitive feature) reached the model."""


def model_inputs(columns: list[str], target: str, banned: list[str]) -> list[str]:
    """Every column but the target and the banned ones, in their original order."""
    excluded = {target, *banned}
    return [column for column in columns if column not in excluded]


def check_no_banned(inputs: list[str], banned: list[str]) -> None:
    leaked = [column for column in inputs if column in banned]
    if leaked:
        raise BannedFeatureError(
            f"sensitive feature(s) {', '.join(leaked)} would be model inputs; "
            "set data.use_sensitive_features: true in params.yaml to allow it"
        )


def date_columns(frame: pd.DataFrame) -> list[str]:
    return [str(column) for column in frame.columns if iso_dates(frame[column])]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    # pandas 3 reads text as the `str` dtype, not `object`: anything non-numeric but a date is categorical.
    dates = set(date_columns(frame))
    return [
        str(column)
        for column in frame.columns
        if column not in dates
        and (not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]))
    ]


def days_since_epoch(frame: pd.DataFrame) -> np.ndarray:
    """Dates as numbers a model can use: days since 1970-01-01 (NaN for a missing or unreadable one)."""
    frame = pd.DataFrame(frame)
    days = np.empty((len(frame), len(frame.columns)))
    for position, column in enumerate(frame.columns):
        # In seconds: nanoseconds overflow past the year 2262, and a request may send any year.
        seconds = as_times(frame[column]).dt.tz_convert(None).to_numpy(dtype="datetime64[s]")
        days[:, position] = (seconds - np.datetime64(0, "s")) / np.timedelta64(1, "D")
    return days


def build_preprocessor(inputs: pd.DataFrame) -> ColumnTransformer:
    dates = date_columns(inputs)
    categorical = categorical_columns(inputs)
    numeric = [str(column) for column in inputs.columns if column not in categorical and column not in dates]
    # A date is a number of days: a date never seen in training is still before or after the others.
    as_days = FunctionTransformer(days_since_epoch, feature_names_out="one-to-one")
    return ColumnTransformer(
        [
            ("dates", make_pipeline(as_days, SimpleImputer(strategy="median"), StandardScaler()), dates),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ],
        verbose_feature_names_out=False,
    )
