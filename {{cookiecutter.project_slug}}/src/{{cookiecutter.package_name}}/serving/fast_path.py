"""The fitted pipeline compiled to a few numpy operations, for the model server's hot path.

scikit-learn's `predict` on one row spends most of its time in pandas and in its
per-call checks. For the pipelines the train stage builds (the ColumnTransformer
of features.py, then a linear model, a random forest or gradient boosting) the
same arithmetic is done here directly on the request rows. `compile_fast_path`
returns None for any step of another kind; the server then calls the pipeline
(`slow_predict`), and it compares the two at every load (`fast_path_agrees`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def rows_frame(inputs: list[str], rows: list[dict]):
    import pandas as pd

    # None -> NaN: the imputers treat NaN as missing, not None.
    return pd.DataFrame({name: [_nan_if_none(row[name]) for row in rows] for name in inputs})


def _nan_if_none(value: object) -> object:
    return float("nan") if value is None else value


def slow_predict(pipeline: Any, inputs: list[str], rows: list[dict]) -> tuple[list, list | None]:
    """The pipeline itself, on a DataFrame: always right, a few milliseconds per call."""
    from sklearn.base import is_classifier

    frame = rows_frame(inputs, rows)
    predictions = pipeline.predict(frame).tolist()
    if is_classifier(pipeline):
        return predictions, pipeline.predict_proba(frame).tolist()
    return predictions, None


def fast_path_agrees(fast: Callable, pipeline: Any, rows: list[dict]) -> bool:
    try:
        predictions, probabilities = fast(rows)
    except Exception:  # any failure of the compiled path means: do not use it
        logger.exception("the compiled fast path failed on rows drawn from the contract")
        return False
    expected, expected_proba = slow_predict(pipeline, [str(n) for n in pipeline.feature_names_in_], rows)
    if probabilities is not None or expected_proba is not None:
        if probabilities is None or expected_proba is None:
            return False
        if not np.allclose(probabilities, expected_proba, rtol=1e-9, atol=1e-12):
            return False
        return predictions == expected
    return bool(np.allclose(predictions, expected, rtol=1e-9, atol=1e-9))


def compile_fast_path(pipeline: Any) -> Callable[[list[dict]], tuple[list, list | None]] | None:
    """The fitted pipeline as plain numpy operations, or None when a step is of a kind not covered."""
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    try:
        features = _compile_features(pipeline.steps[0][1])
        estimator = _compile_estimator(pipeline.steps[-1][1], is_classifier(pipeline))
    except (AttributeError, TypeError, ValueError):  # a fitted attribute of another shape or name
        logger.exception("could not compile the pipeline: serving with the pipeline")
        return None
    if features is None or estimator is None:
        return None

    classifier = is_classifier(pipeline)

    def predict(rows: list[dict]) -> tuple[list, list | None]:
        if not rows:  # numpy cannot tell the width of no rows
            return [], [] if classifier else None
        return estimator(features(rows))

    return predict


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _compile_features(preprocessor: Any) -> Callable[[list[dict]], np.ndarray] | None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if type(preprocessor) is not ColumnTransformer or getattr(preprocessor, "sparse_output_", False):
        return None
    blocks = []
    for _, transformer, columns in preprocessor.transformers_:
        if len(columns) == 0 or (isinstance(transformer, str) and transformer == "drop"):
            continue  # what the ColumnTransformer skips too (an empty selection is not even fitted)
        if isinstance(transformer, str):
            return None  # passthrough: not covered
        if not all(isinstance(column, str) for column in columns):
            return None
        steps = [step for _, step in transformer.steps] if type(transformer) is Pipeline else [transformer]
        block = _compile_block(steps, list(columns))
        if block is None:
            return None
        blocks.append(block)
    if not blocks:
        return None

    def features(rows: list[dict]) -> np.ndarray:
        return np.hstack([block(rows) for block in blocks]) if len(blocks) > 1 else blocks[0](rows)

    return features


def _compile_block(steps: list, columns: list[str]) -> Callable[[list[dict]], np.ndarray] | None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from ..pipeline.features import days_since_epoch

    read = None
    if steps and type(steps[0]) is FunctionTransformer:
        if steps[0].func is not days_since_epoch or steps[0].kw_args:
            return None
        read, steps = _as_days(columns, days_since_epoch), steps[1:]
    fills: list = [None] * len(columns)
    if steps and type(steps[0]) is SimpleImputer:
        imputer, steps = steps[0], steps[1:]
        fills = list(imputer.statistics_)
        if imputer.add_indicator or not _is_missing(imputer.missing_values) or any(map(_is_missing, fills)):
            return None  # an indicator, another missing marker, or a column the imputer drops
    if read is None and len(steps) == 1 and type(steps[0]) is OneHotEncoder:
        return _one_hot(steps[0], columns, fills)
    if not steps or (len(steps) == 1 and type(steps[0]) is StandardScaler):
        return _scaled(steps[0] if steps else None, columns, fills, read)
    return None


def _as_days(
    columns: list[str], days_since_epoch: Callable[[Any], np.ndarray]
) -> Callable[[list[dict]], np.ndarray]:
    """Date inputs as the pipeline reads them: the same function, on the same text."""
    import pandas as pd

    def read(rows: list[dict]) -> np.ndarray:
        return days_since_epoch(pd.DataFrame({name: [row[name] for row in rows] for name in columns}))

    return read


def _one_hot(encoder: Any, columns: list[str], fills: list) -> Callable[[list[dict]], np.ndarray] | None:
    if (
        encoder.sparse_output
        or encoder.drop_idx_ is not None
        or encoder.handle_unknown not in ("ignore", "warn")
        or encoder.max_categories is not None
        or encoder.min_frequency is not None
    ):
        return None
    lookups = [{value: index for index, value in enumerate(c.tolist())} for c in encoder.categories_]
    if any(_is_missing(value) for lookup in lookups for value in lookup):
        return None
    offsets = np.cumsum([0] + [len(lookup) for lookup in lookups]).tolist()
    width = offsets[-1]
    plan = list(zip(columns, fills, lookups, offsets, strict=False))

    def encode(rows: list[dict]) -> np.ndarray:
        out = np.zeros((len(rows), width))
        for index, row in enumerate(rows):
            for name, fill, lookup, offset in plan:
                value = row[name]
                if fill is not None and _is_missing(value):
                    value = fill
                position = lookup.get(value)
                if position is not None:
                    out[index, offset + position] = 1.0
        return out

    return encode


def _scaled(
    scaler: Any, columns: list[str], fills: list, read: Callable[[list[dict]], np.ndarray] | None = None
) -> Callable[[list[dict]], np.ndarray] | None:
    count = len(columns)
    mean = np.zeros(count) if scaler is None or not scaler.with_mean else np.asarray(scaler.mean_, float)
    scale = np.ones(count) if scaler is None or not scaler.with_std else np.asarray(scaler.scale_, float)
    fill = np.array([np.nan if value is None else value for value in fills], dtype=float)
    has_fill = not np.isnan(fill).all()

    def scaled(rows: list[dict]) -> np.ndarray:
        if read is not None:
            values = read(rows)
        else:
            values = np.array([[row[name] for name in columns] for row in rows], dtype=float)  # None -> NaN
        if has_fill:
            gaps = np.isnan(values)
            if gaps.any():
                values = np.where(gaps, fill, values)
        return (values - mean) / scale

    return scaled


def _compile_estimator(estimator: Any, classifier: bool) -> Callable[[np.ndarray], tuple] | None:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    from ..decision import BalancedDecision

    kind = type(estimator)
    if kind is BalancedDecision:
        return _balanced(estimator)
    if kind in (RandomForestClassifier, RandomForestRegressor) and estimator.n_outputs_ == 1:
        return _forest(estimator, classifier)
    if kind in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return _boosting(estimator, classifier)
    if kind in (LogisticRegression, LinearRegression, Ridge):
        return _linear(estimator, classifier)
    if classifier:
        classes = estimator.classes_

        def generic_classifier(x: np.ndarray) -> tuple:
            return estimator.predict(x).tolist(), estimator.predict_proba(x).tolist()

        return generic_classifier if hasattr(estimator, "predict_proba") and len(classes) else None

    def generic_regressor(x: np.ndarray) -> tuple:
        return estimator.predict(x).tolist(), None

    return generic_regressor


def _balanced(model: Any) -> Callable[[np.ndarray], tuple] | None:
    # The wrapped classifier's probabilities; the label from them as BalancedDecision.predict does.
    from ..decision import balanced_labels

    inner = _compile_estimator(model.estimator_, classifier=True)
    if inner is None:
        return None
    priors, classes = model.priors_, model.classes_

    def balanced(x: np.ndarray) -> tuple:
        _, proba = inner(x)
        return balanced_labels(np.asarray(proba), priors, classes).tolist(), proba

    return balanced


def _linear(model: Any, classifier: bool) -> Callable[[np.ndarray], tuple]:
    # What the linear models' predict(_proba) compute, without re-validating a checked array.
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    coef = model.coef_.T if model.coef_.ndim == 2 else model.coef_
    intercept = model.intercept_

    def scores(x: np.ndarray) -> np.ndarray:
        values = x @ coef + intercept
        return values.reshape(-1) if values.ndim > 1 and values.shape[1] == 1 else values

    if not classifier:
        return lambda x: (scores(x).tolist(), None)
    classes = model.classes_
    if len(classes) <= 2:

        def binary(x: np.ndarray) -> tuple:
            decision = scores(x)
            positive = expit(decision)
            proba = np.stack([1 - positive, positive], axis=1)
            return classes.take((decision > 0).astype(int)).tolist(), proba.tolist()

        return binary

    def multiclass(x: np.ndarray) -> tuple:
        decision = scores(x)
        return classes.take(decision.argmax(axis=1)).tolist(), softmax(decision.copy()).tolist()

    return multiclass


def _forest(forest: Any, classifier: bool) -> Callable[[np.ndarray], tuple]:
    # What RandomForest*.predict(_proba) does, without a thread pool and checks per tree.
    trees = [tree.tree_ for tree in forest.estimators_]
    if classifier:
        classes, width = forest.classes_, int(forest.n_classes_)

        def forest_classifier(x: np.ndarray) -> tuple:
            x32 = np.ascontiguousarray(x, dtype=np.float32)
            proba = np.zeros((len(x32), width))
            for tree in trees:
                proba += tree.predict(x32)[:, :width]
            proba /= len(trees)
            return classes.take(proba.argmax(axis=1)).tolist(), proba.tolist()

        return forest_classifier

    def forest_regressor(x: np.ndarray) -> tuple:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros(len(x32))
        for tree in trees:
            total += tree.predict(x32)[:, 0]
        total /= len(trees)
        return total.tolist(), None

    return forest_regressor


def _boosting(model: Any, classifier: bool) -> Callable[[np.ndarray], tuple]:
    # HistGradientBoosting*.predict(_proba) on one OpenMP thread: a thread team per call costs more
    # than the trees for a handful of rows.
    if classifier:
        classes = model.classes_

        def boosting_classifier(x: np.ndarray) -> tuple:
            raw = model._raw_predict(x, n_threads=1)
            encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else raw.argmax(axis=1)
            return classes.take(encoded).tolist(), model._loss.predict_proba(raw).tolist()

        return boosting_classifier

    def boosting_regressor(x: np.ndarray) -> tuple:
        return model._loss.link.inverse(model._raw_predict(x, n_threads=1).ravel()).tolist(), None

    return boosting_regressor
