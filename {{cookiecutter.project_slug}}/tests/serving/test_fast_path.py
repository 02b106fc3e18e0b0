"""The compiled fast path answers exactly as the pipeline does, for every model kind;
the check at load time catches one that does not, and the server then uses the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from {{ cookiecutter.package_name }}.config.train import GradientBoostingModel, LinearModel, RandomForestModel
from {{ cookiecutter.package_name }}.pipeline.train import fit
from {{ cookiecutter.package_name }}.serving import requests, sources
from {{ cookiecutter.package_name }}.serving.fast_path import compile_fast_path, fast_path_agrees, slow_predict
from {{ cookiecutter.package_name }}.serving.sources import serve_model

pytestmark = pytest.mark.serving

KINDS = {
    "linear": LinearModel(kind="linear", regularization=1.0),
    "random_forest": RandomForestModel(kind="random_forest", n_estimators=25, max_depth=6),
    "gradient_boosting": GradientBoostingModel(kind="gradient_boosting", max_iter=25, learning_rate=0.1),
}


@pytest.fixture(scope="module", params=list(KINDS))
def kind_model(request, settings, train_set):
    train = settings.train.model_copy(update={"model": KINDS[request.param]})
    return fit(train_set, settings.model_copy(update={"train": train}))


def json_rows(frame, inputs) -> list[dict]:
    return json.loads(frame[list(inputs)].to_json(orient="records"))


def assert_same(got: tuple, expected: tuple) -> None:
    predictions, probabilities = got
    if expected[1] is None:
        assert probabilities is None
        np.testing.assert_allclose(predictions, expected[0], rtol=1e-9)
    else:
        assert predictions == expected[0]
        np.testing.assert_allclose(probabilities, expected[1], rtol=1e-9, atol=1e-12)


def test_every_model_kind_gets_a_fast_path_that_matches_the_pipeline(kind_model, contract, test_set):
    served = serve_model(kind_model, contract, "v")
    assert served.info["fast_path"] == "yes"
    rows = json_rows(test_set, served.inputs)
    assert_same(served.predict(rows), slow_predict(kind_model, list(served.inputs), rows))
    one = rows[:1]
    assert_same(served.predict(one), slow_predict(kind_model, list(served.inputs), one))


def test_fast_path_fills_gaps_as_the_imputers_do(kind_model, test_set):
    fast = compile_fast_path(kind_model)
    inputs = [str(name) for name in kind_model.feature_names_in_]
    rows = json_rows(test_set.head(len(inputs)), inputs)
    for index, row in enumerate(rows):
        row[inputs[index]] = None  # one gap per row, in each column in turn
    assert_same(fast(rows), slow_predict(kind_model, inputs, rows))


def test_the_check_catches_a_fast_path_that_disagrees(model, shuffled_model, contract, served):
    rows = requests.contract_rows(contract, list(served.inputs), sources.CHECK_ROWS)
    assert fast_path_agrees(compile_fast_path(model), model, rows)
    # Compiled from another fit: same shape, other numbers. The check must see it.
    assert not fast_path_agrees(compile_fast_path(shuffled_model), model, rows)

    def broken(batch):
        raise ValueError("boom")

    assert not fast_path_agrees(broken, model, rows)


def test_a_fast_path_that_disagrees_is_not_used(model, shuffled_model, contract, monkeypatch, rows):
    monkeypatch.setattr(sources, "compile_fast_path", lambda pipeline: compile_fast_path(shuffled_model))
    served = serve_model(model, contract, "checked")
    assert served.info["fast_path"] == "no"
    assert_same(served.predict(rows), slow_predict(model, list(served.inputs), rows))


def test_an_unknown_step_falls_back_to_the_pipeline(model, contract, settings, train_set, rows, app_for):
    features, target = train_set.drop(columns=[settings.data.target]), train_set[settings.data.target]
    inputs = list(model.feature_names_in_)
    numeric = [name for name in inputs if pd.api.types.is_numeric_dtype(train_set[name])]
    if not numeric:
        pytest.skip("no numeric model input to scale")
    estimator = clone(model.steps[-1][1])
    other = Pipeline([("impute", SimpleImputer()), ("scale", MinMaxScaler()), ("model", estimator)])
    other.fit(features[numeric], target)
    assert compile_fast_path(other) is None
    served = serve_model(other, contract, "slow")
    assert served.info["fast_path"] == "no"
    row = {name: rows[0][name] for name in numeric}
    with TestClient(app_for(served)) as client:
        answer = client.post("/predict", json=row)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(other.predict(pd.DataFrame([row])).tolist())


def test_a_model_without_categorical_inputs_gets_a_fast_path(settings, train_set, test_set):
    numeric = [
        str(name)
        for name in train_set.columns
        if name != settings.data.target
        and name not in settings.data.banned_features
        and pd.api.types.is_numeric_dtype(train_set[name])
    ]
    if not numeric:
        pytest.skip("no numeric model input")
    only_numbers = fit(train_set[[*numeric, settings.data.target]], settings)  # an empty categorical block
    fast = compile_fast_path(only_numbers)
    assert fast is not None
    rows = json_rows(test_set, numeric)
    assert_same(fast(rows), slow_predict(only_numbers, numeric, rows))


def with_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a date input (ISO text) added: days that step through two years."""
    days = pd.to_timedelta(pd.Series(np.arange(len(frame)) % 730, index=frame.index), unit="D")
    return frame.assign(signed_up=(pd.Timestamp("2022-01-01") + days).dt.strftime("%Y-%m-%d"))


def test_a_model_with_a_date_input_gets_a_fast_path_that_reads_dates_as_the_pipeline(
    settings, train_set, test_set
):
    dated = fit(with_dates(train_set), settings)
    fast = compile_fast_path(dated)
    assert fast is not None, "a date input left the model without a fast path"
    inputs = [str(name) for name in dated.feature_names_in_]
    rows = json_rows(with_dates(test_set), inputs)
    rows[0]["signed_up"], rows[1]["signed_up"], rows[2]["signed_up"] = None, "3287-02-15", "2024-02-30"
    assert_same(fast(rows), slow_predict(dated, inputs, rows))
