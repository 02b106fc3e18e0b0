"""Which columns reach the model, and how they are encoded."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


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


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    # pandas 3 reads text as the `str` dtype, not `object`: anything non-numeric is categorical.
    return [
        str(column)
        for column in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column])
    ]


def build_preprocessor(inputs: pd.DataFrame) -> ColumnTransformer:
    categorical = categorical_columns(inputs)
    numeric = [str(column) for column in inputs.columns if column not in categorical]
    return ColumnTransformer(
        [
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
