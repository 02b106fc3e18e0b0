"""params.yaml `backtest:`: how model age is measured against quality (reports/staleness.json)."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class BacktestSettings(Strict):
    # Model ages compared, the freshest included: each model is trained on a window of the
    # training periods ending one period earlier than the previous one.
    windows: int = Field(default=3, ge=2)
    # The metric (metrics.py) and how much worse than the freshest model's it may get (absolute)
    # before a model counts as too old. None: the task's headline metric.
    metric: str | None = None
    tolerance: float = Field(default=0.02, gt=0)
