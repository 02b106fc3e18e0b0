"""params.yaml `gate:`: the pull-request gate's tolerances against the base branch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..metrics import BETTER, BOUNDED_SLICE_METRICS
from .evaluate import Threshold
from .reading import Strict, no_repeats

# The fairness differences that evaluate measures per sensitive feature (pipeline/fairness.py).
FairnessMeasure = Literal["demographic_parity_difference", "equalized_odds_difference"]
MAX_REASON = 200  # characters of gate.allow_sensitive_features


class GatedMetric(Strict):
    tolerance: float = Field(ge=0)  # how much worse than the base branch a PR may make it
    # Which way is better is the metric's own (metrics.BETTER). Params of older bases still
    # name it: accepted when it agrees, and never part of the policy (a PR dropping it changes nothing).
    direction: Literal["higher", "lower"] | None = Field(default=None, exclude=True)


class FairnessBound(Strict):
    max: float = Field(ge=0, le=1)  # a difference of rates between groups lies in [0, 1]


class GateSettings(Strict):
    """The pull-request gate: what may not get worse, and by how much."""

    metrics: dict[str, GatedMetric]
    # A slice metric (per group of a sensitive feature) may worsen by this fraction of its base value.
    slice_tolerance: float = Field(ge=0)
    # The model must beat the trivial baseline on these (each also listed in `metrics`).
    beat_baseline: list[str] = Field(default_factory=list)
    # ... and the simple model (metrics.json: simple) by more than each one's tolerance.
    beat_simple: list[str] = Field(default_factory=list)
    # Noise or a real change (gate/noise.py): resamples of the test rows, and their seed.
    bootstrap_rounds: int = Field(default=1000, ge=100, le=100_000)
    bootstrap_seed: int = Field(default=0, ge=0)
    # Pass a metric whose interval is too wide to judge its tolerance (too few test rows).
    allow_underpowered: bool = False
    # Fail when an input has no measurable value: its permutation importance's 95% interval
    # (metrics.json "importance", feature_value.py) does not lie wholly above 0.
    require_feature_value: bool = False
    # Absolute bounds on every judged group of every slice and every class (reports/slices.json).
    slices: dict[str, Threshold] = Field(default_factory=dict)
    # Bounds on the fairness differences per sensitive feature (per class one-vs-rest for more
    # than two): fails when the whole 95% interval lies above the bound.
    fairness: dict[FairnessMeasure, FairnessBound] = Field(default_factory=dict)
    # data.use_sensitive_features: true fails the gate unless this names the reviewer's reason.
    allow_sensitive_features: str | None = None

    @field_validator("beat_baseline", "beat_simple")
    @classmethod
    def _baseline_once(cls, value: list[str]) -> list[str]:
        return no_repeats(value)

    @field_validator("allow_sensitive_features")
    @classmethod
    def _one_line_reason(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or "\n" in value or len(value) > MAX_REASON:
            raise ValueError(f"the reviewer's reason: one line of 1 to {MAX_REASON} characters")
        return value.strip()

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
        unbounded = sorted(set(self.slices) - set(BOUNDED_SLICE_METRICS))
        if unbounded:
            allowed = ", ".join(BOUNDED_SLICE_METRICS)
            raise ValueError(f"gate.slices: unknown slice metric {unbounded[0]!r}; allowed: {allowed}")
        for key in ("beat_baseline", "beat_simple"):
            missing = [name for name in getattr(self, key) if name not in self.metrics]
            if missing:
                raise ValueError(f"gate.{key}: {missing[0]!r} must also be listed in gate.metrics")
        return self
