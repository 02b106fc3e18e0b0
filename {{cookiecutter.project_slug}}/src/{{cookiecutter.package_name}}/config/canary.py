"""params.yaml `canary:`: the bounds a challenger must keep against the champion."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class CanarySettings(Strict):
    """The canary (`canary`): the challenger must answer like the champion, without errors, quickly."""

    sample_size: int = Field(default=200, gt=0)  # rows replayed to both models
    # Share of rows on which the two models agree (see `tolerance`).
    min_agreement: float = Field(default=0.85, ge=0, le=1)
    # Classifier: same label and class probabilities within this of the champion's.
    # Regressor: within this fraction of the spread (5th-95th percentile) of the champion's predictions.
    tolerance: float = Field(default=0.1, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)  # share of requests the challenger fails
    max_p99_ms: float = Field(default=100, gt=0)  # 99th percentile of the challenger's latency, at the client
