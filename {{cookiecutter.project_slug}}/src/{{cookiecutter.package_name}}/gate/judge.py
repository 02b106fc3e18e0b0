"""The verdict: a comparison judged by a policy (the base branch's), purely.

A gated metric regresses when it is worse than the base by more than its tolerance and the
95% interval of the difference (gate/noise.py) lies wholly on the worse side of 0. Worse by
more than the tolerance but with 0 inside the interval: not significant, it passes. An
interval wider than twice the tolerance that reaches past it: the test set is too small to
judge the tolerance, and that fails unless `gate.allow_underpowered`. Without per-row
predictions on both sides (an older base), the point estimate alone decides, as it used to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..feature_value import without_value
from ..metrics import BETTER, SLICE_METRICS
from .bounds import SLICES, bound_findings
from .compare import Change, Comparison, formatted, number
from .noise import Interval, Significance, Unjudged
from .policy import Policy, PolicyNote

REGRESSION = "regression"
UNDERPOWERED = "too small to judge"
NOT_SIGNIFICANT = "not significant"
WITHIN_TOLERANCE = "within tolerance"
IMPROVEMENT = "better"


@dataclass(frozen=True)
class Finding:
    # regression | missing | underpowered | slice | baseline | simple | threshold | feature_value,
    # or one of gate/bounds.py's
    check: str
    metric: str
    old: float | None  # on the base branch (None without a baseline)
    new: float | None
    limit: str


@dataclass(frozen=True)
class Assessment:
    """A gated metric's change and what it means: one of REGRESSION ... IMPROVEMENT."""

    metric: str
    delta: float  # PR - base
    interval: Interval | None  # of the delta; None: the point estimate alone decided
    meaning: str


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    findings: list[Finding] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    noise: Significance | Unjudged | None = None  # how the changes were told from noise


def meaning(delta: float, interval: Interval | None, tolerance: float, better: str) -> str:
    """What a change of `delta` (PR - base) with this interval means under the rule above."""
    worse = -delta if better == "higher" else delta
    if interval is None:
        return REGRESSION if worse > tolerance + 1e-12 else WITHIN_TOLERANCE
    least, most = (-interval.high, -interval.low) if better == "higher" else (interval.low, interval.high)
    if worse > tolerance + 1e-12 and least > 0:
        return REGRESSION
    if interval.width > 2 * tolerance + 1e-12 and most > tolerance + 1e-12:
        return UNDERPOWERED
    if worse > tolerance + 1e-12:
        return NOT_SIGNIFICANT
    return IMPROVEMENT if most < 0 else WITHIN_TOLERANCE


def judge(
    comparison: Comparison, policy: Policy, noise: Significance | Unjudged | None = None
) -> GateVerdict:
    """Regressions beyond tolerance told from noise, slices, the trivial baseline, the simple
    model, absolute thresholds, inputs of no measurable value, and absolute bounds on the
    slices and fairness (gate/bounds.py).

    Without a baseline (first PR) only the thresholds, the trivial baseline and the simple
    model are checked;
    when nothing about the model changed, nothing is checked: the base already passed.
    """
    if comparison.unchanged:
        return GateVerdict(passed=True)
    old = {name: number(change.old) for name, change in comparison.metrics.items()}
    new = {name: number(change.new) for name, change in comparison.metrics.items()}
    findings: list[Finding] = []
    assessments: list[Assessment] = []
    if comparison.has_baseline:
        intervals = noise.intervals if isinstance(noise, Significance) else {}
        for name, rule in policy.gate.metrics.items():
            change = comparison.metrics.get(f"model.{name}")
            if change is None or number(change.old) is None:
                continue  # a metric the base did not have: nothing to regress from
            assessment, finding = gated_change(name, change, rule.tolerance, intervals.get(name), policy)
            assessments += [assessment] if assessment else []
            findings += [finding] if finding else []
        findings += sorted(
            slice_findings(comparison.metrics, policy.gate.slice_tolerance), key=lambda f: f.metric
        )
    findings += baseline_findings(new, old, policy)
    findings += simple_findings(new, old, policy)
    findings += threshold_findings(new, old, policy)
    findings += absolute_bound_findings(comparison, policy)
    findings += feature_value_findings(new, policy)
    return GateVerdict(passed=not findings, findings=findings, assessments=assessments, noise=noise)


def baseline_findings(new: dict, old: dict, policy: Policy) -> list[Finding]:
    """gate.beat_baseline: the model must be better than the trivial baseline (metrics.json: baseline)."""
    findings = []
    for name in policy.gate.beat_baseline:
        model, baseline = new.get(f"model.{name}"), new.get(f"baseline.{name}")
        direction = BETTER[name]
        if model is None or baseline is None or not _better(model, baseline, direction):
            limit = f"{direction} than the trivial baseline ({formatted(baseline)})"
            findings.append(Finding("baseline", name, old.get(f"model.{name}"), model, limit))
    return findings


def threshold_findings(new: dict, old: dict, policy: Policy) -> list[Finding]:
    """evaluate.thresholds: absolute bounds on the model's test metrics."""
    findings = []
    for name, threshold in policy.thresholds.items():
        value = new.get(f"model.{name}")
        if value is None or not threshold.holds(value):
            bounds = " and ".join(
                f"{word} {bound:g}"
                for word, bound in (("min", threshold.min), ("max", threshold.max))
                if bound is not None
            )
            findings.append(Finding("threshold", name, old.get(f"model.{name}"), value, bounds))
    return findings


