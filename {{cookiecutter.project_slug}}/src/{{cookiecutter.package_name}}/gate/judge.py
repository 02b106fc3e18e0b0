"""The verdict: a comparison judged by a policy (the base branch's), purely."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..metrics import BETTER, SLICE_METRICS
from .compare import Change, Comparison, formatted, number
from .policy import Policy, PolicyNote


@dataclass(frozen=True)
class Finding:
    check: str  # regression | missing | slice | baseline | threshold
    metric: str
    old: float | None  # on the base branch (None without a baseline)
    new: float | None
    limit: str


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    findings: list[Finding] = field(default_factory=list)


def judge(comparison: Comparison, policy: Policy) -> GateVerdict:
    """Regressions beyond tolerance, slices, the trivial baseline and absolute thresholds.

    Without a baseline (first PR) only the thresholds and the trivial baseline are checked;
    when nothing about the model changed, nothing is checked: the base already passed.
    """
    if comparison.unchanged:
        return GateVerdict(passed=True)
    old = {name: number(change.old) for name, change in comparison.metrics.items()}
    new = {name: number(change.new) for name, change in comparison.metrics.items()}
    findings = []
    if comparison.has_baseline:
        for name, rule in policy.gate.metrics.items():
            change = comparison.metrics.get(f"model.{name}")
            if change is None or number(change.old) is None:
                continue  # a metric the base did not have: nothing to regress from
            limit = f"{BETTER[name]} is better, tolerance {rule.tolerance:g}"
            if number(change.new) is None:
                findings.append(Finding("missing", name, number(change.old), None, limit))
            elif _worse_by(change, BETTER[name]) > rule.tolerance + 1e-12:
                findings.append(Finding("regression", name, number(change.old), number(change.new), limit))
        findings += sorted(
            slice_findings(comparison.metrics, policy.gate.slice_tolerance), key=lambda f: f.metric
        )
    for name in policy.gate.beat_baseline:
        model, baseline = new.get(f"model.{name}"), new.get(f"baseline.{name}")
        direction = BETTER[name]
        if model is None or baseline is None or not _better(model, baseline, direction):
            limit = f"{direction} than the trivial baseline ({formatted(baseline)})"
            findings.append(Finding("baseline", name, old.get(f"model.{name}"), model, limit))
    for name, threshold in policy.thresholds.items():
        value = new.get(f"model.{name}")
        if value is None or not threshold.holds(value):
            bounds = " and ".join(
                f"{word} {bound:g}"
                for word, bound in (("min", threshold.min), ("max", threshold.max))
                if bound is not None
            )
            findings.append(Finding("threshold", name, old.get(f"model.{name}"), value, bounds))
    return GateVerdict(passed=not findings, findings=findings)


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
        "policy": {
            "changed": [change.key for change in note.changes] if note else [],
            "applied": "pull request" if note and note.applied else "base",
            "approved_by": note.approval.by if note and note.applied else None,
        },
    }
