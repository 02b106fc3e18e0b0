"""The `evaluate` stage: the model against the test set and a trivial baseline; slices and plots."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline

from ..artifacts import load_model, model_metadata
from ..config import Paths, Settings
from ..data import features_and_target, read_frame
from ..tracking import RegistryError
from .scoring import DIGITS, positive_label, positive_proba, rounded, score
from .stage import run_stage, write_json

NUMERIC_SLICE_BINS = 4  # numeric sensitive features (age) are sliced into quartiles
MAX_NUMERIC_GROUPS = 10
MISSING_GROUP = "(missing)"  # the slice of rows whose sensitive feature is missing


@dataclass(frozen=True)
class Evaluation:
    metrics: dict  # {"model": {...}, "baseline": {...}}
    slices: dict  # {feature: {"groups": {group: {...}}, "difference": {...}}}
    plots: dict  # {file name: JSON-able content or CSV rows}


def baseline_model(task: str, seed: int):
    if task == "classification":
        return DummyClassifier(strategy="prior", random_state=seed)
    return DummyRegressor(strategy="mean")


def slice_groups(series: pd.Series) -> pd.Series:
    """Group labels for slicing: values as text; many-valued numbers as quartile bands; a missing
    value is a group of its own, MISSING_GROUP (fairlearn refuses missing group labels)."""
    if pd.api.types.is_numeric_dtype(series) and series.nunique() > MAX_NUMERIC_GROUPS:
        groups = pd.qcut(series, NUMERIC_SLICE_BINS, duplicates="drop").astype(str)
    else:
        groups = series.astype(str)
    return groups.where(series.notna(), MISSING_GROUP).astype(str)


def slice_metrics(
    target: pd.Series, predictions: np.ndarray, sensitive: pd.DataFrame, task: str, positive=None
) -> dict:
    """Metrics per group of each sensitive feature (fairlearn MetricFrame)."""
    from fairlearn.metrics import MetricFrame, count, selection_rate

    if task == "classification":
        chosen = {
            "accuracy": skm.accuracy_score,
            "recall": lambda t, p: skm.recall_score(t, p, pos_label=positive, zero_division=0),
            "selection_rate": lambda t, p: selection_rate(t, p, pos_label=positive),
            "count": count,
        }
    else:
        chosen = {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "count": count,
        }
    result = {}
    for feature in sensitive.columns:
        frame = MetricFrame(
            metrics=chosen,
            y_true=target.to_numpy(),
            y_pred=predictions,
            sensitive_features=slice_groups(sensitive[feature]).to_numpy(),
        )
        by_group = frame.by_group.to_dict(orient="index")
        differences = frame.difference().drop("count").to_dict()
        result[str(feature)] = {
            "groups": {str(group): rounded(values) for group, values in by_group.items()},
            "difference": rounded(differences),
        }
    return result


def classification_plots(target: pd.Series, predictions: np.ndarray, proba: np.ndarray, positive) -> dict:
    from sklearn.calibration import calibration_curve

    is_positive = (target == positive).to_numpy()
    fpr, tpr, _ = skm.roc_curve(is_positive, proba)
    precision, recall, _ = skm.precision_recall_curve(is_positive, proba)
    observed, predicted = calibration_curve(is_positive, proba, n_bins=10)
    return {
        "roc.json": {"roc": _records(fpr=fpr, tpr=tpr)},
        "precision_recall.json": {"precision_recall": _records(recall=recall, precision=precision)},
        "calibration.json": {"calibration": _records(mean_predicted=predicted, fraction_positive=observed)},
        "confusion.csv": pd.DataFrame(
            {"actual": target.astype(str).to_numpy(), "predicted": predictions.astype(str)}
        ),
    }


def regression_plots(target: pd.Series, predictions: np.ndarray) -> dict:
    residuals = target.to_numpy() - predictions
    return {"residuals.json": {"residuals": _records(predicted=predictions, residual=residuals)}}


def importance_plot(model, features: pd.DataFrame, target: pd.Series, settings: Settings) -> dict:
    """Permutation importance of each raw input column (seeded)."""
    from sklearn.inspection import permutation_importance

    scoring = "neg_log_loss" if settings.task == "classification" else "neg_root_mean_squared_error"
    result = permutation_importance(
        model,
        features,
        target,
        scoring=scoring,
        n_repeats=settings.evaluate.permutation_repeats,
        random_state=settings.train.seed,
        n_jobs=1,
    )
    rows = sorted(
        zip(features.columns, result.importances_mean, strict=True), key=lambda item: item[1], reverse=True
    )
    return {
        "importance.json": {
            "importance": [
                {"feature": str(name), "importance": round(float(value), DIGITS)} for name, value in rows
            ]
        }
    }


def evaluate(model: Pipeline, train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> Evaluation:
    """The pure evaluation step: model and frames in, metrics, slices and plot data out."""
    target_name = settings.data.target
    train_x, train_y = features_and_target(train, target_name)
    test_x, test_y = features_and_target(test, target_name)
    inputs = list(model.feature_names_in_)
    baseline = baseline_model(settings.task, settings.train.seed).fit(train_x[inputs], train_y)

    predictions = model.predict(test_x[inputs])
    positive = None
    if settings.task == "classification":
        positive = positive_label(model.classes_, settings.data.positive_class)
        proba = positive_proba(model, test_x[inputs], positive)
        plots = classification_plots(test_y, predictions, proba, positive)
    else:
        plots = regression_plots(test_y, predictions)
    plots.update(importance_plot(model, test_x[inputs], test_y, settings))

    sensitive = test_x[[c for c in settings.data.sensitive_features if c in test_x.columns]]
    return Evaluation(
        metrics={
            "model": score(model, test_x[inputs], test_y, settings),
            "baseline": score(baseline, test_x[inputs], test_y, settings),
            "test_rows": len(test),
        },
        slices=slice_metrics(test_y, predictions, sensitive, settings.task, positive),
        plots=plots,
    )


def _records(**columns: np.ndarray) -> list[dict]:
    names = list(columns)
    rows = zip(*(np.round(np.asarray(columns[n], dtype=float), 4) for n in names), strict=True)
    return [dict(zip(names, map(float, row), strict=True)) for row in rows]


def run(settings: Settings, paths: Paths) -> None:
    model = load_model(paths.model)
    result = evaluate(model, read_frame(paths.train), read_frame(paths.test), settings)
    write_json(paths.metrics, result.metrics)
    write_json(paths.slices, result.slices)
    paths.plots.mkdir(parents=True, exist_ok=True)
    for name, content in result.plots.items():
        if name.endswith(".csv"):
            content.to_csv(paths.plots / name, index=False)
        else:
            write_json(paths.plots / name, content)
    model_metrics = ", ".join(f"{k}={v}" for k, v in result.metrics["model"].items())
    print(f"evaluate: {model_metrics}")
    # Only now, with every file written: the stage's result never depends on the tracking store.
    try:
        logged = log_evaluation(result, settings, paths)
    except RegistryError as err:
        print(f"evaluate: not logged to MLflow: {err}", file=sys.stderr)
    else:
        print(f"evaluate: test metrics and slices logged to MLflow run {logged}")


def log_evaluation(result: Evaluation, settings: Settings, paths: Paths) -> str:
    """Log the test metrics and slices to the training run, or (a model trained elsewhere: restored
    from DVC's run-cache, pulled) to a new run tagged with it. The run's id."""
    from ..tracking import (
        TRAINED_RUN_TAG,
        absolute_uri,
        exists,
        experiment_for_runs,
        open_store,
        store_errors,
    )

    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    client = open_store(uri, settings.mlflow.registered_model, settings.mlflow.experiment)
    trained = model_metadata(paths.model).get("mlflow_run_id", "")
    with store_errors(uri):
        run_id = trained if trained and exists(client.get_run, trained) else ""
        if not run_id:
            experiment = experiment_for_runs(client, uri, settings.mlflow.experiment)
            tags = {TRAINED_RUN_TAG: trained} if trained else {}
            run_name = f"evaluate-{trained[:8]}" if trained else "evaluate"
            run_id = client.create_run(experiment, run_name=run_name, tags=tags).info.run_id
        for name, value in result.metrics["model"].items():
            client.log_metric(run_id, f"test_{name}", value)
        client.log_metric(run_id, "test_rows", result.metrics["test_rows"])
        client.log_dict(run_id, result.metrics, "evaluation/metrics.json")
        client.log_dict(run_id, result.slices, "evaluation/slices.json")
        if run_id != trained:
            client.set_terminated(run_id)
    return run_id


def main() -> int:
    return run_stage(run)
