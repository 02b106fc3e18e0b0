"""The `evaluate` stage: the model against the test set and a trivial baseline; slices and plots."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline

from ..artifacts import load_model, model_metadata
from ..config.data import DataSettings
from ..config.evaluate import EvaluateSettings
from ..config.mlflow import MlflowSettings
from ..config.reading import Sections, Task
from ..config.train import TrainSettings
from ..data import features_and_target, read_frame
from ..feature_value import SECTION as IMPORTANCE
from ..feature_value import importance_intervals
from ..paths import Paths
from ..predictions import prediction_rows, row_ids
from ..tracking import RegistryError
from .scoring import DIGITS, balanced_accuracy, class_metrics, positive_label, rounded, score
from .simple import fit_simple
from .stage import run_stage, write_json

NUMERIC_SLICE_BINS = 4  # numeric sensitive features (age) are sliced into quartiles
MAX_NUMERIC_GROUPS = 10
MISSING_GROUP = "(missing)"  # the slice of rows whose sensitive feature is missing


class StageSettings(Sections):
    """The sections of params.yaml that evaluate reads."""

    task: Task
    data: DataSettings
    train: TrainSettings  # its seed, for the baseline and permutation importance
    evaluate: EvaluateSettings
    mlflow: MlflowSettings


CLASS_SLICE = "(class)"  # in reports/slices.json: precision, recall and F1 of each class
# In reports/slices.json: per sensitive feature, 1 when it is one of the model's inputs
# (data.use_sensitive_features), else 0; the gate fails on a 1 without gate.allow_sensitive_features.
SENSITIVE_INPUTS = "(sensitive inputs)"
TOO_SMALL = "too_small"  # a group's mark: fewer rows than evaluate.min_group_size, not judged


@dataclass(frozen=True)
class Evaluation:
    metrics: dict  # {"model": {...}, "baseline": {...}, "simple": {...}}
    slices: dict  # {feature: {"groups": {group: {...}}, "difference": {...}}}
    plots: dict  # {file name: JSON-able content or CSV rows}
    predictions: pd.DataFrame  # per test row, keyed by a stable id (predictions.py)
    simple_inputs: tuple[str, ...] = ()  # the simple model's inputs (pipeline/simple.py)


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
    target: pd.Series,
    predictions: np.ndarray,
    sensitive: pd.DataFrame,
    task: str,
    classes: Iterable[object] = (),
    positive: object | None = None,
    min_group_size: int = 1,
) -> dict:
    """Metrics per group of each sensitive feature (fairlearn MetricFrame), and their largest
    difference between groups. Classification with more than two classes: accuracy and balanced
    accuracy per group, and under "classes" each class's recall and selection rate per group
    (one-vs-rest); two classes: the positive class's recall and selection rate per group.
    A group of fewer than `min_group_size` rows has its count only, marked too small."""
    result = {}
    for feature in sensitive.columns:
        groups = slice_groups(sensitive[feature]).to_numpy()
        judged = _judged(groups, min_group_size)
        if task == "regression":
            chosen = {"rmse": skm.root_mean_squared_error, "mae": skm.mean_absolute_error}
            result[str(feature)] = _by_group(chosen, target.to_numpy(), predictions, groups, judged)
        elif positive is not None:
            result[str(feature)] = _by_group(
                _one_class_metrics(skm.accuracy_score),
                target == positive,
                predictions == positive,
                groups,
                judged,
            )
        else:
            chosen = {"accuracy": skm.accuracy_score, "balanced_accuracy": balanced_accuracy}
            result[str(feature)] = _by_group(chosen, target.to_numpy(), predictions, groups, judged) | {
                "classes": {
                    str(label): _by_group(
                        _one_class_metrics(), target == label, predictions == label, groups, judged
                    )
                    for label in classes
                }
            }
    return result


def _one_class_metrics(accuracy=None) -> dict:
    """Recall and selection rate of one class, its labels given as booleans (one-vs-rest)."""
    from fairlearn.metrics import selection_rate

    chosen = {"accuracy": accuracy} if accuracy is not None else {}
    return chosen | {
        "recall": lambda t, p: skm.recall_score(t, p, pos_label=True, zero_division=0),
        "selection_rate": lambda t, p: selection_rate(t, p, pos_label=True),
    }


def _judged(groups: np.ndarray, min_group_size: int) -> np.ndarray:
    """The rows whose group has at least `min_group_size` rows."""
    _, codes, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[codes] >= min_group_size


def too_small(groups: np.ndarray, judged: np.ndarray) -> dict:
    """The groups of the rows not judged: their count, marked too small to judge (1)."""
    labels, counts = np.unique(groups[~judged], return_counts=True)
    return {str(label): {"count": int(n), TOO_SMALL: 1} for label, n in zip(labels, counts, strict=True)}


def _by_group(chosen: dict, truth, predicted, groups: np.ndarray, judged: np.ndarray | None = None) -> dict:
    from fairlearn.metrics import MetricFrame, count

    judged = np.ones(len(groups), dtype=bool) if judged is None else judged
    small = too_small(groups, judged)
    if not judged.any():
        return {"groups": small, "difference": {}}
    frame = MetricFrame(
        metrics={**chosen, "count": count},
        y_true=np.asarray(truth)[judged],
        y_pred=np.asarray(predicted)[judged],
        sensitive_features=groups[judged],
    )
    by_group = frame.by_group.to_dict(orient="index")
    return {
        "groups": {str(group): rounded(values) for group, values in by_group.items()} | small,
        "difference": rounded(frame.difference().drop("count").to_dict()),
    }


def fairness_slices(
    target: pd.Series,
    predictions: np.ndarray,
    sensitive: pd.DataFrame,
    classes: Iterable[object],
    positive: object | None,
    min_group_size: int,
    rounds: int,
    seed: int,
) -> dict:
    """Per sensitive feature, the fairness differences between its judged groups (pipeline/
    fairness.py): of the positive class (two classes), or of each class one-vs-rest under
    "classes" (more). Always the number of groups judged: with fewer than two, no differences.
    Rows whose feature is missing are no group to be fair to (served rows often lack it): they
    stay in the slices and out of the fairness differences."""
    from .fairness import fairness_differences

    result: dict[str, dict] = {}
    labels = [positive] if positive is not None else list(classes)
    for feature in sensitive.columns:
        groups = slice_groups(sensitive[feature]).to_numpy()
        judged = _judged(groups, min_group_size) & (groups != MISSING_GROUP)
        kept = groups[judged]
        entry: dict = {"fairness": {"groups_judged": len(np.unique(kept))}}
        per_class = {}
        for label in labels:
            truth = (target == label).to_numpy()[judged]
            chosen = (predictions == label)[judged]
            measured = (
                fairness_differences(truth, chosen, kept, rounds, seed) if len(np.unique(kept)) > 1 else {}
            )
            per_class[str(label)] = {"fairness": measured}
        if positive is not None:
            entry["fairness"] |= per_class[str(positive)]["fairness"]
        else:
            entry["classes"] = per_class
        result[str(feature)] = entry
    return result


def classification_plots(
    target: pd.Series, predictions: np.ndarray, proba: np.ndarray, classes: np.ndarray, positive
) -> dict:
    """ROC, precision-recall and calibration curves of the positive class (two classes) or of
    each class one-vs-rest (more), one row per point with its class; the confusion matrix."""
    from sklearn.calibration import calibration_curve

    curves: dict[str, list[dict]] = {"roc": [], "precision_recall": [], "calibration": []}
    for column, label in enumerate(classes):
        if positive is not None and label != positive:
            continue
        is_label, scores = (target == label).to_numpy(), proba[:, column]
        fpr, tpr, _ = skm.roc_curve(is_label, scores)
        precision, recall, _ = skm.precision_recall_curve(is_label, scores)
        observed, predicted = calibration_curve(is_label, scores, n_bins=10)
        curves["roc"] += _records(label, fpr=fpr, tpr=tpr)
        curves["precision_recall"] += _records(label, recall=recall, precision=precision)
        curves["calibration"] += _records(label, mean_predicted=predicted, fraction_positive=observed)
    return {f"{name}.json": {name: rows} for name, rows in curves.items()} | {
        "confusion.csv": pd.DataFrame(
            {"actual": target.astype(str).to_numpy(), "predicted": predictions.astype(str)}
        ),
    }


def _kept_proba(proba: np.ndarray, classes: np.ndarray, positive) -> tuple[np.ndarray, list]:
    """The probability columns the per-row file keeps: two classes, the positive class's (all
    its metrics need); more, every class's."""
    if positive is None:
        return proba, list(classes)
    return proba[:, [list(classes).index(positive)]], [positive]


