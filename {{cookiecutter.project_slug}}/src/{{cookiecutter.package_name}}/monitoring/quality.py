"""Online quality: the served answers of each model version against their delayed labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .window import ServedRow

ONLINE_METRIC = {"classification": "accuracy", "regression": "mae"}


@dataclass(frozen=True)
class Quality:
    model_version: str
    labelled: int
    online: float | None  # None: no labelled row was answered


def online_quality(rows: list[ServedRow], labels: dict, task: str) -> list[Quality]:
    """Per model version, in order of first appearance: its labelled rows and their metric."""
    pairs: dict[str, list[tuple[object, object]]] = {}
    for row in rows:
        label = labels.get((row.request_id, row.row))
        if label is not None and row.output is not None:
            pairs.setdefault(row.model_version, []).append((row.output, label))
        else:
            pairs.setdefault(row.model_version, [])
    return [Quality(version, len(found), metric(found, task)) for version, found in pairs.items()]


def metric(pairs: list[tuple[object, object]], task: str) -> float | None:
    if not pairs:
        return None
    if task == "classification":
        return sum(str(output) == str(label) for output, label in pairs) / len(pairs)
    errors = [abs(float(output) - float(label)) for output, label in pairs]  # type: ignore[arg-type]
    return sum(errors) / len(errors) if all(map(math.isfinite, errors)) else None


def rank_correlation(offline: list[float], online: list[float]) -> float | None:
    """Spearman's rho of the two series; None when either is constant (there is no order to compare)."""
    from scipy.stats import spearmanr

    if len(set(offline)) < 2 or len(set(online)) < 2:
        return None
    return float(spearmanr(offline, online).statistic)


def quality_drop(online: float, offline: float, task: str) -> float:
    """How much worse online is: accuracy points lost, or the MAE's relative growth."""
    if task == "classification":
        return offline - online
    return (online - offline) / offline if offline > 0 else (math.inf if online > 0 else 0.0)
