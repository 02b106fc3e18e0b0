"""What each model input is worth (ML Test Score D2): an interval on its permutation importance.

Permutation importance is repeated (`evaluate.permutation_repeats`), each repeat on its own
resample of the test rows (pipeline/evaluate.py); the interval is Student's t over those repeats,
mean ± t(0.975, n-1)·std/√n. It holds the noise of the shuffles and of the test set, not of
training: an input whose interval does not lie wholly above 0 made no difference that could be told
from chance, so it has no measurable value (an input the model never uses scores exactly 0 on every
repeat). Its interval in metrics.json ("importance") is what the gate reads;
`gate.require_feature_value` fails a pull request on such inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

LEVEL = 0.95
SECTION = "importance"  # metrics.json: {"importance": {input: {"mean", "low", "high"}}}


def importance_intervals(
    names: list[str], repeats: np.ndarray, digits: int = 6
) -> dict[str, dict[str, float]]:
    """Each input's mean importance and its interval, from an (inputs x repeats) array; at least
    two repeats (one gives no spread)."""
    from scipy import stats

    count = repeats.shape[1]
    if count < 2:
        raise ValueError(f"an importance interval needs at least 2 repeats, got {count}")
    quantile = float(stats.t.ppf(0.5 + LEVEL / 2, count - 1))
    result = {}
    for name, values in zip(names, repeats, strict=True):
        mean = float(np.mean(values))
        half = quantile * float(np.std(values, ddof=1)) / math.sqrt(count)
        result[str(name)] = {
            "mean": round(mean, digits),
            "low": round(mean - half, digits),
            "high": round(mean + half, digits),
        }
    return result


def without_value(flat: Mapping[str, float | None]) -> list[str]:
    """The inputs whose interval does not lie wholly above 0, from metrics.json flattened as DVC
    does ("importance.<input>.low"; an input's name may hold dots), in name order."""
    prefix, suffix = f"{SECTION}.", ".low"
    return sorted(
        name.removeprefix(prefix).removesuffix(suffix)
        for name, value in flat.items()
        if name.startswith(prefix) and name.endswith(suffix) and (value is None or value <= 0)
    )


def measured(flat: Mapping[str, object]) -> bool:
    """metrics.json holds importance intervals (an older pipeline's does not)."""
    return any(name.startswith(f"{SECTION}.") for name in flat)