def regression_plots(target: pd.Series, predictions: np.ndarray) -> dict:
    residuals = target.to_numpy() - predictions
    return {"residuals.json": {"residuals": _records(None, predicted=predictions, residual=residuals)}}


def importance_plot(model, features: pd.DataFrame, target: pd.Series, settings: StageSettings) -> dict:
    """Permutation importance of each raw input column (seeded): the mean over the repeats, its
    standard deviation and its 95% interval (feature_value.py)."""
    scoring = "neg_log_loss" if settings.task == "classification" else "neg_root_mean_squared_error"
    repeats = importance_repeats(
        model, features, target, scoring, settings.evaluate.permutation_repeats, settings.train.seed
    )
    intervals = importance_intervals([str(c) for c in features.columns], repeats, DIGITS)
    rows = sorted(
        zip(features.columns, repeats.mean(axis=1), repeats.std(axis=1), strict=True),
        key=lambda item: item[1],
        reverse=True,
    )
    importance = [
        {"feature": str(name), "importance": round(float(mean), DIGITS), "std": round(float(std), DIGITS)}
        | {"low": intervals[str(name)]["low"], "high": intervals[str(name)]["high"]}
        for name, mean, std in rows
    ]
    return {"importance.json": {"importance": importance}}


def importance_repeats(
    model, features: pd.DataFrame, target: pd.Series, scoring: str, repeats: int, seed: int
) -> np.ndarray:
    """An (inputs x repeats) array: each repeat shuffles every input once on its own resample of
    the test rows, so the spread holds the test set's sampling noise and not only the shuffles'
    (an input of no value can gain a little by chance on one fixed test set)."""
    from sklearn.inspection import permutation_importance

    rng = np.random.default_rng(seed)
    columns = []
    for _ in range(repeats):
        rows = resample_rows(target, rng, stratified=scoring == "neg_log_loss")
        result = permutation_importance(
            model,
            features.iloc[rows],
            target.iloc[rows],
            scoring=scoring,
            n_repeats=1,
            random_state=int(rng.integers(2**31 - 1)),
            n_jobs=1,
        )
        columns.append(result.importances[:, 0])
    return np.column_stack(columns)


