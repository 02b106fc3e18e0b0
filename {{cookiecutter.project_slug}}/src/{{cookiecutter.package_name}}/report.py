"""The pull-request report: metrics and params against the base branch, and the gate.

`compare` is the only part that talks to DVC and git; everything else is pure and
works on the recorded diffs, so it is tested on golden files.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings

WATERMARK_TITLE = "mlgate model report"
MAX_CHARS = 65_536  # GitHub's limit for a comment
METRICS_FILE = "metrics.json"
SLICES_FILE = "reports/slices.json"
# Per-group metrics that the gate watches, and which way is better.
SLICE_DIRECTIONS = {"accuracy": "higher", "recall": "higher", "rmse": "lower", "mae": "lower"}


class ReportError(RuntimeError):
    """The comparison could not be computed (e.g. DVC could not read a metrics file)."""


@dataclass(frozen=True)
class Change:
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old


@dataclass(frozen=True)
class Comparison:
    """What DVC and git say about this revision against the base."""

    base: str
    metrics: dict[str, Change]  # "model.roc_auc", "slices:colour.groups.Black.accuracy"
    params: dict[str, Change]
    has_baseline: bool  # the base branch has metrics
    lock_changed: bool  # dvc.lock differs from the base


@dataclass(frozen=True)
class Finding:
    check: str
    metric: str
    old: float | None
    new: float | None
    limit: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    findings: list[Finding] = field(default_factory=list)


def metric_changes(diff: dict, errors: dict, base: str) -> tuple[dict[str, Change], bool]:
    """Flatten DVC's metrics diff; fail on any read error other than "base has no file yet"."""
    problems = read_errors(errors, base)
    if problems:
        raise ReportError("DVC could not read the metrics: " + "; ".join(problems))
    missing_on_base = bool(errors.get(base))
    changes = {}
    for path, entries in diff.items():
        prefix = "" if path == METRICS_FILE else "slices:" if path == SLICES_FILE else f"{path}:"
        for name, values in entries.items():
            changes[prefix + name] = Change(_number(values.get("old")), _number(values.get("new")))
    has_baseline = not missing_on_base and any(change.old is not None for change in changes.values())
    return changes, has_baseline


def read_errors(errors: dict, base: str) -> list[str]:
    """DVC's per-revision read errors, except a file that the base branch does not have yet."""
    problems = []
    for revision, files in errors.items():
        # DVC reports either one error per file, or one for the whole revision.
        per_file = files.items() if isinstance(files, dict) else [("params and metrics", files)]
        problems += [
            f"{path} at {revision}: {error}"
            for path, error in per_file
            if not (revision == base and isinstance(error, FileNotFoundError))
        ]
    return problems


def param_changes(diff: dict) -> dict[str, Change]:
    return {
        name: Change(values.get("old"), values.get("new"))
        for entries in diff.values()
        for name, values in entries.items()
    }


def judge(comparison: Comparison, settings: Settings) -> Verdict:
    """The gate: regressions beyond tolerance, slices, the baseline, absolute thresholds."""
    new = {name: change.new for name, change in comparison.metrics.items()}
    findings = []
    for name, threshold in settings.evaluate.thresholds.items():
        value = new.get(f"model.{name}")
        if value is None or not threshold.holds(value):
            bounds = " and ".join(
                f"{word} {bound}"
                for word, bound in (("min", threshold.min), ("max", threshold.max))
                if bound is not None
            )
            findings.append(Finding("threshold", name, None, value, bounds))
    for name in settings.gate.beat_baseline:
        model, baseline = new.get(f"model.{name}"), new.get(f"baseline.{name}")
        direction = settings.gate.metrics[name].direction
        if model is None or baseline is None or not _better(model, baseline, direction):
            findings.append(Finding("baseline", name, baseline, model, f"{direction} than the baseline"))
    if comparison.has_baseline:
        for name, rule in settings.gate.metrics.items():
            change = comparison.metrics.get(f"model.{name}")
            if change and _worse_by(change, rule.direction) > rule.tolerance:
                findings.append(
                    Finding("regression", name, change.old, change.new, f"tolerance {rule.tolerance}")
                )
        findings += _slice_findings(comparison.metrics, settings.gate.slice_tolerance)
    return Verdict(passed=not findings, findings=findings)


def _slice_findings(metrics: dict[str, Change], tolerance: float) -> list[Finding]:
    findings = []
    for name, change in metrics.items():
        parts = name.removeprefix("slices:").split(".")
        if not name.startswith("slices:") or "groups" not in parts or parts[-1] not in SLICE_DIRECTIONS:
            continue
        if change.old is None or change.new is None:
            continue
        allowed = tolerance * abs(change.old)
        if _worse_by(change, SLICE_DIRECTIONS[parts[-1]]) > allowed:
            findings.append(
                Finding("slice", name.removeprefix("slices:"), change.old, change.new, f"{tolerance:.0%}")
            )
    return findings


def _better(value: float, other: float, direction: str) -> bool:
    return value > other if direction == "higher" else value < other


def _worse_by(change: Change, direction: str) -> float:
    if change.delta is None:
        return 0.0
    return -change.delta if direction == "higher" else change.delta


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# Markdown --------------------------------------------------------------------


