"""How params.yaml's train.model maps to the estimator: every key, at values other than the
defaults (regularization 1.0 hides C=regularization, which should be 1/regularization)."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package_name }}.config.train import GradientBoostingModel, LinearModel, RandomForestModel
from {{ cookiecutter.package_name }}.pipeline.train import build_estimator

pytestmark = pytest.mark.unit

SEED = 7
MODELS = {
    "linear": LinearModel(kind="linear", regularization=4.0, max_iter=321),
    "random_forest": RandomForestModel(
        kind="random_forest", n_estimators=17, max_depth=5, min_samples_leaf=3
    ),
    "gradient_boosting": GradientBoostingModel(
        kind="gradient_boosting", max_iter=23, learning_rate=0.07, max_leaf_nodes=9
    ),
}


def expected_params(task: str, model) -> dict[str, object]:
    """What the estimator must be given, written out from params.yaml's meaning."""
    if model.kind == "linear":
        if task == "classification":
            return {"C": 1 / model.regularization, "max_iter": model.max_iter}  # regularization is 1/C
        return {"alpha": model.regularization}
    if model.kind == "random_forest":
        return {
            "n_estimators": model.n_estimators,
            "max_depth": model.max_depth,
            "min_samples_leaf": model.min_samples_leaf,
            "random_state": SEED,
        }
    return {
        "max_iter": model.max_iter,
        "learning_rate": model.learning_rate,
        "max_leaf_nodes": model.max_leaf_nodes,
        "random_state": SEED,
    }


def mapping_problems(estimator, expected: dict[str, object]) -> list[str]:
    given = estimator.get_params()
    return [
        f"{key}: {given.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if given.get(key) != value
    ]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_every_model_param_reaches_the_estimator_as_it_means(task, kind):
    model = MODELS[kind]
    assert mapping_problems(build_estimator(task, model, SEED), expected_params(task, model)) == []


def test_the_check_catches_regularization_given_as_c():
    """The fault that passed every other test: C=regularization instead of 1/regularization."""
    model = MODELS["linear"]
    wrong = LogisticRegression(C=model.regularization, max_iter=model.max_iter)
    assert mapping_problems(wrong, expected_params("classification", model)) == ["C: 4.0, expected 0.25"]
