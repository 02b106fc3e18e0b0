"""Has a column moved between the training data and the served rows? Effect size and significance.

The population stability index (PSI) measures how far the distribution moved (over reference
deciles for numbers, over values for categories); the two-sample KS test (numbers) or the
chi-square test (categories) says whether that is more than sampling noise. A column drifts when
both say so: a huge sample makes any tiny shift significant, a tiny one makes noise look large.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

BINS = 10
FLOOR = 1e-4  # an empty bin's share: PSI's logarithm needs both shares above 0
MISSING = "(missing)"


@dataclass(frozen=True)
class Drift:
    column: str
    kind: str  # "number" or "category"
    psi: float
    p_value: float
    reference_rows: int
    served_rows: int

    def drifted(self, max_psi: float, alpha: float) -> bool:
        return self.psi > max_psi and self.p_value < alpha


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two vectors of shares over the same bins."""
    e, a = np.maximum(expected, FLOOR), np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(column: str, reference: np.ndarray, served: np.ndarray) -> Drift:
    """Decile bins of the reference (missing values left out of both: their share is a category's job)."""
    from scipy.stats import ks_2samp

    ref, cur = reference[~np.isnan(reference)], served[~np.isnan(served)]
    if len(ref) == 0 or len(cur) == 0:
        return Drift(column, "number", 0.0, 1.0, len(ref), len(cur))
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1]))
    shares = [
        np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1) / len(v)
        for v in (ref, cur)
    ]
    p_value = float(ks_2samp(ref, cur).pvalue)
    return Drift(column, "number", psi(shares[0], shares[1]), p_value, len(ref), len(cur))


def category_drift(column: str, reference: list[str], served: list[str]) -> Drift:
    """Shares of each value (missing counted as a value of its own); chi-square on the counts."""
    from scipy.stats import chi2_contingency

    values = sorted(set(reference) | set(served))
    tallies = Counter(reference), Counter(served)
    counts = np.array([[tally[value] for value in values] for tally in tallies])
    if len(values) < 2 or not len(reference) or not len(served):
        return Drift(column, "category", 0.0, 1.0, len(reference), len(served))
    shares = counts / counts.sum(axis=1, keepdims=True)
    seen = counts.sum(axis=0) > 0
    p_value = float(chi2_contingency(counts[:, seen]).pvalue)
    return Drift(column, "category", psi(shares[0], shares[1]), p_value, len(reference), len(served))


def as_numbers(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def as_categories(values: list) -> list[str]:
    return [MISSING if v is None or v != v else str(v) for v in values]


def column_drift(column: str, numeric: bool, reference: list, served: list) -> Drift:
    if numeric:
        return numeric_drift(column, as_numbers(reference), as_numbers(served))
    return category_drift(column, as_categories(reference), as_categories(served))
