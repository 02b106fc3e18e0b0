"""params.yaml `features:`: what each model input may cost (`features cost`, tests/model)."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class FeatureBudget(Strict):
    # Preprocessing one input, per row, in microseconds (the median of `repeats` timings).
    max_transform_us_per_row: float = Field(default=200, gt=0)
    # The input's encoded columns, per row, in bytes (a one-hot of 1,000 categories: 8,000).
    max_encoded_bytes_per_row: float = Field(default=2_000, gt=0)


class FeaturesSettings(Strict):
    repeats: int = Field(default=7, ge=1, le=100)  # timings per measurement; the median counts
    budget: FeatureBudget = FeatureBudget()
