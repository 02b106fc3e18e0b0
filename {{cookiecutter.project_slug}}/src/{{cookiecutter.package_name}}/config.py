"""Settings: `params.yaml` -> typed, validated settings.

This is the one place that reads `params.yaml`. Every command loads the
settings once and passes them down; a typo or a wrong type fails here, before
any work, with the key's dotted name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2")


class ConfigError(ValueError):
    """params.yaml is missing, unreadable or invalid."""


class _Strict(BaseModel):
    # extra="forbid" turns a misspelt key into an error instead of a silent default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Strict):
    source: Literal["demo-arrests", "demo-diabetes", "csv"]
    csv_path: str | None = None
    target: str
    positive_class: str | None = None
    sensitive_features: list[str] = []
    use_sensitive_features: bool = False
    time_column: str | None = None

    @model_validator(mode="after")
    def _csv_needs_path(self) -> DataSettings:
        if self.source == "csv" and not self.csv_path:
            raise ValueError("data.csv_path is required when data.source is 'csv'")
        return self


class SplitSettings(_Strict):
    test_size: float = Field(gt=0, lt=1)
    seed: int


class LinearModel(_Strict):
    kind: Literal["linear"]
    # Larger means simpler: C = 1/regularization for LogisticRegression, alpha for Ridge.
    regularization: float = Field(gt=0)
    max_iter: int = Field(default=1000, gt=0)


class RandomForestModel(_Strict):
    kind: Literal["random_forest"]
    n_estimators: int = Field(gt=0)
    max_depth: int | None = Field(default=None, gt=0)
    min_samples_leaf: int = Field(default=1, gt=0)


class GradientBoostingModel(_Strict):
    kind: Literal["gradient_boosting"]
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    max_leaf_nodes: int = Field(default=31, gt=1)


ModelSettings = Annotated[
    LinearModel | RandomForestModel | GradientBoostingModel, Field(discriminator="kind")
]


class TrainSettings(_Strict):
    seed: int
    model: ModelSettings


class Threshold(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs 'min' or 'max'")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class EvaluateSettings(_Strict):
    permutation_repeats: int = Field(ge=1)
    # Absolute quality bounds on the test set, checked by the model tests.
    thresholds: dict[str, Threshold] = {}


class GatedMetric(_Strict):
    direction: Literal["higher", "lower"]  # which way is better
    tolerance: float = Field(ge=0)  # how much worse than the base branch a PR may make it


class GateSettings(_Strict):
    """The pull-request gate: what may not get worse, and by how much."""

    metrics: dict[str, GatedMetric]
    # A slice metric (per group of a sensitive feature) may worsen by this fraction of its base value.
    slice_tolerance: float = Field(ge=0)
    # The model must beat the trivial baseline on these (each also listed in `metrics`).
    beat_baseline: list[str] = []

    @model_validator(mode="after")
    def _baseline_metrics_have_a_direction(self) -> GateSettings:
        missing = [name for name in self.beat_baseline if name not in self.metrics]
        if missing:
            raise ValueError(f"gate.beat_baseline: {missing[0]!r} must also be listed in gate.metrics")
        return self


class ServingSettings(_Strict):
    max_body_bytes: int = Field(gt=0)  # larger request bodies get 413
    max_batch_rows: int = Field(gt=0)  # rows in one /predict request
    alias: str = "champion"  # `serve` without --model serves models:/<registered_model>@<alias> if it exists
    reload_seconds: float = Field(default=30, ge=0)  # how often to look for a new model (0: never)
    p99_ms: float = Field(default=50, gt=0)  # the load test's bound on single-row latency (99th percentile)


class CanarySettings(_Strict):
    """The canary (`canary`): the challenger must answer like the champion, without errors, quickly."""

    sample_size: int = Field(default=200, gt=0)  # rows replayed to both models
    # Share of rows on which the two models agree (see `tolerance`).
    min_agreement: float = Field(default=0.85, ge=0, le=1)
    # Classifier: same label and class probabilities within this of the champion's.
    # Regressor: within this fraction of the spread (5th-95th percentile) of the champion's predictions.
    tolerance: float = Field(default=0.1, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)  # share of requests the challenger fails
    max_p99_ms: float = Field(default=100, gt=0)  # 99th percentile of the challenger's latency, at the client


class MlflowSettings(_Strict):
    tracking_uri: str
    experiment: str
    registered_model: str  # name in the model registry (`register`, `promote`, `rollback`)


class Settings(_Strict):
    task: Literal["classification", "regression"]
    data: DataSettings
    split: SplitSettings
    train: TrainSettings
    evaluate: EvaluateSettings
    gate: GateSettings
    serving: ServingSettings
    mlflow: MlflowSettings
    canary: CanarySettings = CanarySettings()

    @model_validator(mode="after")
    def _known_metrics(self) -> Settings:
        allowed = metric_names(self.task)
        for key, names in (
            ("evaluate.thresholds", self.evaluate.thresholds),
            ("gate.metrics", self.gate.metrics),
        ):
            unknown = sorted(set(names) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{key}: unknown metric {unknown[0]!r} for {self.task}; allowed: {', '.join(allowed)}"
                )
        return self

    @property
    def banned_features(self) -> list[str]:
        """Columns that must not reach the model."""
        return [] if self.data.use_sensitive_features else list(self.data.sensitive_features)


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


@dataclass(frozen=True)
class Paths:
    """Where every stage reads and writes, relative to the project root (as in dvc.yaml)."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def contract(self) -> Path:
        return self.root / "schema.yaml"

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / "data.csv"

    @property
    def train(self) -> Path:
        return self.root / "data" / "prepared" / "train.csv"

    @property
    def test(self) -> Path:
        return self.root / "data" / "prepared" / "test.csv"

    @property
    def model(self) -> Path:
        return self.root / "models" / "model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def plots(self) -> Path:
        return self.root / "plots"


def parse_settings(raw: object, source: str = "params.yaml") -> Settings:
    """Validate already-parsed params; errors name the dotted key."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
        where = f"{source}: {key}" if key else source
        raise ConfigError(f"{where}: {first['msg']}") from None


def _is_union_tag(part: object) -> bool:
    # pydantic puts the discriminator value ("linear") into error locations; it is not a key.
    return part in ("linear", "random_forest", "gradient_boosting")


def load_settings(path: Path) -> Settings:
    """Read params.yaml; MLFLOW_TRACKING_URI in the environment overrides the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run commands from the project root)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    settings = parse_settings(raw, source=path.name)
    override = os.environ.get("MLFLOW_TRACKING_URI")
    if override:
        mlflow = settings.mlflow.model_copy(update={"tracking_uri": override})
        settings = settings.model_copy(update={"mlflow": mlflow})
    return settings
