"""Training/serving skew: logged rows recomputed by the model's own pipeline, as training scores."""

from __future__ import annotations

import math

from ..serving.fast_path import slow_predict
from ..serving.sources import Served
from .window import ServedRow

TOLERANCE = 1e-6  # the compiled path agrees with the pipeline to ~1e-12: beyond this it is skew


def skewed_rows(model: Served, rows: list[ServedRow]) -> int:
    """How many rows' served answers (label or value, and each class's probability) differ."""
    expected, probabilities = slow_predict(model.pipeline, list(model.inputs), [row.inputs for row in rows])
    skewed = 0
    for index, row in enumerate(rows):
        served_probabilities = row.probabilities
        if probabilities is not None and served_probabilities is not None:
            classes = model.classes or ()
            wanted = dict(zip(classes, probabilities[index], strict=True))
            if any(not close(served_probabilities.get(name), p) for name, p in wanted.items()):
                skewed += 1
                continue
        if not same_answer(row.output, expected[index]):
            skewed += 1
    return skewed


def close(served: object, expected: float) -> bool:
    return isinstance(served, int | float) and math.isclose(
        float(served), expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE
    )


def same_answer(served: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(served, int | float):
        return close(served, expected)
    return str(served) == str(expected)
