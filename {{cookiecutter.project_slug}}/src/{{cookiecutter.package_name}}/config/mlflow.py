"""params.yaml `mlflow:`: the tracking store, the experiment and the registered model's name."""

from __future__ import annotations

from .reading import Strict


class MlflowSettings(Strict):
    tracking_uri: str
    experiment: str
    registered_model: str  # name in the model registry (`register`, `promote`, `rollback`)
