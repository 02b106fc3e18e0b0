"""Model behaviour: reproducible, learns from a small batch, ignores sensitive features, valid outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from {{ cookiecutter.package_name }}.data import features_and_target
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs
from {{ cookiecutter.package_name }}.pipeline.train import build_pipeline, fit

pytestmark = pytest.mark.model

# Small, yet enough for every model kind: HistGradientBoosting needs 20 rows per leaf.
BATCH_ROWS = 100


def assert_same_answers(first, second, features: pd.DataFrame, output) -> None:
    np.testing.assert_array_equal(first.predict(features), second.predict(features))
    np.testing.assert_array_equal(output(first, features), output(second, features))


def test_same_seed_gives_identical_predictions(model, settings, train_set, test_set, output) -> None:
    again = fit(train_set, settings)
    features, _ = features_and_target(test_set, settings.data.target)
    assert_same_answers(again, model, features, output)


def test_the_reproducibility_check_catches_a_model_left_unseeded(
    settings, train_set, test_set, output, monkeypatch
) -> None:
    """The fault: an estimator whose randomness the seed does not reach (a forest without its
    random_state). Two trainings then answer differently, and the check above says so."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from {{ cookiecutter.package_name }}.pipeline import train

    kind = RandomForestClassifier if settings.task == "classification" else RandomForestRegressor
    monkeypatch.setattr(train, "build_estimator", lambda *_: kind(n_estimators=5, max_features=0.5))
    features, _ = features_and_target(test_set, settings.data.target)
    with pytest.raises(AssertionError):
        assert_same_answers(fit(train_set, settings), fit(train_set, settings), features, output)


def small_batch(settings, frame: pd.DataFrame) -> pd.DataFrame:
    """BATCH_ROWS rows; for classification, the same number from each class."""
    target = settings.data.target
    if settings.task == "classification":
        per_class = BATCH_ROWS // frame[target].nunique()
        return frame.groupby(target, group_keys=False).sample(n=per_class, random_state=settings.train.seed)
    return frame.sample(n=BATCH_ROWS, random_state=settings.train.seed)


# Answers unrelated to the truth pass the small-batch check by chance this rarely (one-sided).
SIGNIFICANCE = 0.001


def unlearned(model, features: pd.DataFrame, truth: pd.Series, task: str) -> str | None:
    """None when the model's answers are related to the truth beyond chance and by a margin:
    some class's probability ranks its rows first (AUC 0.55 or more), or the predicted values
    rank with the true ones (Spearman 0.1 or more); else why not."""
    from scipy import stats

    truth_values = np.asarray(truth)
    if task == "regression":
        rho, p = stats.spearmanr(model.predict(features), truth_values, alternative="greater")
        return None if p < SIGNIFICANCE and rho >= 0.1 else f"rank correlation {rho:.3f} (p = {p:.2g})"
    proba, seen = model.predict_proba(features), []
    for column, label in enumerate(model.classes_):
        mine = truth_values == label
        if mine.all() or not mine.any():
            continue
        u, p = stats.mannwhitneyu(proba[mine, column], proba[~mine, column], alternative="greater")
        auc = u / (mine.sum() * (~mine).sum())
        if p < SIGNIFICANCE and auc >= 0.55:
            return None
        seen.append(f"{label}: AUC {auc:.3f} (p = {p:.2g})")
    return "no class is told apart beyond chance: " + ", ".join(seen)


def small_batch_model(settings, train_set: pd.DataFrame):
    """The model pipeline, not yet fitted, and the small batch's inputs and labels."""
    batch = small_batch(settings, train_set)
    features, labels = features_and_target(batch, settings.data.target)
    inputs = model_inputs(list(batch.columns), settings.data.target, settings.data.banned_features)
    return build_pipeline(features[inputs], settings), features[inputs], labels


def test_training_on_a_small_batch_learns(settings, train_set, test_set, output) -> None:
    pipeline, features, labels = small_batch_model(settings, train_set)
    test_x, test_y = features_and_target(test_set, settings.data.target)
    with pytest.raises(NotFittedError):
        pipeline.predict(test_x[features.columns])

    pipeline.fit(features, labels)

    check_is_fitted(pipeline)
    outputs = output(pipeline, test_x)
    assert len(outputs) == len(test_x)
    assert np.isfinite(outputs).all()
    problem = unlearned(pipeline, test_x[features.columns], test_y, settings.task)
    assert problem is None, f"{BATCH_ROWS} rows taught the model nothing about the test set: {problem}"


def test_the_small_batch_check_catches_answers_unrelated_to_the_truth(settings, train_set, test_set) -> None:
    # The test labels in shuffled order: what a model scores whose answers are unrelated to the
    # truth (rows misaligned with their labels). Not a model fitted to shuffled labels: with few
    # inputs, such a fit can land on a direction that ranks well by luck (measured on the demo
    # data: ROC AUC 0.66 from 100 shuffled rows), and then it did learn something real.
    pipeline, features, labels = small_batch_model(settings, train_set)
    pipeline.fit(features, labels)
    test_x, test_y = features_and_target(test_set, settings.data.target)
    shuffled = pd.Series(np.random.default_rng(settings.train.seed).permutation(test_y.to_numpy()))
    assert unlearned(pipeline, test_x[features.columns], shuffled, settings.task) is not None


def test_predictions_are_valid(model, settings, train_set, test_set) -> None:
    features, _ = features_and_target(test_set, settings.data.target)
    predictions = model.predict(features)
    assert len(predictions) == len(features)
    if settings.task == "regression":
        assert np.isfinite(predictions.astype(float)).all()
        return
    assert set(predictions) <= set(train_set[settings.data.target])
    proba = model.predict_proba(features)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def another_value(series: pd.Series) -> pd.Series:
    """Each value replaced by a different value seen in the column (the next in sort order)."""
    seen = sorted(series.dropna().unique())
    following = dict(zip(seen, [*seen[1:], seen[0]], strict=True))
    return series.map(following)


def test_sensitive_features_do_not_change_the_prediction(model, settings, test_set, output) -> None:
    features, _ = features_and_target(test_set, settings.data.target)
    banned = [f for f in settings.data.banned_features if f in features.columns and features[f].nunique() > 1]
    if not banned:
        pytest.skip("no sensitive feature is kept out of the model (data.sensitive_features)")
    before = output(model, features)
    for feature in banned:
        changed = features.assign(**{feature: another_value(features[feature])})
        assert (changed[feature] != features[feature]).all()
        np.testing.assert_array_equal(output(model, changed), before, err_msg=feature)