def render(comparison: Comparison, verdict: Verdict, settings: Settings, limit: int = MAX_CHARS) -> str:
    """GFM for a pull-request comment: verdict, failures, metrics, chart, slices, params."""
    unchanged = comparison.has_baseline and not comparison.lock_changed and not _any_change(comparison)
    head = [
        f"<!-- {WATERMARK_TITLE} -->",
        f"## {'✅ Model gate passed' if verdict.passed else '❌ Model gate failed'}",
        "",
        _summary_line(comparison, unchanged),
        "",
    ]
    if verdict.findings:
        head += [
            "### What failed",
            "",
            *_table(
                ["check", "metric", "base", "this PR", "delta", "limit"],
                [
                    [f.check, f.metric, _fmt(f.old), _fmt(f.new), _fmt_delta(f.old, f.new), f.limit]
                    for f in verdict.findings
                ],
            ),
            "",
        ]
    model_rows = _metric_rows(comparison, prefixes=("model.", "baseline."))
    body = [
        "### Metrics",
        "",
        *_table(["metric", f"base ({comparison.base})", "this PR", "delta"], model_rows),
        "",
    ]
    body += _chart(comparison, settings)
    sections = [
        (
            "Slice metrics",
            _metric_rows(comparison, prefixes=("slices:",)),
            ["metric", "base", "this PR", "delta"],
        ),
        (
            "Params changed",
            [[name, _fmt(c.old), _fmt(c.new)] for name, c in sorted(comparison.params.items())],
            ["param", "base", "this PR"],
        ),
    ]
    text = "\n".join(head + body)
    for title, rows, header in sections:
        text += "\n" + _details(title, header, rows, budget=limit - len(text) - 200)
    return text[:limit]


def _summary_line(comparison: Comparison, unchanged: bool) -> str:
    if not comparison.has_baseline:
        return (
            f"No baseline yet: `{comparison.base}` has no metrics, so only absolute thresholds are checked."
        )
    if unchanged:
        return f"No changes to the model: pipeline, params and metrics are as on `{comparison.base}`."
    return f"Compared with `{comparison.base}`."


def _any_change(comparison: Comparison) -> bool:
    return bool(comparison.params) or any(c.old != c.new for c in comparison.metrics.values())


def _metric_rows(comparison: Comparison, prefixes: tuple[str, ...]) -> list[list[str]]:
    return [
        [name.removeprefix("slices:"), _fmt(change.old), _fmt(change.new), _fmt_delta(change.old, change.new)]
        for name, change in sorted(comparison.metrics.items())
        if name.startswith(prefixes)
    ]


def _chart(comparison: Comparison, settings: Settings) -> list[str]:
    """A mermaid bar chart of the gated metrics, base against this PR (no images to upload)."""
    names = [n for n in settings.gate.metrics if f"model.{n}" in comparison.metrics]
    if not names or not comparison.has_baseline:
        return []
    old = [comparison.metrics[f"model.{n}"].old or 0.0 for n in names]
    new = [comparison.metrics[f"model.{n}"].new or 0.0 for n in names]
    top = max([*old, *new, 1e-9]) * 1.1
    return [
        "```mermaid",
        "xychart-beta",
        '    title "Gated metrics: base (first bar) and this PR (second bar)"',
        f"    x-axis [{', '.join(names)}]",
        f"    y-axis 0 --> {top:.4g}",
        f"    bar [{', '.join(f'{v:.4g}' for v in old)}]",
        f"    bar [{', '.join(f'{v:.4g}' for v in new)}]",
        "```",
        "",
    ]


def _details(title: str, header: list[str], rows: list[list[str]], budget: int) -> str:
    lines = [f"<details><summary>{title} ({len(rows)})</summary>", ""]
    table = _table(header, [])
    used = sum(len(line) + 1 for line in lines + table) + 40
    shown = 0
    for row in rows:
        line = _table_row(row)
        if used + len(line) + 1 > budget:
            break
        table.append(line)
        used += len(line) + 1
        shown += 1
    lines += [*table, ""]
    if shown < len(rows):
        lines += [
            f"{len(rows) - shown} more rows not shown: the comment is capped at {MAX_CHARS:,} characters.",
            "",
        ]
    return "\n".join([*lines, "</details>", ""])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_table_row(header), _table_row(["---"] * len(header)), *map(_table_row, rows)]


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_delta(old: float | None, new: float | None) -> str:
    if old is None or new is None:
        return "—"
    delta = new - old
    return "0" if delta == 0 else f"{delta:+.4g}"


# The thin layer over DVC and git ---------------------------------------------


def compare(root: Path, base: str) -> Comparison:
    """Metrics and params of the workspace against `base`, through DVC's Python API."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        metrics = repo.metrics.diff(a_rev=base, b_rev="workspace", all=True)
        params = repo.params.diff(a_rev=base, b_rev="workspace")
    changes, has_baseline = metric_changes(metrics.get("diff", {}), metrics.get("errors", {}), base)
    param_errors = read_errors(params.get("errors", {}), base)
    if param_errors:
        raise ReportError("DVC could not read the params: " + "; ".join(param_errors))
    return Comparison(
        base=base,
        metrics=changes,
        params=param_changes(params.get("diff", {})),
        has_baseline=has_baseline,
        lock_changed=_lock_changed(root, base),
    )


def _lock_changed(root: Path, base: str) -> bool:
    result = subprocess.run(
        ["git", "diff", "--quiet", base, "--", "dvc.lock"], cwd=root, capture_output=True, text=True
    )
    if result.returncode > 1:
        raise ReportError(f"git could not compare dvc.lock with {base}: {result.stderr.strip()}")
    return result.returncode == 1
