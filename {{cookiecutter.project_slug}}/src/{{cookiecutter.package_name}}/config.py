"""Settings: `params.yaml` -> typed, validated settings.

This is the one place that reads `params.yaml`. Every command loads the
settings once and passes them down; a typo or a wrong type fails here, before
any work, with the key's dotted name. Validation is strict: YAML gives numbers
and booleans their types, so a quoted `"1"` is a mistake, not a value to coerce
(an integer is still a valid float: `regularization: 1`). The file is read with
YAML 1.2's rules, as DVC writes it: `true` and `false` are booleans, `yes` and
`no` are words.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .metrics import BETTER, metric_names

# The model server's bearer tokens (environment variables): admin calls and /version's detail;
# a trusted traffic source, whose logged rows the canary may replay.
ADMIN_TOKEN_ENV = "SERVE_ADMIN_TOKEN"
TRUSTED_TOKEN_ENV = "SERVE_TRUSTED_TOKEN"


class ConfigError(ValueError):
    """params.yaml is missing, unreadable or invalid."""


class _Strict(BaseModel):
    # extra="forbid" turns a misspelt key into an error instead of a silent default;
    # strict=True refuses "0.5" for a number and 'yes' for a boolean instead of converting them.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed twice")
    return values


class DataSettings(_Strict):
    source: Literal["demo-arrests", "demo-diabetes", "csv"]
    csv_path: str | None = None
    target: str
    positive_class: str | None = None
    sensitive_features: list[str] = []
    use_sensitive_features: bool = False
    time_column: str | None = None

    @field_validator("positive_class", mode="before")
    @classmethod
    def _class_as_text(cls, value: object) -> object:
        # Labels are compared as text; YAML reads true/false as booleans, 1 as a number.
        if isinstance(value, bool):
            raise ValueError(f'YAML read this as the boolean {value}: quote the class name, e.g. "true"')
        return str(value) if isinstance(value, int) else value

    @field_validator("sensitive_features")
    @classmethod
    def _sensitive_once(cls, value: list[str]) -> list[str]:
        return _no_repeats(value)

    @model_validator(mode="after")
    def _consistent(self) -> DataSettings:
        if self.source == "csv" and not self.csv_path:
            raise ValueError("data.csv_path: required when data.source is 'csv'")
        if self.target in self.sensitive_features:
            raise ValueError(f"data.sensitive_features: {self.target!r} is the target (data.target)")
        if self.time_column == self.target:
            raise ValueError(f"data.time_column: {self.target!r} is the target (data.target)")
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
    # Classification: the label is the class with the largest probability over its share of
    # the training labels (balanced), or the most likely class (most_likely).
    decision: Literal["balanced", "most_likely"] = "balanced"


class Threshold(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max}): no value could pass")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class EvaluateSettings(_Strict):
    permutation_repeats: int = Field(ge=1)
    # Absolute quality bounds on the test set, checked by the model tests.
    thresholds: dict[str, Threshold] = {}


class GatedMetric(_Strict):
    tolerance: float = Field(ge=0)  # how much worse than the base branch a PR may make it
    # Which way is better is the metric's own (metrics.BETTER). Params of older bases still
    # name it: accepted when it agrees, and never part of the policy (a PR dropping it changes nothing).
    direction: Literal["higher", "lower"] | None = Field(default=None, exclude=True)


class GateSettings(_Strict):
    """The pull-request gate: what may not get worse, and by how much."""

    metrics: dict[str, GatedMetric]
    # A slice metric (per group of a sensitive feature) may worsen by this fraction of its base value.
    slice_tolerance: float = Field(ge=0)
    # The model must beat the trivial baseline on these (each also listed in `metrics`).
    beat_baseline: list[str] = []

    @field_validator("beat_baseline")
    @classmethod
    def _baseline_once(cls, value: list[str]) -> list[str]:
        return _no_repeats(value)

    @model_validator(mode="after")
    def _known_and_consistent(self) -> GateSettings:
        unknown = sorted(set(self.metrics) - set(BETTER))
        if unknown:
            raise ValueError(f"gate.metrics: unknown metric {unknown[0]!r}; allowed: {', '.join(BETTER)}")
        for name, gated in self.metrics.items():
            if gated.direction not in (None, BETTER[name]):  # a flipped direction would pass every regression
                raise ValueError(
                    f"gate.metrics.{name}.direction: {gated.direction!r}, but {BETTER[name]} is better "
                    f"for {name} (the metric decides; the key can go)"
                )
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
    # A request's head, then its body, must arrive within this (408, or the connection is closed).
    body_timeout_seconds: float = Field(default=10, gt=0)


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
    def check(self) -> Path:
        """The check stage's mark: written, always the same, when params and inputs fit every stage."""
        return self.root / "data" / "check.json"

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
    def known_examples(self) -> Path:
        """Inputs with the answer a sound model must give (tests/model/test_known_examples.py)."""
        return self.root / "tests" / "model" / "known_examples.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def validation(self) -> Path:
        return self.reports / "validation.json"

    @property
    def slices(self) -> Path:
        return self.reports / "slices.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def lock(self) -> Path:
        """DVC's record of what each stage last ran on (data hashes included)."""
        return self.root / "dvc.lock"

    @property
    def prediction_log(self) -> Path:
        return self.root / "logs" / "predictions.jsonl"


