"""The model file: how a fitted pipeline is saved, loaded and logged (MLflow model, skops format).

Training writes it; evaluation, the registry, the canary and the server read it. None of them
needs the training code for that.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# skops refuses to load types it does not trust. These were reviewed: a numpy dtype
# descriptor (the encoders' output dtype), the fitted tree structure of
# HistGradientBoosting, and the node storage of RandomForest's trees (safe for files
# this pipeline wrote itself; never load a model from an unknown source with it).
# Never trust everything skops lists.
TRUSTED_TYPES = [
    "numpy.dtype",
    "{{ cookiecutter.package_name }}.decision.BalancedDecision",  # this package's own (decision.py)
    "{{ cookiecutter.package_name }}.pipeline.features.days_since_epoch",  # dates as numbers (features.py)
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]
MODEL_FILE = "model.skops"  # in the MLflow model directory: the fitted pipeline, as skops writes it
RUNTIME_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "skops")


def pip_requirements() -> list[str]:
    # Given explicitly: MLflow would otherwise spend seconds inferring them.
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def save_model(pipeline: Pipeline, path: Path, metadata: dict[str, str]) -> None:
    import mlflow.sklearn

    quiet_mlflow()
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

    # skops imports the model's classes by name; this package's own (TRUSTED_TYPES) live here.
    from . import decision  # noqa: F401

    return skops.io.load(path / MODEL_FILE, trusted=TRUSTED_TYPES)


def model_metadata(path: Path) -> dict[str, str]:
    """The metadata `save_model` wrote into the MLmodel file (the training run's ids); {} if none."""
    import yaml

    try:
        model = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    metadata = model.get("metadata") if isinstance(model, dict) else None
    return {str(key): str(value) for key, value in (metadata or {}).items()}


def log_model(pipeline: Pipeline):
    """Log the pipeline to the active MLflow run; MLflow's model info."""
    import mlflow.sklearn

    quiet_mlflow()
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        pip_requirements=pip_requirements(),
    )


def quiet_mlflow() -> None:
    # uv environments have no pip; MLflow warns about it on every save, and says it found uv.lock.
    import logging

    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    logging.getLogger("mlflow.utils.uv_utils").setLevel(logging.WARNING)
