"""Noise or a real change: bootstrap intervals of each gated metric's difference, PR - base (pure).

Both branches' per-row test predictions (predictions.py) are resampled. Same rows on both
sides: paired, one resample of the rows for both, so what the two models share cancels out.
Rows that differ (the pull request changed the test set): unpaired, each side resampled on
its own, and the report says so. A resample is a weight per row (how often it was drawn), so
every metric is a weighted sum over the rows, computed for many resamples at once; a test
checks each against pipeline/scoring.py's value on the rows drawn. Seeded: a report is
reproducible. For classifiers McNemar's exact test compares the two sets of labels as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..predictions import Rows

LEVEL = 0.95  # the intervals' coverage
CELLS = 2_000_000  # weights computed at once (resamples x rows), to bound memory


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class McNemar:
    base_only: int  # rows the base labels right and the pull request wrong
    pr_only: int  # the reverse
    p_value: float


@dataclass(frozen=True)
class Significance:
    paired: bool  # the same rows on both sides
    rows: int  # of the pull request
    base_rows: int
    common: int  # row ids on both sides
    rounds: int
    intervals: dict[str, Interval]  # per gated metric: the difference PR - base
    mcnemar: McNemar | None = None  # classifiers, paired only


@dataclass(frozen=True)
class Unjudged:
    """Why the changes could not be told from noise: the point estimates alone decide."""

    reason: str


def significance(pr: Rows, base: Rows, names: Iterable[str], rounds: int, seed: int) -> Significance:
    """The LEVEL interval of PR - base for each metric in `names` that both sides can score."""
    names = [name for name in names if name in scorers(pr) and name in scorers(base)]
    common = len(np.intersect1d(pr.ids, base.ids))
    paired = common == len(pr) == len(base)
    if paired:
        pr, base = pr.subset(np.argsort(pr.ids)), base.subset(np.argsort(base.ids))
    changes = differences(pr, base, names, rounds, np.random.default_rng(seed), paired)
    tail = (1 - LEVEL) / 2 * 100
    intervals = {}
    for name in names:
        low, high = np.nanpercentile(changes[name], [tail, 100 - tail])
        intervals[name] = Interval(float(low), float(high))
    return Significance(
        paired=paired,
        rows=len(pr),
        base_rows=len(base),
        common=common,
        rounds=rounds,
        intervals=intervals,
        mcnemar=mcnemar(pr, base) if paired and pr.classification and base.classification else None,
    )


def metric_intervals(rows: Rows, names: Iterable[str], rounds: int, seed: int) -> dict[str, Interval]:
    """The LEVEL interval of each metric in `names` that these rows can score, over `rounds`
    resamples of the rows (the model card's intervals of its test metrics)."""
    score = scorers(rows)
    names = [name for name in names if name in score]
    rng = np.random.default_rng(seed)
    block = max(1, CELLS // max(len(rows), 1))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, rounds, block):
        drawn = resample_weights(rng, len(rows), min(block, rounds - start))
        for name in names:
            parts[name].append(score[name](drawn))
    tail = (1 - LEVEL) / 2 * 100
    bounds = {name: np.nanpercentile(np.concatenate(parts[name]), [tail, 100 - tail]) for name in names}
    return {name: Interval(float(low), float(high)) for name, (low, high) in bounds.items()}


def mcnemar(pr: Rows, base: Rows) -> McNemar:
    """McNemar's exact test on the labels of the same rows (aligned by id)."""
    from scipy.stats import binomtest

    pr_right, base_right = pr.predicted == pr.truth, base.predicted == base.truth
    base_only = int(np.sum(base_right & ~pr_right))
    pr_only = int(np.sum(pr_right & ~base_right))
    discordant = base_only + pr_only
    p_value = binomtest(min(base_only, pr_only), discordant, 0.5).pvalue if discordant else 1.0
    return McNemar(base_only, pr_only, float(p_value))


def resample_weights(rng: np.random.Generator, rows: int, rounds: int) -> np.ndarray:
    """How often each row is drawn in each of `rounds` resamples with replacement: (rounds, rows)."""
    drawn = rng.integers(0, rows, size=(rounds, rows))
    flat = (drawn + np.arange(rounds)[:, None] * rows).ravel()
    return np.bincount(flat, minlength=rounds * rows).reshape(rounds, rows).astype(float)


def differences(
    pr: Rows, base: Rows, names: list[str], rounds: int, rng: np.random.Generator, paired: bool
) -> dict[str, np.ndarray]:
    """Each metric's PR - base on each of `rounds` resamples (paired: the same draw of the rows
    for both sides), drawn and scored in blocks so memory stays bounded."""
    new, old = scorers(pr), scorers(base)
    block = max(1, CELLS // max(len(pr), len(base), 1))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, rounds, block):
        size = min(block, rounds - start)
        drawn = resample_weights(rng, len(pr), size)
        other = drawn if paired else resample_weights(rng, len(base), size)
        for name in names:
            parts[name].append(new[name](drawn) - old[name](other))
    return {name: np.concatenate(values) for name, values in parts.items()}


Scorer = Callable[[np.ndarray], np.ndarray]


def scorers(rows: Rows) -> dict[str, Scorer]:
    """The metrics of metrics.py that these rows can give, each a function of the weights."""
    if not rows.classification:
        return _regression(rows.truth, rows.predicted)
    if len(rows.labels) == 1:  # two classes: the positive class's probability only
        return _binary(rows)
    return _multiclass(rows)


def _regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Scorer]:
    error = truth - predicted

    def r2(w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        spread = w @ truth**2 - (w @ truth) ** 2 / total
        return 1 - (w @ error**2) / spread

    return {
        "rmse": lambda w: np.sqrt(_mean(w, error**2)),
        "mae": lambda w: _mean(w, np.abs(error)),
        "r2": r2,
    }


def _label_scorers(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, Scorer]:
    right = (truth == predicted).astype(float)

    def balanced_accuracy(w: np.ndarray) -> np.ndarray:
        recalls = []
        for label in classes:
            members = (truth == label).astype(float)
            count = w @ members
            with np.errstate(invalid="ignore", divide="ignore"):
                recalls.append(np.where(count > 0, (w @ (right * members)) / count, np.nan))
        return np.nanmean(np.stack(recalls), axis=0)

    def macro_f1(w: np.ndarray) -> np.ndarray:
        return np.mean(np.stack([_f1(w, truth == label, predicted == label) for label in classes]), axis=0)

    return {
        "accuracy": lambda w: _mean(w, right),
        "balanced_accuracy": balanced_accuracy,
        "macro_f1": macro_f1,
    }


def _binary(rows: Rows) -> dict[str, Scorer]:
    positive = rows.labels[0]
    classes = sorted(set(rows.truth) | set(rows.predicted) | {positive})
    is_positive = rows.truth == positive
    score = rows.proba[:, 0]
    clipped = np.clip(score, _EPS, 1 - _EPS)
    loss = -np.where(is_positive, np.log(clipped), np.log(1 - clipped))
    return _label_scorers(rows.truth, rows.predicted, classes) | {
        "f1": lambda w: _f1(w, is_positive, rows.predicted == positive),
        "roc_auc": _auc(is_positive, score),
        "log_loss": lambda w: _mean(w, loss),
        "brier": lambda w: _mean(w, (score - is_positive) ** 2),
    }


def _multiclass(rows: Rows) -> dict[str, Scorer]:
    labels = list(rows.labels)
    members = np.stack([rows.truth == label for label in labels], axis=1)
    proba = rows.proba / rows.proba.sum(axis=1, keepdims=True)  # as scikit-learn's log loss takes them
    loss = -np.log(np.clip(proba[members], _EPS, 1 - _EPS)) if members.any(axis=1).all() else None

    per_class = [_auc(members[:, c], rows.proba[:, c]) for c in range(len(labels))]

    def roc_auc(w: np.ndarray) -> np.ndarray:
        return np.mean(np.stack([auc(w) for auc in per_class]), axis=0)

    chosen = _label_scorers(rows.truth, rows.predicted, labels) | {
        "roc_auc": roc_auc,
        "brier": lambda w: _mean(w, ((rows.proba - members) ** 2).sum(axis=1)),
    }
    if loss is not None:  # a true class without a probability column: no log loss
        chosen["log_loss"] = lambda w: _mean(w, loss)
    return chosen


_EPS = float(np.finfo(float).eps)  # scikit-learn clips probabilities so for log loss


def _mean(w: np.ndarray, values: np.ndarray) -> np.ndarray:
    return (w @ values) / w.sum(axis=1)


def _f1(w: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    true_pos = w @ (truth & predicted).astype(float)
    wrong = w @ (truth ^ predicted).astype(float)  # false positives and false negatives
    denominator = 2 * true_pos + wrong
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_pos / denominator, 0.0)


def _auc(is_positive: np.ndarray, score: np.ndarray) -> Scorer:
    """The weighted area under the ROC curve: the chance that a positive row scores above a
    negative one, ties counting half. The rows are ranked once, here."""
    order = np.argsort(score, kind="stable")
    ranked, positive = score[order], is_positive[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # each run of equal scores
    ends = np.r_[starts[1:], len(ranked)] - 1
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ranked)]))

    def auc(w: np.ndarray) -> np.ndarray:
        weights = w[:, order]
        negatives = np.cumsum(weights * ~positive, axis=1)
        before = np.where(starts > 0, negatives[:, np.maximum(starts - 1, 0)], 0.0)  # below the run
        within = negatives[:, ends] - before
        credit = (weights * positive) * (before + within / 2)[:, run]
        pairs = (weights @ positive.astype(float)) * negatives[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, credit.sum(axis=1) / pairs, np.nan)

    return auc
