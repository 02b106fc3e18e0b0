"""serving/explain.py on small pipelines built like train's: the contributions add up to the model's own raw
score (exact for linear models, SHAP for trees), and contributions that do not are refused."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.decision import BalancedDecision
from {{ cookiecutter.package_name }}.pipeline.features import build_preprocessor
from {{ cookiecutter.package_name }}.serving.explain import (
    ExplainError,
    Explanation,
    additivity_gaps,
    check_additive,
    explain,
    linear_contributions,
    parse_row,
    render_text,
)

pytestmark = pytest.mark.unit

ROWS = 120


def frame(seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, a category with a gap, a date: every branch of the preprocessor."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "age": rng.normal(40, 10, ROWS),
            "visits": rng.integers(0, 9, ROWS).astype(float),
            "region": rng.choice(["north", "south", "east"], ROWS),
            "joined": pd.date_range("2020-01-01", periods=ROWS, freq="7D").strftime("%Y-%m-%d"),
        }
    )
    data.loc[::7, "age"] = np.nan
    data.loc[::11, "region"] = None
    return data


def targets(data: pd.DataFrame, task: str) -> np.ndarray:
    score = data["age"].fillna(40) / 10 + data["visits"] + (data["region"] == "north") * 2
    if task == "regression":
        return score.to_numpy()
    if task == "three classes":
        return np.select([score < 6, score < 9], ["low", "mid"], "high")
    return np.where(score > 8, "yes", "no")


def fitted(estimator, task: str) -> Pipeline:
    data = frame()
    return Pipeline([("features", build_preprocessor(data)), ("model", estimator)]).fit(
        data, targets(data, task)
    )


ROW = {"age": None, "visits": 3.0, "region": "north", "joined": "2021-06-01"}  # a gap: imputed


@pytest.mark.parametrize(
    ("estimator", "task"),
    [
        (BalancedDecision(LogisticRegression()), "two classes"),
        (LogisticRegression(), "three classes"),
        (Ridge(alpha=1.0), "regression"),
    ],
    ids=["logistic-balanced", "logistic-3-classes", "ridge"],
)
def test_linear_contributions_add_up_to_the_decision_function(estimator, task) -> None:
    pipeline = fitted(estimator, task)
    explanation = explain(pipeline, ROW)
    assert explanation.method == "linear"
    encoded = pipeline[:-1].transform(pd.DataFrame([{**ROW, "age": np.nan}]))
    inner = pipeline[-1].estimator_ if hasattr(pipeline[-1], "estimator_") else pipeline[-1]
    raw = inner.decision_function(encoded) if task != "regression" else pipeline.predict(pd.DataFrame([ROW]))
    expected = np.atleast_1d(np.ravel(raw))
    # base + contributions, by encoded feature and by input column: the raw score to 1e-9
    for output, value in zip(explanation.raw, expected, strict=True):
        by_feature = explanation.base[output] + math.fsum(p[output] for p in explanation.by_feature.values())
        by_input = explanation.base[output] + math.fsum(p[output] for p in explanation.by_input().values())
        assert by_feature == pytest.approx(value, rel=1e-9, abs=1e-9)
        assert by_input == pytest.approx(value, rel=1e-9, abs=1e-9)
    # one-hot features are grouped back to their column; every input is listed
    assert set(explanation.by_input()) == {"age", "visits", "region", "joined"}
    assert {explanation.columns[name] for name in explanation.by_feature if name.startswith("region_")} == {
        "region"
    }
    if task == "two classes":  # the logit is the second class's: it gives the probability
        assert 1 / (1 + math.exp(-explanation.raw["yes"])) == pytest.approx(explanation.probabilities["yes"])
        assert explanation.decision.startswith("balanced")
    assert explanation.prediction == pipeline.predict(pd.DataFrame([ROW]))[0]


@pytest.mark.model  # shap is slow to import (seconds): one import, for these three
@pytest.mark.parametrize(
    ("estimator", "task"),
    [
        (RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), "three classes"),
        (HistGradientBoostingClassifier(max_iter=15, random_state=0), "two classes"),
        (RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0), "regression"),
    ],
    ids=["forest-3-classes", "boosting-2-classes", "forest-regression"],
)
def test_shap_contributions_add_up_to_the_tree_models_raw_output(estimator, task) -> None:
    pipeline = fitted(estimator, task)
    explanation = explain(pipeline, ROW)
    assert explanation.method == "shap"
    encoded = pipeline[:-1].transform(pd.DataFrame([{**ROW, "age": np.nan}]))
    if task == "regression":
        expected = pipeline[-1].predict(encoded)
    elif isinstance(estimator, RandomForestClassifier):
        expected = pipeline[-1].predict_proba(encoded)[0]  # a forest's score: the class probabilities
    else:
        expected = pipeline[-1].decision_function(encoded)  # boosting's: the log-odds
    assert list(explanation.raw.values()) == pytest.approx(list(np.ravel(expected)), rel=1e-9)
    assert max(additivity_gaps(explanation).values()) < 1e-6
    assert "SHAP" in render_text(explanation)


@pytest.fixture(scope="module")
def logistic() -> tuple[Pipeline, Explanation]:
    pipeline = fitted(LogisticRegression(), "three classes")
    return pipeline, explain(pipeline, ROW)


def test_a_contribution_with_the_wrong_sign_is_refused(logistic) -> None:
    _, explanation = logistic
    feature = max(explanation.by_feature, key=lambda name: abs(explanation.by_feature[name]["high"]))
    flipped = {**explanation.by_feature, feature: {k: -v for k, v in explanation.by_feature[feature].items()}}
    with pytest.raises(ExplainError, match="do not add up to the model's logit"):
        check_additive(dataclasses.replace(explanation, by_feature=flipped))


def test_contributions_of_the_wrong_step_are_refused(logistic) -> None:
    # coefficient x the imputed value before scaling: the step before the one the model sees
    pipeline, explanation = logistic
    steps = {step.name: step.values for step in explanation.steps}
    unscaled = {**steps["features"], **steps["features/numeric/simpleimputer"]}
    _, parts = linear_contributions(
        pipeline[-1], np.array([unscaled[name] for name in explanation.by_feature])
    )
    wrong = {
        name: dict(zip(explanation.raw, parts[:, i], strict=True))
        for i, name in enumerate(explanation.by_feature)
    }
    with pytest.raises(ExplainError, match="do not add up"):
        check_additive(dataclasses.replace(explanation, by_feature=wrong))


def test_the_steps_show_the_gap_imputed_and_the_features_the_model_sees(logistic) -> None:
    _, explanation = logistic
    names = [step.name for step in explanation.steps]
    assert names[0] == "input" and "features" in names and names[-1] == "probabilities"
    assert explanation.steps[0].values["age"] is None
    imputed = next(step for step in explanation.steps if step.name == "features/numeric/simpleimputer")
    assert imputed.values["age"] == pytest.approx(frame()["age"].median())
    assert sum(explanation.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "is not JSON"), ("[1, 2]", "must be one JSON object"), ('"x"', "must be one JSON object")],
)
def test_a_row_that_is_not_one_json_object_is_refused_in_one_line(text, message) -> None:
    with pytest.raises(ExplainError, match=message) as caught:
        parse_row(text)
    assert "\n" not in str(caught.value)
