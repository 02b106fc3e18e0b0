"""The whole of params.yaml: every section, and the rules that span sections.

The check stage validates the file with this before any stage runs, and the commands outside
the pipeline (register, canary, serve, ...) load it; each stage reads only its own sections.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, model_validator

from ..metrics import metric_names
from .backtest import BacktestSettings
from .canary import CanarySettings
from .card import CardSettings
from .data import DataSettings
from .evaluate import EvaluateSettings
from .features import FeaturesSettings
from .gate import GateSettings
from .mlflow import MlflowSettings
from .monitor import MonitorSettings
from .reading import Sections, Task
from .serving import ServingSettings
from .split import SplitSettings
from .train import TrainSettings
from .tune import TuneSettings


class Settings(Sections):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # the whole file: no stray key

    task: Task
    data: DataSettings
    split: SplitSettings
    train: TrainSettings
    tune: TuneSettings = TuneSettings()  # a base branch older than the tune stage has none
    evaluate: EvaluateSettings
    gate: GateSettings
    serving: ServingSettings
    mlflow: MlflowSettings
    canary: CanarySettings = CanarySettings()
    backtest: BacktestSettings = BacktestSettings()  # optional: older params.yaml files have none
    features: FeaturesSettings = FeaturesSettings()
    card: CardSettings = CardSettings()  # optional: older params.yaml files have none
    monitor: MonitorSettings = MonitorSettings()  # optional: older params.yaml files have none

    @model_validator(mode="after")
    def _known_metrics(self) -> Settings:
        allowed = metric_names(self.task)
        for key, names in (
            ("evaluate.thresholds", self.evaluate.thresholds),
            ("gate.metrics", self.gate.metrics),
            ("tune.metric", [self.tune.metric] if self.tune.metric else []),
            ("backtest.metric", [self.backtest.metric] if self.backtest.metric else []),
        ):
            unknown = sorted(set(names) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{key}: unknown metric {unknown[0]!r} for {self.task}; allowed: {', '.join(allowed)}"
                )
        return self

    @model_validator(mode="after")
    def _sensitive_fields_not_logged_in_clear(self) -> Settings:
        for name, rule in self.serving.log.context.items():
            if rule == "keep" and name in self.data.sensitive_features:
                raise ValueError(
                    f"serving.log.context.{name}: a sensitive feature (data.sensitive_features) "
                    "is logged as hash or drop, never keep"
                )
        return self


def parse_settings(raw: object, source: str = "params.yaml") -> Settings:
    """Validate already-parsed params; errors name the dotted key (the first problem only)."""
    return Settings.parse(raw, source)


def settings_problems(raw: object, source: str = "params.yaml") -> list[str]:
    """Every problem in already-parsed params, one line each; [] when they are valid."""
    return Settings.problems(raw, source)


def load_settings(path: Path) -> Settings:
    """Read params.yaml; MLFLOW_TRACKING_URI in the environment overrides the file."""
    return Settings.load(path)
