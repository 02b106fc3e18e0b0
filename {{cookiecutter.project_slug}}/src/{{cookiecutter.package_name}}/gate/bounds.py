"""Absolute bounds on reports/slices.json (pure): per group and class, fairness, sensitive inputs.

Unlike the regressions, these need no base: they hold on every pull request, the first too.

- `gate.slices`: every judged group of every slice, every class one-vs-rest within a group, and
  every class of the class slice, must meet each bound (`{recall: {min: 0.5}}`).
- A group below `evaluate.min_group_size` (the base's: it is policy) is too small to judge: it is
  listed, never passed silently; a group the pull request marked too small while the policy's
  minimum would judge it fails (its own params cannot hide a group).
- `gate.fairness`: each difference's 95% interval (pipeline/fairness.py) lying wholly above its
  bound fails; a point estimate above it with the interval reaching below is "not significant".
- `data.use_sensitive_features`: a sensitive feature among the model's inputs fails unless
  `gate.allow_sensitive_features` gives the reviewer's reason (D4).
"""

from __future__ import annotations

from dataclasses import dataclass

from .compare import Change, number
from .policy import Policy

SLICES = "slices:"
SENSITIVE_INPUTS = "(sensitive inputs)"  # as pipeline/evaluate.py writes it
TOO_SMALL = "too_small"
ABOVE_NOT_SIGNIFICANT = "above the bound, not significant"
ABOVE = "above the bound"
WITHIN = "within the bound"


@dataclass(frozen=True)
class BoundFinding:
    check: str  # slice bound | too small | fairness | sensitive feature
    name: str  # the dotted key in reports/slices.json, or the feature
    value: float | None
    limit: str
    key: str = ""  # its key in reports/slices.json, when not `name`: the base's value is read there


@dataclass(frozen=True)
class FairnessRow:
    """One fairness difference for the report: where, its estimate and interval, what it means."""

    name: str  # e.g. colour.fairness.demographic_parity_difference
    value: float
    low: float | None
    high: float | None
    bound: float | None
    meaning: str


@dataclass(frozen=True)
class SmallGroup:
    name: str  # e.g. region.groups.(missing)
    count: int


def slice_changes(slices: dict, prefix: str = SLICES) -> dict[str, Change]:
    """reports/slices.json's numbers as the comparison holds them ("slices:" dotted keys, as DVC
    flattens them), all new: for judging an evaluation without a base (the model tests)."""
    changes: dict[str, Change] = {}
    for key, value in slices.items():
        if isinstance(value, dict):
            changes |= slice_changes(value, f"{prefix}{key}.")
        elif number(value) is not None:
            changes[f"{prefix}{key}"] = Change(None, value)
    return changes


def _values(metrics: dict[str, Change]) -> dict[str, float]:
    """The pull request's numbers in reports/slices.json, keyed without the prefix."""
    values = {}
    for name, change in metrics.items():
        value = number(change.new)
        if name.startswith(SLICES) and value is not None:
            values[name.removeprefix(SLICES)] = value
    return values


def _sibling(name: str, last: str) -> str:
    return name.rsplit(".", 1)[0] + "." + last


def bound_findings(metrics: dict[str, Change], policy: Policy) -> list[BoundFinding]:
    """Every breach of an absolute bound on the slices, in key order."""
    values = _values(metrics)
    findings = []
    for name in sorted(values):
        parts = name.split(".")
        value = values[name]
        if parts[0] == SENSITIVE_INPUTS and len(parts) == 2:
            if value >= 1 and not policy.gate.allow_sensitive_features:
                findings.append(
                    BoundFinding(
                        "sensitive feature",
                        parts[1],
                        value,
                        "a model input (data.use_sensitive_features) without a reviewed reason in "
                        "gate.allow_sensitive_features",
                        key=name,
                    )
                )
            continue
        if parts[-1] == TOO_SMALL and value >= 1:
            count = values.get(_sibling(name, "count"))
            if count is not None and count >= policy.min_group_size:
                findings.append(
                    BoundFinding(
                        "too small",
                        name.rsplit(".", 1)[0],
                        count,
                        f"marked too small, but evaluate.min_group_size {policy.min_group_size} judges it",
                        key=_sibling(name, "count"),
                    )
                )
            continue
        bound = policy.gate.slices.get(parts[-1])
        if bound is not None and "groups" in parts[1:-1] and not bound.holds(value):
            count = values.get(_sibling(name, "count"))
            if count is None or count >= policy.min_group_size:
                findings.append(BoundFinding("slice bound", name, value, _bounds_text(bound.min, bound.max)))
    for row in fairness_rows(metrics, policy):
        if row.meaning == ABOVE:
            findings.append(
                BoundFinding(
                    "fairness",
                    row.name,
                    row.value,
                    f"max {row.bound:g}; 95% interval [{row.low:.4g}, {row.high:.4g}] lies above it",
                    key=f"{row.name}.value",
                )
            )
    return findings


def fairness_rows(metrics: dict[str, Change], policy: Policy) -> list[FairnessRow]:
    """Each fairness difference in reports/slices.json, judged by its bound in gate.fairness."""
    values = _values(metrics)
    rows = []
    for name in sorted(values):
        parts = name.split(".")
        if len(parts) < 3 or parts[-1] != "value" or parts[-3] != "fairness":
            continue
        measure = parts[-2]
        rule = policy.gate.fairness.get(measure)  # type: ignore[call-overload]
        low, high = values.get(_sibling(name, "low")), values.get(_sibling(name, "high"))
        bound = None if rule is None else rule.max
        meaning = _meaning(values[name], low, bound)
        rows.append(FairnessRow(name.rsplit(".", 1)[0], values[name], low, high, bound, meaning))
    return rows


def _meaning(value: float, low: float | None, bound: float | None) -> str:
    if bound is None or value <= bound + 1e-12:
        return WITHIN if bound is not None else "not bounded"
    if low is None or low > bound + 1e-12:
        return ABOVE
    return ABOVE_NOT_SIGNIFICANT


def small_groups(metrics: dict[str, Change]) -> list[SmallGroup]:
    """The groups (and classes) too small to judge, with their rows."""
    values = _values(metrics)
    return [
        SmallGroup(name.rsplit(".", 1)[0], int(values.get(_sibling(name, "count"), 0)))
        for name in sorted(values)
        if name.split(".")[-1] == TOO_SMALL and values[name] >= 1
    ]


def unjudged_fairness(metrics: dict[str, Change]) -> list[str]:
    """Where fairness could not be measured: fewer than two groups of enough rows."""
    values = _values(metrics)
    return [
        name.removesuffix(".groups_judged")
        for name in sorted(values)
        if name.endswith(".fairness.groups_judged") and values[name] < 2
    ]


def _bounds_text(low: float | None, high: float | None) -> str:
    return " and ".join(
        f"{word} {bound:g}" for word, bound in (("min", low), ("max", high)) if bound is not None
    )