def absolute_bound_findings(comparison: Comparison, policy: Policy) -> list[Finding]:
    """Slices, fairness and sensitive inputs (gate/bounds.py), each with the base's value."""
    findings = []
    for item in bound_findings(comparison.metrics, policy):
        before = comparison.metrics.get(SLICES + (item.key or item.name))
        was = number(before.old) if before else None
        findings.append(Finding(item.check, item.name, was, item.value, item.limit))
    return findings


def simple_findings(new: dict, old: dict, policy: Policy) -> list[Finding]:
    """gate.beat_simple: the model must beat the simple model (metrics.json: simple) by more
    than the metric's tolerance, on the point estimates of this pull request's test set."""
    findings = []
    for name in policy.gate.beat_simple:
        model, simple = new.get(f"model.{name}"), new.get(f"simple.{name}")
        tolerance = policy.gate.metrics[name].tolerance
        if model is None or simple is None or not beats_by(model, simple, BETTER[name], tolerance):
            limit = f"{BETTER[name]} than the simple model ({formatted(simple)}) by over {tolerance:g}"
            findings.append(Finding("simple", name, old.get(f"model.{name}"), model, limit))
    return findings


def beats_by(value: float, other: float, better: str, margin: float) -> bool:
    """`value` is better than `other` (`better`: which way) by more than `margin`."""
    lead = value - other if better == "higher" else other - value
    return lead > margin + 1e-12


def feature_value_findings(new: dict[str, float | None], policy: Policy) -> list[Finding]:
    """One finding naming every input of no measurable value, when the policy requires value."""
    useless = without_value(new)
    if not policy.gate.require_feature_value or not useless:
        return []
    limit = (
        "no measurable value: 95% interval of permutation importance not above 0 (gate.require_feature_value)"
    )
    return [Finding("feature_value", ", ".join(useless), None, None, limit)]


def gated_change(
    name: str, change: Change, tolerance: float, interval: Interval | None, policy: Policy
) -> tuple[Assessment | None, Finding | None]:
    """What a gated metric's change means, and the finding when it fails the gate."""
    limit = f"{BETTER[name]} is better, tolerance {tolerance:g}"
    old, new = number(change.old), number(change.new)
    if change.delta is None:
        return None, Finding("missing", name, old, None, limit)
    found = meaning(change.delta, interval, tolerance, BETTER[name])
    assessment = Assessment(name, change.delta, interval, found)
    if found == REGRESSION:
        significant = "" if interval is None else ", and the 95% interval of the change excludes 0"
        return assessment, Finding("regression", name, old, new, limit + significant)
    if found == UNDERPOWERED and interval is not None and not policy.gate.allow_underpowered:
        why = (
            f"95% interval of the change {_span(interval)} is wider than twice the tolerance "
            f"{tolerance:g}: too few test rows to judge (gate.allow_underpowered)"
        )
        return assessment, Finding("underpowered", name, old, new, why)
    return assessment, None


def _span(interval: Interval) -> str:
    return f"[{interval.low:+.4g}, {interval.high:+.4g}]"


def slice_findings(metrics: dict[str, Change], tolerance: float) -> list[Finding]:
    """Group metrics that worsened by more than `tolerance` times their base value."""
    findings = []
    for name, change in metrics.items():
        if not name.startswith("slices:"):
            continue
        parts = name.removeprefix("slices:").split(".")
        direction = SLICE_METRICS.get(parts[-1])
        old = number(change.old)
        if direction is None or "groups" not in parts[1:-1] or change.delta is None or old is None:
            continue
        allowed = tolerance * abs(old)
        if _worse_by(change, direction) > allowed + 1e-12:
            findings.append(
                Finding(
                    "slice",
                    name.removeprefix("slices:"),
                    number(change.old),
                    number(change.new),
                    f"{direction} is better, tolerance {tolerance * 100:g}% of base",
                )
            )
    return findings


def _better(value: float, other: float, direction: str) -> bool:
    return value > other if direction == "higher" else value < other


def _worse_by(change: Change, direction: str) -> float:
    delta = change.delta
    if delta is None:
        return 0.0
    return -delta if direction == "higher" else delta


def gate_record(
    comparison: Comparison | None,
    verdict: GateVerdict | None,
    error: str | None = None,
    note: PolicyNote | None = None,
) -> dict:
    """The machine-readable verdict (reports/gate.json): "pass", "fail" or "error"."""
    return {
        "verdict": "error" if error is not None or verdict is None else "pass" if verdict.passed else "fail",
        "error": error,
        "base": comparison.base if comparison else None,
        "has_baseline": comparison.has_baseline if comparison else None,
        "unchanged": comparison.unchanged if comparison else None,
        "reproduced": comparison.reproduced if comparison else None,  # why the base was reproduced
        "results_uncommitted": comparison.results_uncommitted if comparison else None,
        "findings": [dataclasses.asdict(finding) for finding in verdict.findings] if verdict else [],
        "changes": [dataclasses.asdict(item) for item in verdict.assessments] if verdict else [],
        "noise": dataclasses.asdict(verdict.noise) if verdict and verdict.noise else None,
        "policy": {
            "changed": [change.key for change in note.changes] if note else [],
            "applied": "pull request" if note and note.applied else "base",
            "approved_by": note.approval.by if note and note.applied else None,
        },
    }