def resample_rows(target: pd.Series, rng: np.random.Generator, stratified: bool) -> np.ndarray:
    """Row positions drawn with replacement, as many as there are rows; within each class when
    stratified, so that every class the model knows is still there for the log loss."""
    if not stratified:
        return rng.integers(0, len(target), len(target))
    positions = np.arange(len(target))
    groups = [positions[(target == label).to_numpy()] for label in pd.unique(target)]
    return np.concatenate([rng.choice(group, size=len(group), replace=True) for group in groups])


def importance_metrics(plots: dict) -> dict:
    """metrics.json's "importance": each input's mean and 95% interval, which the gate reads."""
    rows = plots["importance.json"]["importance"]
    return {
        row["feature"]: {"mean": row["importance"], "low": row["low"], "high": row["high"]} for row in rows
    }


def evaluate(model: Pipeline, train: pd.DataFrame, test: pd.DataFrame, settings: StageSettings) -> Evaluation:
    """The pure evaluation step: model and frames in, metrics, slices and plot data out."""
    target_name = settings.data.target
    train_x, train_y = features_and_target(train, target_name)
    test_x, test_y = features_and_target(test, target_name)
    inputs = list(model.feature_names_in_)
    baseline = baseline_model(settings.task, settings.train.seed).fit(train_x[inputs], train_y)
    decision = settings.train.decision if settings.task == "classification" else "most_likely"
    k = settings.evaluate.simple_features
    simple = fit_simple(train_x[inputs], train_y, settings.task, decision, k, settings.train.seed)
    simple_inputs = list(simple.feature_names_in_)

    predictions = model.predict(test_x[inputs])
    if settings.task == "classification":
        classes = model.classes_
        positive = positive_label(classes, settings.data.positive_class)
        proba = model.predict_proba(test_x[inputs])
        plots = classification_plots(test_y, predictions, proba, classes, positive)
        slices = slice_report(test_x, test_y, predictions, inputs, settings, classes)
        per_row = prediction_rows(row_ids(test), test_y, predictions, *_kept_proba(proba, classes, positive))
    else:
        plots = regression_plots(test_y, predictions)
        slices = slice_report(test_x, test_y, predictions, inputs, settings)
        per_row = prediction_rows(row_ids(test), test_y, predictions, None, [])
    plots.update(importance_plot(model, test_x[inputs], test_y, settings))
    return Evaluation(
        metrics={
            "model": score(model, test_x[inputs], test_y, settings.task, settings.data.positive_class),
            "baseline": score(baseline, test_x[inputs], test_y, settings.task, settings.data.positive_class),
            "simple": score(
                simple, test_x[simple_inputs], test_y, settings.task, settings.data.positive_class
            ),
            "test_rows": len(test),
            IMPORTANCE: importance_metrics(plots),
        },
        slices=slices,
        plots=plots,
        predictions=per_row,
        simple_inputs=tuple(simple_inputs),
    )


