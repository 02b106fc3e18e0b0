"""The `train` stage: fit the model pipeline, log it to MLflow, save it to models/model."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from ..artifacts import save_model
from ..config.data import DataSettings
from ..config.mlflow import MlflowSettings
from ..config.reading import Sections, Task
from ..config.split import SplitSettings
from ..config.train import ModelSettings, TrainSettings
from ..data import features_and_target, read_frame
from ..paths import Paths
from .features import build_preprocessor, check_no_banned, model_inputs
from .stage import relative, run_stage


class StageSettings(Sections):
    """The sections of params.yaml that train reads."""

    task: Task
    data: DataSettings
    split: SplitSettings  # logged with the model: it decided the training rows
    train: TrainSettings
    mlflow: MlflowSettings


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


def build_pipeline(inputs: pd.DataFrame, settings: StageSettings) -> Pipeline:
    estimator = build_estimator(settings.task, settings.train.model, settings.train.seed)
    if settings.task == "classification" and settings.train.decision == "balanced":
        from ..decision import BalancedDecision

        estimator = BalancedDecision(estimator)
    return Pipeline([("features", build_preprocessor(inputs)), ("model", estimator)])


def fit(train: pd.DataFrame, settings: StageSettings) -> Pipeline:
    """The pure training step: a frame and settings in, a fitted pipeline out."""
    banned = settings.data.banned_features
    inputs = model_inputs(list(train.columns), settings.data.target, banned)
    check_no_banned(inputs, banned)
    features, target = features_and_target(train, settings.data.target)
    pipeline = build_pipeline(features[inputs], settings)
    return pipeline.fit(features[inputs], target)


def model_params(settings: StageSettings) -> dict[str, object]:
    """Flat params for MLflow: what decided this model."""
    # Named as in params.yaml (and so in dvc.yaml and the pull-request report).
    params = {f"train.model.{key}": value for key, value in settings.train.model.model_dump().items()}
    params.update(
        {
            "train.seed": settings.train.seed,
            "train.use_tuned": settings.train.use_tuned,  # the model keys are then the tuned values
            "split.seed": settings.split.seed,
            "split.test_size": settings.split.test_size,
            "data.source": settings.data.source,
        }
    )
    if settings.task == "classification":
        params["train.decision"] = settings.train.decision
    return params


def log_run(
    pipeline: Pipeline,
    settings: StageSettings,
    train: pd.DataFrame,
    root: Path | None = None,
    fit_seconds: float | None = None,
) -> dict[str, str]:
    """Log params, the training data, training-set metrics, the fit time and the model to MLflow.

    Returns the ids that link the saved model directory to this run. A relative
    sqlite store is relative to `root` (default: the working directory, as for
    `dvc repro`). A store that is unreachable, damaged or not the one the project
    used fails with one line (RegistryError), before the run starts.
    """
    import mlflow

    from ..artifacts import log_model, quiet_mlflow
    from ..provenance import git_commit
    from ..tracking import FIT_SECONDS, absolute_uri, experiment_for_runs, open_store, store_errors
    from .scoring import score

    quiet_mlflow()
    root = root or Path.cwd()
    features, target = features_and_target(train, settings.data.target)
    inputs = features[list(pipeline.feature_names_in_)]
    train_metrics = score(pipeline, inputs, target, settings.task, settings.data.positive_class)
    uri = absolute_uri(settings.mlflow.tracking_uri, root)
    client = open_store(uri, settings.mlflow.registered_model, settings.mlflow.experiment)
    commit = git_commit(root)
    with store_errors(uri):
        experiment = experiment_for_runs(client, uri, settings.mlflow.experiment)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(experiment_id=experiment, run_name=run_name("train", commit)) as run:
            mlflow.set_tag("git_commit", commit)
            mlflow.log_params(model_params(settings))
            log_training_data(train, settings.data.target, relative(Paths(root).train, Paths(root)))
            mlflow.log_metrics({f"train_{name}": value for name, value in train_metrics.items()})
            mlflow.log_metric("train_rows", len(train))
            if fit_seconds is not None:
                mlflow.log_metric(FIT_SECONDS, fit_seconds)
            info = log_model(pipeline)
    return {"mlflow_run_id": run.info.run_id, "mlflow_model_id": str(info.model_id)}


def run_name(stage: str, commit: str) -> str:
    """`train-1a2b3c4d`: the stage and the commit it ran on, instead of MLflow's random names."""
    return f"{stage}-{commit[:8]}" if commit != "unknown" else stage


def log_training_data(train: pd.DataFrame, target: str, source: str) -> None:
    """The training set as the run's input: its name, source, schema and MLflow's digest of it."""
    import warnings

    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    with warnings.catch_warnings():
        # MLflow's hint about integer columns concerns model signatures (the schema is made lazily).
        warnings.simplefilter("ignore")
        dataset = from_pandas(train, source=source, name="train", targets=target)
        mlflow.log_input(dataset, context="training")


def with_tuning(settings: StageSettings, paths: Paths) -> StageSettings:
    """train.model with the tune stage's best hyperparameters over it, when train.use_tuned."""
    from ..tuning import read_report, tuned_train

    report = read_report(paths.tuning) if settings.train.use_tuned else None
    return settings.model_copy(update={"train": tuned_train(settings.train, report)})


def run(settings: StageSettings, paths: Paths) -> None:
    settings = with_tuning(settings, paths)
    train = read_frame(paths.train)
    started = time.perf_counter()
    pipeline = fit(train, settings)
    ids = log_run(pipeline, settings, train, root=paths.root, fit_seconds=time.perf_counter() - started)
    save_model(pipeline, paths.model, metadata=ids)
    where = relative(paths.model, paths)
    tuned = " (tuned: reports/tuning.json)" if settings.train.use_tuned else ""
    print(f"train: {settings.train.model.kind} model{tuned} -> {where} (run {ids['mlflow_run_id']})")


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