def parse_settings(raw: object, source: str = "params.yaml") -> Settings:
    """Validate already-parsed params; errors name the dotted key (the first problem only)."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err.errors()[0], source)) from None


def settings_problems(raw: object, source: str = "params.yaml") -> list[str]:
    """Every problem in already-parsed params, one line each; [] when they are valid."""
    try:
        Settings.model_validate(raw)
    except ValidationError as err:
        return list(dict.fromkeys(format_error(error, source) for error in err.errors()))
    return []


def format_error(error: Mapping[str, Any], source: str) -> str:
    """One pydantic error as `source: dotted.key: message`."""
    key = ".".join(str(part) for part in error["loc"] if not _is_union_tag(part))
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden", "value_error") and _is_scalar(value):
        message += f", got {value!r}"  # the repr shows a quoted "0.5" as the string it is
    if not key or message.startswith(f"{key}."):  # our validators name the exact key themselves
        return f"{source}: {message}"
    return f"{source}: {key}: {message}"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_union_tag(part: object) -> bool:
    # pydantic puts the discriminator value ("linear") into error locations; it is not a key.
    return part in ("linear", "random_forest", "gradient_boosting")


# YAML 1.2's booleans: only true and false. DVC (`dvc exp run -S`) rewrites params.yaml with
# YAML 1.2 rules, which leave `positive_class: Yes` unquoted; YAML 1.1 would read it as True.
BOOL_TAG = "tag:yaml.org,2002:bool"
YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _ParamsLoader(yaml.SafeLoader):
    """params.yaml as DVC writes it (YAML 1.2 booleans), refusing a key given twice in one mapping
    (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges may override keys on purpose
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@functools.cache
def params_loader() -> type[_ParamsLoader]:
    """The loader with YAML 1.1's booleans (yes, no, on, off, ...) replaced by YAML 1.2's."""

    class Yaml12ParamsLoader(_ParamsLoader):
        pass

    Yaml12ParamsLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12ParamsLoader.add_implicit_resolver(BOOL_TAG, YAML12_BOOL, list("tTfF"))
    return Yaml12ParamsLoader


def parse_params(text: str, source: str) -> object:
    """params.yaml's text as plain data; broken YAML is a ConfigError naming the line."""
    try:
        return yaml.load(text, Loader=params_loader())  # a SafeLoader: plain data only
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or err.__class__.__name__
        raise ConfigError(f"{source}: not valid YAML{where} ({problem})") from None


def read_params(path: Path) -> object:
    """params.yaml as plain data; a missing file or broken YAML is a ConfigError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run commands from the project root)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err.__class__.__name__})") from None
    return parse_params(text, str(path))


def load_settings(path: Path) -> Settings:
    """Read params.yaml; MLFLOW_TRACKING_URI in the environment overrides the file."""
    settings = parse_settings(read_params(path), source=path.name)
    override = os.environ.get("MLFLOW_TRACKING_URI")
    if override:
        mlflow = settings.mlflow.model_copy(update={"tracking_uri": override})
        settings = settings.model_copy(update={"mlflow": mlflow})
    return settings
