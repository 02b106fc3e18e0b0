"""Known examples proposed from the test set: `{{ cookiecutter.package_name }} examples record`.

A few test rows the current model answers well, each with its output and bounds no wider
than the canary's tolerance (`canary.tolerance`): a model that learnt nothing (trained on
shuffled labels) answers outside them. They go to tests/model/known_examples.yaml for a
person to review; tests/model/test_known_examples.py checks them against every model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .config.settings import Settings
    from .paths import Paths

DEFAULT_COUNT = 5
DIGITS = 3


@dataclass(frozen=True)
class Example:
    name: str
    inputs: dict[str, object]
    low: float
    high: float
    measured: float
    label: object = None  # classification: the class whose probability is bounded

    def as_yaml(self) -> str:
        import yaml

        def flow(value: object) -> str:
            text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
            return text.removesuffix("...\n").strip()  # a lone scalar ends its "document"

        lines = [f"  - name: {flow(self.name)}", f"    input: {flow(self.inputs)}"]
        if self.label is not None:
            lines.append(f"    class: {flow(self.label)}")
        expect = flow({"min": self.low, "max": self.high})
        lines.append(f"    expect: {expect}  # measured {self.measured:.4g}")
        return "\n".join(lines)


def plain(value: object) -> object:
    """A cell as YAML writes it: numpy scalars as Python numbers, a missing value as null."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def bounds(
    measured: float, within: float, low: float = -math.inf, high: float = math.inf
) -> tuple[float, float]:
    """measured ± within, rounded outward to DIGITS places, clipped to [low, high]."""
    scale = 10**DIGITS
    return (
        max(low, round(math.floor((measured - within) * scale) / scale, DIGITS)),
        min(high, round(math.ceil((measured + within) * scale) / scale, DIGITS)),
    )


def round_robin(groups: list[list[int]], count: int) -> list[int]:
    """The first of every group, then the second of every group, ... until `count` are taken."""
    picked: list[int] = []
    for rank in range(max((len(group) for group in groups), default=0)):
        picked += [group[rank] for group in groups if rank < len(group)]
    return picked[:count]


def confident_rows(
    proba: np.ndarray, classes: list, true: np.ndarray, predicted: np.ndarray, count: int
) -> list[int]:
    """Rows predicted right, every class covered: per class, the most confident first."""
    import numpy as np

    groups = []
    for column, label in enumerate(classes):
        rows = np.flatnonzero((true == label) & (predicted == label))
        groups.append([int(i) for i in rows[np.argsort(-proba[rows, column], kind="stable")]])
    return round_robin(groups, count)


def spread_rows(predicted: np.ndarray, true: np.ndarray, count: int) -> list[int]:
    """Rows predicted well, spread over the target: the best predicted row near each of
    `count` quantiles of the target."""
    import numpy as np

    error = np.abs(predicted - true)
    good = np.flatnonzero(error <= np.median(error))
    picked: list[int] = []
    for q in np.linspace(0.1, 0.9, count):
        aim = np.quantile(true, q)
        free = [i for i in good if i not in picked]
        if free:
            picked.append(int(min(free, key=lambda i: abs(true[i] - aim))))
    return picked


def propose(model, test_set: pd.DataFrame, settings: Settings, count: int = DEFAULT_COUNT) -> list[Example]:
    """About `count` examples from the test set, with the model's outputs as bounds."""
    import numpy as np

    target = settings.data.target
    complete = test_set.dropna()  # rows without missing values read best as examples
    pool = (complete if len(complete) >= count else test_set).reset_index(names="row")
    features = pool[list(model.feature_names_in_)]
    true = pool[target].to_numpy()
    tolerance = settings.canary.tolerance
    examples = []
    if settings.task == "regression":
        predicted = np.asarray(model.predict(features), dtype=float)
        # The canary's rule: tolerance times the 5th-95th percentile spread over the whole test set.
        spread = np.percentile(model.predict(test_set[list(model.feature_names_in_)]), [95, 5])
        within = tolerance * float(spread[0] - spread[1])
        for i in spread_rows(predicted, true.astype(float), count):
            low, high = bounds(float(predicted[i]), within)
            name = f"test set row {pool['row'][i]}: {target} {plain(true[i])}"
            examples.append(Example(name, row_inputs(pool, i, target), low, high, float(predicted[i])))
        return examples
    proba = model.predict_proba(features)
    classes = list(model.classes_)
    for i in confident_rows(proba, classes, true, model.predict(features), count):
        label = true[i]
        measured = float(proba[i, classes.index(label)])
        low, high = bounds(measured, tolerance, 0.0, 1.0)
        name = f"test set row {pool['row'][i]}: {target} {plain(label)}"
        examples.append(Example(name, row_inputs(pool, i, target), low, high, measured, plain(label)))
    return examples


def row_inputs(frame: pd.DataFrame, i: int, target: str) -> dict[str, object]:
    return {str(name): plain(value) for name, value in frame.iloc[i].items() if name not in (target, "row")}


def with_examples(text: str, examples: list[Example], source: str) -> str:
    """known_examples.yaml with its `examples:` replaced, its comments and `directional:` kept."""
    import yaml

    header = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    directional = (yaml.safe_load(text) or {}).get("directional") or []
    recorded = [
        f"# Recorded by `{{ cookiecutter.package_name }} examples record` from {source}; the bounds are",
        "# its output ± canary.tolerance. Review each one, keep it or change it, and commit.",
        "examples:",
        *(example.as_yaml() for example in examples),
    ]
    rest = yaml.safe_dump({"directional": directional}, sort_keys=False, width=10**6).strip()
    return "\n".join([*header, *recorded, rest]) + "\n"


def record(settings: Settings, paths: Paths, count: int = DEFAULT_COUNT) -> int:
    """Propose examples for the model in models/model from the test set and write them to
    known_examples.yaml; how many were written."""
    from .artifacts import load_model, model_metadata
    from .data import read_frame
    from .pipeline.stage import StageFailed, relative

    missing = [relative(path, paths) for path in (paths.model, paths.test) if not path.exists()]
    if missing:
        raise StageFailed(f"no {' or '.join(missing)} yet: run `make repro` first")
    model = load_model(paths.model)
    examples = propose(model, read_frame(paths.test), settings, count)
    if not examples:
        raise StageFailed(
            f"the model answers no row of {relative(paths.test, paths)} right: nothing to record"
        )
    run_id = model_metadata(paths.model).get("mlflow_run_id", "")
    source = relative(paths.model, paths) + (f" (MLflow run {run_id[:8]})" if run_id else "")
    text = paths.known_examples.read_text(encoding="utf-8") if paths.known_examples.is_file() else ""
    paths.known_examples.write_text(with_examples(text, examples, source), encoding="utf-8")
    return len(examples)


def recorded_examples(path: Path) -> list:
    """The examples in known_examples.yaml ([] with no file); StageFailed if it is not a mapping."""
    import yaml

    from .pipeline.stage import StageFailed

    if not path.is_file():
        return []
    try:
        known = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise StageFailed(f"{path.name} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(known, dict):
        raise StageFailed(f"{path.name} must be a mapping with `examples:` and `directional:` lists")
    return known.get("examples") or []
