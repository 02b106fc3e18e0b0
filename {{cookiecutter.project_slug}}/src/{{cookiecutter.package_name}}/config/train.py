"""params.yaml `train:`: the model kind, its hyperparameters and the decision rule."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .reading import Strict


class LinearModel(Strict):
    kind: Literal["linear"]
    # Larger means simpler: C = 1/regularization for LogisticRegression, alpha for Ridge.
    regularization: float = Field(gt=0)
    max_iter: int = Field(default=1000, gt=0)


class RandomForestModel(Strict):
    kind: Literal["random_forest"]
    n_estimators: int = Field(gt=0)
    max_depth: int | None = Field(default=None, gt=0)
    min_samples_leaf: int = Field(default=1, gt=0)


class GradientBoostingModel(Strict):
    kind: Literal["gradient_boosting"]
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    max_leaf_nodes: int = Field(default=31, gt=1)


ModelSettings = Annotated[
    LinearModel | RandomForestModel | GradientBoostingModel, Field(discriminator="kind")
]


class TrainSettings(Strict):
    seed: int
    model: ModelSettings
    # Classification: the label is the class with the largest probability over its share of
    # the training labels (balanced), or the most likely class (most_likely).
    decision: Literal["balanced", "most_likely"] = "balanced"
    # true: the tune stage's best hyperparameters (reports/tuning.json) replace model's of the
    # same name. Default false, so that a base branch older than the tune stage still loads.
    use_tuned: bool = False
