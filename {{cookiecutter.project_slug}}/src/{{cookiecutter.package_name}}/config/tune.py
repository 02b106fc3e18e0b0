"""params.yaml `tune:`: the hyperparameter search (Optuna), its budget and its search spaces.

The number of trials decides the result; the timeout only fails a search that runs too long,
so the tuned hyperparameters never depend on how fast the machine is.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .reading import Strict
from .train import GradientBoostingModel, LinearModel, RandomForestModel

# The hyperparameters each model kind may search, and their type (config/train.py's fields).
MODEL_FIELDS = {
    "linear": LinearModel.model_fields,
    "random_forest": RandomForestModel.model_fields,
    "gradient_boosting": GradientBoostingModel.model_fields,
}


class Range(Strict):
    """A hyperparameter drawn from [low, high]; whole numbers for an integer hyperparameter."""

    low: int | float
    high: int | float
    log: bool = False  # draw uniformly on a log scale (for scales such as regularization)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


class SearchSpaces(Strict):
    """Per model kind: the hyperparameters tuned, each with its range (the others stay train.model's)."""

    linear: dict[str, Range] = Field(default_factory=dict)
    random_forest: dict[str, Range] = Field(default_factory=dict)
    gradient_boosting: dict[str, Range] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> SearchSpaces:
        for kind, fields in MODEL_FIELDS.items():
            allowed = [name for name in fields if name != "kind"]
            for name, bounds in getattr(self, kind).items():
                if name not in allowed:
                    raise ValueError(
                        f"tune.search.{kind}.{name}: not a hyperparameter of {kind}; "
                        f"allowed: {', '.join(allowed)}"
                    )
                wants_int = int in _types(fields[name].annotation)
                if wants_int and not bounds.integer:
                    raise ValueError(
                        f"tune.search.{kind}.{name}: an integer hyperparameter needs whole-number bounds, "
                        f"got low {bounds.low!r}, high {bounds.high!r}"
                    )
        return self

    def of(self, kind: str) -> dict[str, Range]:
        return dict(getattr(self, kind))


def _types(annotation: object) -> set[object]:
    """The types an annotation allows (`int | None` -> {int, NoneType})."""
    return set(getattr(annotation, "__args__", ())) or {annotation}


class TuneSettings(Strict):
    n_trials: int = Field(default=30, ge=1)  # decides the result: the same trials on any machine
    cv_folds: int = Field(default=3, ge=2)  # cross-validation on the training set only
    seed: int = 0  # Optuna's TPE sampler and the folds
    # Cross-validated metric the search optimises (its direction from metrics.py).
    metric: str | None = None  # null: roc_auc (classification) or rmse (regression)
    # A guard, not a budget: a search still running after this many seconds fails the stage.
    timeout_seconds: float = Field(default=1800, gt=0)
    # Optuna's RDB storage (SQLAlchemy URL): sqlite by default; PostgreSQL for parallel workers.
    storage: str = "sqlite:///.optuna/tune.db"
    # Processes that search the one study side by side (each trial cross-validates on one core):
    # 1 keeps the search reproducible to the trial; more share tune.storage, whose best value
    # stays within noise of one worker's.
    workers: int = Field(default=1, ge=1, le=64)
    study: str = Field(default="tune", min_length=1)  # replaced by a fresh study on every run
    search: SearchSpaces = SearchSpaces()