def slice_report(
    test_x: pd.DataFrame,
    test_y: pd.Series,
    predictions: np.ndarray,
    inputs: list[str],
    settings: StageSettings,
    classes: np.ndarray | None = None,
) -> dict:
    """reports/slices.json: metrics per group of each slice column; for classifiers, the fairness
    differences per sensitive feature and the class slice; which sensitive features the model takes."""
    sliced = test_x[slice_columns(settings, test_x)]
    least = settings.evaluate.min_group_size
    if classes is None:
        slices = slice_metrics(test_y, predictions, sliced, settings.task, min_group_size=least)
    else:
        positive = positive_label(classes, settings.data.positive_class)
        slices = slice_metrics(test_y, predictions, sliced, settings.task, classes, positive, least)
        fairness = fairness_slices(
            test_y,
            predictions,
            test_x[[c for c in settings.data.sensitive_features if c in test_x.columns]],
            classes,
            positive,
            least,
            settings.evaluate.fairness_bootstrap_rounds,
            settings.train.seed,
        )
        slices = _merged(slices, fairness)
        slices[CLASS_SLICE] = {"groups": _small_classes(class_metrics(test_y, predictions, classes), least)}
    slices[SENSITIVE_INPUTS] = {name: int(name in inputs) for name in settings.data.sensitive_features}
    return slices


def slice_columns(settings: StageSettings, test: pd.DataFrame) -> list[str]:
    """evaluate.slices, or the sensitive features present; a listed column must exist."""
    if settings.evaluate.slices is None:
        return [c for c in settings.data.sensitive_features if c in test.columns]
    missing = [c for c in settings.evaluate.slices if c not in test.columns]
    if missing:
        allowed = ", ".join(str(c) for c in test.columns)
        raise ValueError(f"evaluate.slices: no column {missing[0]!r} in the test set; allowed: {allowed}")
    return list(settings.evaluate.slices)


def _merged(slices: dict, extra: dict) -> dict:
    """`extra`'s entries merged into `slices`, one level deep per feature and class."""
    merged = {name: dict(entry) for name, entry in slices.items()}
    for name, entry in extra.items():
        target = merged.setdefault(name, {})
        for key, value in entry.items():
            if key == "classes" and "classes" in target:
                target["classes"] = {
                    label: {**target["classes"].get(label, {}), **one} for label, one in value.items()
                }
            else:
                target[key] = value
    return merged


def _small_classes(groups: dict, min_group_size: int) -> dict:
    """The class slice with classes of fewer test rows than `min_group_size` marked too small."""
    return {
        label: values if values["count"] >= min_group_size else {"count": values["count"], TOO_SMALL: 1}
        for label, values in groups.items()
    }


def _records(label: object | None, **columns: np.ndarray) -> list[dict]:
    """Rows of rounded numbers; with a label, each row names its class first."""
    names = list(columns)
    rows = zip(*(np.round(np.asarray(columns[n], dtype=float), 4) for n in names), strict=True)
    tag = {} if label is None else {"class": str(label)}
    return [tag | dict(zip(names, map(float, row), strict=True)) for row in rows]


def run(settings: StageSettings, paths: Paths) -> None:
    model = load_model(paths.model)
    result = evaluate(model, read_frame(paths.train), read_frame(paths.test), settings)
    write_json(paths.metrics, result.metrics)
    write_json(paths.slices, result.slices)
    result.predictions.to_csv(paths.predictions, index=False)
    paths.plots.mkdir(parents=True, exist_ok=True)
    for name, content in result.plots.items():
        if name.endswith(".csv"):
            content.to_csv(paths.plots / name, index=False)
        else:
            write_json(paths.plots / name, content)
    model_metrics = ", ".join(f"{k}={v}" for k, v in result.metrics["model"].items())
    print(f"evaluate: {model_metrics}")
    simple_metrics = ", ".join(f"{k}={v}" for k, v in result.metrics["simple"].items())
    print(f"evaluate: simple model on {', '.join(result.simple_inputs)}: {simple_metrics}")
    # Only now, with every file written: the stage's result never depends on the tracking store.
    try:
        logged = log_evaluation(result, settings, paths)
    except RegistryError as err:
        print(f"evaluate: not logged to MLflow: {err}", file=sys.stderr)
    else:
        print(f"evaluate: test metrics and slices logged to MLflow run {logged}")


def log_evaluation(result: Evaluation, settings: StageSettings, paths: Paths) -> str:
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


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
