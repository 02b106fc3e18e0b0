"""Fit the model pipeline; log it to MLflow and save it as an MLflow model."""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .config import ModelSettings, Settings
from .data import features_and_target
from .features import build_preprocessor, check_no_banned, model_inputs

# skops refuses to load types it does not trust. These were reviewed: a numpy dtype
# descriptor (the encoders' output dtype), the fitted tree structure of
# HistGradientBoosting, and the node storage of RandomForest's trees (safe for files
# this pipeline wrote itself; never load a model from an unknown source with it).
# Never trust everything skops lists.
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]
RUNTIME_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "skops")


def build_estimator(task: str, model: ModelSettings, seed: int) -> BaseEstimator:
    if task == "classification":
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression

        if model.kind == "linear":
            return LogisticRegression(C=1 / model.regularization, max_iter=model.max_iter)
        if model.kind == "random_forest":
            return RandomForestClassifier(
                n_estimators=model.n_estimators,
                max_depth=model.max_depth,
                min_samples_leaf=model.min_samples_leaf,
                random_state=seed,
                n_jobs=1,  # deterministic and fair to the other core
            )
        return HistGradientBoostingClassifier(
            max_iter=model.max_iter,
            learning_rate=model.learning_rate,
            max_leaf_nodes=model.max_leaf_nodes,
            random_state=seed,
        )
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge

    if model.kind == "linear":
        return Ridge(alpha=model.regularization)
    if model.kind == "random_forest":
        return RandomForestRegressor(
            n_estimators=model.n_estimators,
            max_depth=model.max_depth,
            min_samples_leaf=model.min_samples_leaf,
            random_state=seed,
            n_jobs=1,
        )
    return HistGradientBoostingRegressor(
        max_iter=model.max_iter,
        learning_rate=model.learning_rate,
        max_leaf_nodes=model.max_leaf_nodes,
        random_state=seed,
    )


def build_pipeline(inputs: pd.DataFrame, settings: Settings) -> Pipeline:
    estimator = build_estimator(settings.task, settings.train.model, settings.train.seed)
    return Pipeline([("features", build_preprocessor(inputs)), ("model", estimator)])


def fit(train: pd.DataFrame, settings: Settings) -> Pipeline:
    """The pure training step: a frame and settings in, a fitted pipeline out."""
    banned = settings.banned_features
    inputs = model_inputs(list(train.columns), settings.data.target, banned)
    check_no_banned(inputs, banned)
    features, target = features_and_target(train, settings.data.target)
    pipeline = build_pipeline(features[inputs], settings)
    return pipeline.fit(features[inputs], target)


def model_params(settings: Settings) -> dict[str, object]:
    """Flat params for MLflow: what decided this model."""
    params = {f"model.{key}": value for key, value in settings.train.model.model_dump().items()}
    params.update(
        {
            "train.seed": settings.train.seed,
            "split.seed": settings.split.seed,
            "split.test_size": settings.split.test_size,
            "data.source": settings.data.source,
        }
    )
    return params


def pip_requirements() -> list[str]:
    # Given explicitly: MLflow would otherwise spend seconds inferring them.
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def save_model(pipeline: Pipeline, path: Path, metadata: dict[str, str]) -> None:
    import mlflow.sklearn

    _quiet_mlflow()
    if path.exists():
        shutil.rmtree(path)
    mlflow.sklearn.save_model(
        pipeline,
        path,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        pip_requirements=pip_requirements(),
        metadata=metadata,
    )


def load_model(path: Path) -> Pipeline:
    """Load the pipeline from an MLflow model directory written by `save_model`.

    Reads the skops file directly: importing MLflow costs seconds that evaluate
    and the tests do not need to spend.
    """
    import skops.io

    return skops.io.load(path / "model.skops", trusted=TRUSTED_TYPES)


def log_run(
    pipeline: Pipeline, settings: Settings, train: pd.DataFrame, root: Path | None = None
) -> dict[str, str]:
    """Log params, training-set metrics and the model to MLflow.

    Returns the ids that link the saved model directory to this run. A relative
    sqlite store is relative to `root` (default: the working directory, as for
    `dvc repro`). A store that is unreachable, damaged or not the one the project
    used fails with one line (RegistryError), before the run starts.
    """
    import mlflow
    import mlflow.sklearn

    from .evaluate import score
    from .tracking import absolute_uri, experiment_for_runs, open_store, store_errors

    _quiet_mlflow()
    features, target = features_and_target(train, settings.data.target)
    train_metrics = score(pipeline, features[list(pipeline.feature_names_in_)], target, settings)
    uri = absolute_uri(settings.mlflow.tracking_uri, root or Path.cwd())
    client = open_store(uri, settings.mlflow.registered_model, settings.mlflow.experiment)
    with store_errors(uri):
        experiment = experiment_for_runs(client, uri, settings.mlflow.experiment)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_params(model_params(settings))
            mlflow.log_metrics({f"train_{name}": value for name, value in train_metrics.items()})
            mlflow.log_metric("train_rows", len(train))
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                serialization_format="skops",
                skops_trusted_types=TRUSTED_TYPES,
                pip_requirements=pip_requirements(),
            )
    return {"mlflow_run_id": run.info.run_id, "mlflow_model_id": str(info.model_id)}


def _quiet_mlflow() -> None:
    # uv environments have no pip; MLflow warns about it on every save.
    import logging

    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
