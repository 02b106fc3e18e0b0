"""params.yaml `canary:`: the bounds a challenger must keep against the champion."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class CanarySettings(Strict):
    """The canary (`canary`): the challenger must answer like the champion, without errors, quickly,
    and cost not much more than it to serve and to train."""

    sample_size: int = Field(default=200, gt=0)  # rows replayed to both models
    # Share of rows on which the two models agree (see `tolerance`).
    min_agreement: float = Field(default=0.85, ge=0, le=1)
    # Classifier: same label and class probabilities within this of the champion's.
    # Regressor: within this fraction of the spread (5th-95th percentile) of the champion's predictions.
    tolerance: float = Field(default=0.1, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)  # share of requests the challenger fails
    max_p99_ms: float = Field(default=100, gt=0)  # 99th percentile of the challenger's latency, at the client
    # Against the champion, measured in the same run: how many times its figure the challenger's may be.
    max_slowdown: float = Field(default=1.5, gt=0)  # median request time
    max_memory_growth: float = Field(default=1.5, gt=0)  # peak resident memory of its server
    max_training_slowdown: float = Field(default=3.0, gt=0)  # the train stage's fit
    # Fits shorter than this count as this long: timing noise is no regression.
    min_training_seconds: float = Field(default=5.0, ge=0)
