"""params.yaml `evaluate:`: permutation importance, the simple model and absolute quality bounds."""

from __future__ import annotations

from pydantic import Field, model_validator

from .reading import Strict


class Threshold(Strict):
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


class EvaluateSettings(Strict):
    permutation_repeats: int = Field(ge=2)  # an importance interval needs a spread (feature_value.py)
    # The simple model (pipeline/simple.py) uses this many inputs: the best alone on the training set.
    simple_features: int = Field(default=2, ge=1)
    # Absolute quality bounds on the test set, checked by the model tests.
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
