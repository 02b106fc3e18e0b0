"""params.yaml `evaluate:`: permutation importance, the simple model, absolute quality bounds,
slices and fairness."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .reading import Strict, no_repeats


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
    # Columns whose groups are scored one by one (reports/slices.json); null: data.sensitive_features.
    slices: list[str] | None = None
    # A group with fewer test rows is reported as too small to judge: no metrics, no bounds. Part of
    # the gate's policy (gate/policy.py): a pull request cannot raise it to hide a group.
    min_group_size: int = Field(default=30, ge=1)
    # Resamples of the test rows for the fairness differences' 95% intervals (seeded by train.seed).
    fairness_bootstrap_rounds: int = Field(default=1000, ge=10, le=100_000)

    @field_validator("slices")
    @classmethod
    def _slices_once(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else no_repeats(value)
