"""reports/tuning.json: what the tune stage found, and how train takes it (train.use_tuned).

The tune stage writes it; train reads it. The tuned hyperparameters replace train.model's of
the same name; train.model's other keys stay as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from .config.train import ModelSettings, TrainSettings


def read_report(path: Path) -> dict:
    """The tuning report; missing or unreadable: one line saying how to make it."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"{path.name}: not found, and train.use_tuned is true: run the tune stage (dvc repro tune)"
        ) from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path.name}: cannot be read ({err.__class__.__name__})") from None
    if isinstance(report, dict) and report.get("tuned") is False:
        raise ValueError(f"{path.name}: no search ran (train.use_tuned was false): run the tune stage again")
    if not isinstance(report, dict) or not isinstance(report.get("best"), dict):
        raise ValueError(f"{path.name}: not a tuning report (no 'best' entry): run the tune stage again")
    return report


def tuned_model(model: ModelSettings, report: dict) -> ModelSettings:
    """train.model with the report's best hyperparameters over it; a report for another model
    kind, or hyperparameters the kind does not take, is a one-line error."""
    tuned_kind = report.get("model")
    if tuned_kind != model.kind:
        raise ValueError(
            f"reports/tuning.json tuned a {tuned_kind} model, train.model.kind is {model.kind}: "
            "run the tune stage again (dvc repro tune)"
        )
    params = report["best"].get("params")
    if not isinstance(params, dict):
        raise ValueError("reports/tuning.json: best.params is not a mapping: run the tune stage again")
    try:
        return TypeAdapter(ModelSettings).validate_python(model.model_dump() | params, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "params"
        raise ValueError(f"reports/tuning.json: best.params.{where}: {first['msg']}") from None


def tuned_train(train: TrainSettings, report: dict | None) -> TrainSettings:
    """train as the train stage uses it: the tuned model when train.use_tuned, else as given."""
    if not train.use_tuned:
        return train
    if report is None:
        raise ValueError("train.use_tuned is true but there is no tuning report: run the tune stage")
    return train.model_copy(update={"model": tuned_model(train.model, report)})
