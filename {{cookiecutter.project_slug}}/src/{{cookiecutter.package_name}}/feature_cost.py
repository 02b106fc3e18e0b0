"""What each model input costs (ML Test Score D3): preprocessing time, share of predict time,
and the memory of its encoding, against `features.budget` in params.yaml.

Measured outside the pipeline (the model tests and `features cost`), never by a DVC stage:
timings differ between machines and runs, so nothing the pull-request gate judges and nothing
`dvc repro` writes depends on them. Time is the median of `repeats` timings over all the rows
given; the budget is generous (a check over it means a transform that is far too slow, not a
slow runner). Bytes are exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from .config.features import FeatureBudget


@dataclass(frozen=True)
class FeatureCost:
    feature: str
    transform_us_per_row: float  # its preprocessing, alone, per row
    predict_share: float  # that time as a share of the whole pipeline's predict time
    encoded_bytes_per_row: float  # its encoded columns
    encoded_columns: int


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def encoded_bytes(encoded: object) -> int:
    if hasattr(encoded, "toarray"):  # sparse: what it stores
        return int(sum(getattr(encoded, part).nbytes for part in ("data", "indices", "indptr")))
    return int(np.asarray(encoded).nbytes)


def feature_costs(model: Pipeline, frame: pd.DataFrame, repeats: int) -> list[FeatureCost]:
    """The cost of each input of `model` (preprocessor first, a ColumnTransformer) on `frame`.

    Each input goes through a copy of its fitted group's transformer fitted on that input alone
    (the groups' steps work column by column, so this is its part of the group's work)."""
    preprocessor = model.steps[0][1]
    if not isinstance(preprocessor, ColumnTransformer):
        raise TypeError(f"the model's first step is {type(preprocessor).__name__}, not a ColumnTransformer")
    rows = len(frame)
    inputs = frame[list(model.feature_names_in_)]
    model.predict(inputs)  # warm-up
    predict = median_seconds(lambda: model.predict(inputs), repeats)
    costs = []
    for _name, transformer, columns in preprocessor.transformers_:
        for column in columns:
            single = inputs[[column]] if isinstance(column, str) else inputs.iloc[:, [column]]
            if transformer == "drop":
                continue
            if transformer == "passthrough":
                seconds, encoded = 0.0, single.to_numpy()
            else:
                own = clone(transformer).fit(single)
                encoded = own.transform(single)  # also warms it up: the first call is the slowest
                seconds = median_seconds(partial(own.transform, single), repeats)
            costs.append(
                FeatureCost(
                    feature=str(single.columns[0]),
                    transform_us_per_row=seconds / rows * 1e6,
                    predict_share=seconds / predict if predict > 0 else 0.0,
                    encoded_bytes_per_row=encoded_bytes(encoded) / rows,
                    encoded_columns=int(np.shape(encoded)[1]),
                )
            )
    return costs


def over_budget(costs: list[FeatureCost], budget: FeatureBudget) -> list[str]:
    """One line per input and limit it exceeds; [] when every input is within the budget."""
    problems = []
    for cost in costs:
        if cost.transform_us_per_row > budget.max_transform_us_per_row:
            problems.append(
                f"{cost.feature}: transform {cost.transform_us_per_row:.3g} µs per row, over "
                f"features.budget.max_transform_us_per_row {budget.max_transform_us_per_row:g}"
            )
        if cost.encoded_bytes_per_row > budget.max_encoded_bytes_per_row:
            problems.append(
                f"{cost.feature}: encoding {cost.encoded_bytes_per_row:,.0f} bytes per row "
                f"({cost.encoded_columns} columns), over features.budget.max_encoded_bytes_per_row "
                f"{budget.max_encoded_bytes_per_row:g}"
            )
    return problems


def cost_table(costs: list[FeatureCost], budget: FeatureBudget) -> str:
    """The costs as a GFM table, with the budget."""
    lines = [
        "| input | transform µs/row | share of predict | encoded bytes/row | columns |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c.feature} | {c.transform_us_per_row:.3g} | {c.predict_share:.1%} | "
        f"{c.encoded_bytes_per_row:,.0f} | {c.encoded_columns} |"
        for c in costs
    ]
    lines.append(
        f"\nBudget per input: {budget.max_transform_us_per_row:g} µs per row, "
        f"{budget.max_encoded_bytes_per_row:g} bytes per row (features.budget)."
    )
    return "\n".join(lines)
