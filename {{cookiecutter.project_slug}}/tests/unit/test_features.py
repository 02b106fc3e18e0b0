"""Which columns reach the model, and how they are encoded."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import skops.io

from {{ cookiecutter.package_name }}.artifacts import MODEL_FILE, load_model
from {{ cookiecutter.package_name }}.pipeline import train as training
from {{ cookiecutter.package_name }}.pipeline.features import (
    BannedFeatureError,
    build_preprocessor,
    categorical_columns,
    check_no_banned,
    date_columns,
    model_inputs,
)

pytestmark = pytest.mark.unit


def test_model_inputs_drop_target_and_banned_and_keep_order() -> None:
    columns = ["age", "label", "sex", "income", "region"]
    assert model_inputs(columns, target="label", banned=["sex", "region"]) == ["age", "income"]


def test_project_model_inputs_exclude_target_and_sensitive_features(settings, raw: pd.DataFrame) -> None:
    inputs = model_inputs(list(raw.columns), settings.data.target, settings.data.banned_features)
    assert inputs, "no column is left to train on"
    assert settings.data.target not in inputs
    assert not set(inputs) & set(settings.data.banned_features)
    assert set(inputs) == set(raw.columns) - {settings.data.target, *settings.data.banned_features}


def test_check_no_banned_names_the_leaked_feature() -> None:
    with pytest.raises(BannedFeatureError, match="sex"):
        check_no_banned(["age", "sex"], banned=["sex"])
    check_no_banned(["age", "income"], banned=["sex"])  # nothing banned: no error


def banned_for_test(settings, frame: pd.DataFrame) -> str:
    """A sensitive feature of the project, or (when it has none) any input column standing in for one."""
    candidates = [c for c in settings.data.sensitive_features if c in frame.columns]
    return (candidates or [c for c in frame.columns if c != settings.data.target])[0]


def settings_banning(settings, column: str, allowed: bool = False):
    data = settings.data.model_copy(
        update={"sensitive_features": [column], "use_sensitive_features": allowed}
    )
    return settings.model_copy(update={"data": data})


def small_batch(settings, frame: pd.DataFrame, rows: int = 60) -> pd.DataFrame:
    if settings.task == "classification":
        per_class = rows // frame[settings.data.target].nunique()
        return frame.groupby(settings.data.target, group_keys=False).head(per_class)
    return frame.head(rows)


def test_fitted_model_gets_no_sensitive_feature(settings, model) -> None:
    inputs = list(model.feature_names_in_)
    assert settings.data.target not in inputs
    assert not set(inputs) & set(settings.data.banned_features), (
        f"banned features reached the model: {inputs}"
    )


def test_fit_keeps_a_banned_column_out_of_the_model(settings, train_set: pd.DataFrame) -> None:
    column = banned_for_test(settings, train_set)
    batch = small_batch(settings, train_set)
    banned = training.fit(batch, settings_banning(settings, column, allowed=False))
    allowed = training.fit(batch, settings_banning(settings, column, allowed=True))
    assert column not in banned.feature_names_in_
    assert column in allowed.feature_names_in_  # the setting, not luck, keeps it out


def test_fit_refuses_when_a_banned_feature_would_reach_the_model(
    settings, train_set: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    column = banned_for_test(settings, train_set)

    def every_column(columns: list[str], target: str, banned: list[str]) -> list[str]:
        return [c for c in columns if c != target]  # a selection bug that lets banned columns through

    monkeypatch.setattr(training, "model_inputs", every_column)
    with pytest.raises(BannedFeatureError, match=column):
        training.fit(small_batch(settings, train_set), settings_banning(settings, column))


def test_categorical_columns_by_dtype_kind() -> None:
    frame = pd.DataFrame(
        {
            "count": pd.Series([1, 2, 3], dtype="int64"),
            "ratio": pd.Series([0.1, 0.2, np.nan], dtype="float64"),
            "nullable_count": pd.Series([1, None, 3], dtype="Int64"),
            "flag": pd.Series([True, False, True], dtype="bool"),
            "object_text": pd.Series(["a", "b", "a"], dtype="object"),
            "str_text": pd.Series(["a", "b", None], dtype="str"),  # pandas 3 reads text as `str`
            "string_text": pd.Series(["a", None, "c"], dtype="string"),
            "category": pd.Series(["x", "y", "x"], dtype="category"),
        }
    )
    assert categorical_columns(frame) == [
        "flag",
        "object_text",
        "str_text",
        "string_text",
        "category",
    ]


def test_text_read_from_csv_is_categorical() -> None:
    frame = pd.read_csv(io.StringIO("colour,age,score\nred,31,0.5\nblue,42,\n,19,0.25\n"))
    assert categorical_columns(frame) == ["colour"]


def test_contract_categories_are_categorical_in_the_raw_data(contract, raw: pd.DataFrame) -> None:
    text_columns = [name for name, rule in contract.columns.items() if rule.type in ("category", "text")]
    detected = categorical_columns(raw)
    assert set(text_columns) <= set(detected), f"treated as numbers: {set(text_columns) - set(detected)}"


GAPS_TRAIN = pd.DataFrame({"colour": ["red", "blue", None, "red"], "age": [30.0, np.nan, 50.0, 40.0]})
GAPS_LATER = pd.DataFrame({"colour": ["green", None], "age": [np.nan, 1000.0]})


def imputation_problems(encoded: np.ndarray) -> list[str]:
    """GAPS_LATER encoded after fitting on GAPS_TRAIN: a missing age is the median (40, which
    scales to 0), a missing colour the most frequent (red), an unseen one no colour at all."""
    problems = []
    if encoded[0, 2] != 0.0:
        problems.append(f"a missing age encodes as {encoded[0, 2]:g}, not as the median (0 once scaled)")
    if encoded[1, :2].tolist() != [0.0, 1.0]:
        problems.append(f"a missing colour encodes as {encoded[1, :2].tolist()}, not as red")
    if encoded[0, :2].tolist() != [0.0, 0.0]:
        problems.append(f"an unseen colour encodes as {encoded[0, :2].tolist()}")
    return problems


def test_preprocessor_handles_missing_values_and_unseen_categories() -> None:
    encoder = build_preprocessor(GAPS_TRAIN).fit(GAPS_TRAIN)
    encoded = encoder.transform(GAPS_LATER)
    assert encoded.shape == (2, 3)  # two colours one-hot plus the scaled age
    assert np.isfinite(encoded).all()
    assert list(encoder.get_feature_names_out()) == ["colour_blue", "colour_red", "age"]
    assert imputation_problems(encoded) == []


def test_the_imputation_check_catches_a_constant_fill() -> None:
    from sklearn.impute import SimpleImputer

    encoder = build_preprocessor(GAPS_TRAIN)
    numeric = encoder.transformers[-1][1]
    numeric.steps[0] = ("simpleimputer", SimpleImputer(strategy="constant", fill_value=-999))
    encoded = encoder.fit(GAPS_TRAIN).transform(GAPS_LATER)
    assert np.isfinite(encoded).all(), "shape and finiteness alone would pass it"
    assert [problem.split(" encodes")[0] for problem in imputation_problems(encoded)] == ["a missing age"]


def test_iso_dates_are_days_not_categories() -> None:
    """A date column (ISO text, as most exports write it) becomes one number: days since 1970."""
    csv = "signed_up,plan,score\n2024-01-01,basic,0.5\n2024-01-11T12:00:00,pro,\n,basic,0.25\n"
    frame = pd.read_csv(io.StringIO(csv))
    assert date_columns(frame) == ["signed_up"]
    assert categorical_columns(frame) == ["plan"]
    encoder = build_preprocessor(frame).fit(frame)
    assert list(encoder.get_feature_names_out()) == ["signed_up", "plan_basic", "plan_pro", "score"]
    later = pd.DataFrame(
        {"signed_up": ["2030-06-01", "not a date", None], "plan": ["pro"] * 3, "score": [0.1] * 3}
    )
    encoded = encoder.transform(later)
    assert np.isfinite(encoded).all(), "an unreadable or missing date is imputed"
    assert encoded[0, 0] > encoded[1, 0], "a later date is a larger number"


def test_a_model_with_a_date_input_trains_saves_and_loads(settings, train_set, tmp_path) -> None:
    days = pd.to_timedelta(pd.Series(np.arange(len(train_set)) % 700, index=train_set.index), unit="D")
    dated = train_set.assign(signed_up=(pd.Timestamp("2022-01-01") + days).astype(str))
    model = training.fit(dated, settings)
    assert "signed_up" in model.feature_names_in_
    # The model file as save_model writes it (the MLflow model around it is tested by the serving
    # and registry tests): skops must trust the date transform of this package when it loads.
    skops.io.dump(model, tmp_path / MODEL_FILE)
    loaded = load_model(tmp_path)
    rows = dated.drop(columns=[settings.data.target]).head(5)
    assert (loaded.predict(rows) == model.predict(rows)).all()
