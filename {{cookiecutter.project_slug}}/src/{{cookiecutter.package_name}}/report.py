"""The pull-request report: metrics and params against the base branch, and the gate.

`read_diffs` is the only part that talks to DVC and git. It returns plain JSON-able
data (recorded as golden files under tests/fixtures/report); everything after it is
pure: `comparison_from_record` -> `judge` -> `render`. The policy that `judge` applies
is the base branch's (see policy.py), never the pull request's own.

In CI the pull request's pipeline runs in one job and its results (`RESULT_FILES`)
are judged in another that checks out the base branch only: the base's code and
policy decide, the pull request's code never runs there (`take_results`).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .policy import Approval, Policy, PolicyChange

# `cml comment update --watermark-title=...` in the pr-report workflow uses this exact text.
WATERMARK_TITLE = "mlgate model report"
MAX_CHARS = 65_536  # GitHub's limit for a comment body
METRICS_FILE = "metrics.json"
SLICES_FILE = "reports/slices.json"
LOCK_FILE = "dvc.lock"
# What the pull request's pipeline hands to the judge: its metrics and what they came from.
# pr-report.yml uploads exactly these (a test checks it).
RESULT_FILES = ("dvc.yaml", LOCK_FILE, "params.yaml", METRICS_FILE, SLICES_FILE)
MAX_RESULT_BYTES = 10_000_000
WHOLE_REVISION = "*"  # the error key when DVC could not read a revision at all
# Per-group metrics (reports/slices.json) that the gate watches, and which way is better.
SLICE_DIRECTIONS = {"accuracy": "higher", "recall": "higher", "rmse": "lower", "mae": "lower"}
MAX_CELL = 120  # characters per table cell (long param values are cut)


class ReportError(RuntimeError):
    """The comparison could not be computed (DVC or git failed, or a metrics file is unreadable)."""


class NoResults(ReportError):
    """The pull request's pipeline left no results to judge: it failed."""


@dataclass(frozen=True)
class Change:
    old: object
    new: object

    @property
    def delta(self) -> float | None:
        old, new = _number(self.old), _number(self.new)
        return None if old is None or new is None else new - old


@dataclass(frozen=True)
class Comparison:
    """What DVC and git say about the workspace against the base."""

    base: str
    metrics: dict[str, Change]  # "model.roc_auc", "baseline.roc_auc", "slices:colour.groups.Black.accuracy"
    params: dict[str, Change]  # changed params only: "train.model.regularization"
    has_baseline: bool  # the base has a readable metrics.json
    lock_changed: bool  # dvc.lock differs from the base

    @property
    def unchanged(self) -> bool:
        """Nothing about the model changed: same dvc.lock, same params, same metrics."""
        return (
            self.has_baseline
            and not self.lock_changed
            and not self.params
            and all(change.old == change.new for change in self.metrics.values())
        )


@dataclass(frozen=True)
class Finding:
    check: str  # regression | missing | slice | baseline | threshold
    metric: str
    old: float | None  # on the base branch (None without a baseline)
    new: float | None
    limit: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class PolicyNote:
    """The pull request changes the policy: what, and whether its version was applied."""

    changes: list[PolicyChange]
    approval: Approval

    @property
    def applied(self) -> bool:
        return bool(self.changes) and self.approval.approved


# From DVC's answers to a Comparison (pure) ---------------------------------------


def comparison_from_record(record: dict, base: str) -> Comparison:
    """Build the comparison from `read_diffs`' output; a read error other than
    "the base has no such file yet" raises ReportError."""
    problems = [
        *read_errors(record["metrics"].get("errors", {}), base),
        *read_errors(record["params"].get("errors", {}), base),
    ]
    if problems:
        raise ReportError("DVC could not read " + "; ".join(problems))
    metrics = metric_changes(record["metrics"].get("diff", {}))
    missing_at_base = record["metrics"].get("errors", {}).get(base, {})
    has_baseline = METRICS_FILE not in missing_at_base and any(
        name.startswith("model.") and _number(change.old) is not None for name, change in metrics.items()
    )
    return Comparison(
        base=base,
        metrics=metrics,
        params=param_changes(record["params"].get("diff", {})),
        has_baseline=has_baseline,
        lock_changed=bool(record["lock_changed"]),
    )


def read_errors(errors: dict, base: str) -> list[str]:
    """DVC's read errors as messages, except a file that the base does not have yet (first PR)."""
    return [
        f"{'the revision' if path == WHOLE_REVISION else path} at {revision}: {error['message']}"
        for revision, files in errors.items()
        for path, error in files.items()
        if not (revision == base and path != WHOLE_REVISION and error["missing"])
    ]


def metric_changes(diff: dict) -> dict[str, Change]:
    """Flatten DVC's metrics diff: metrics.json keys as they are, slices prefixed with "slices:"."""
    changes = {}
    for path, entries in diff.items():
        prefix = "" if path == METRICS_FILE else "slices:" if path == SLICES_FILE else f"{path}:"
        for name, values in entries.items():
            changes[prefix + name] = Change(values.get("old"), values.get("new"))
    return changes


def param_changes(diff: dict) -> dict[str, Change]:
    return {
        name: Change(values.get("old"), values.get("new"))
        for entries in diff.values()
        for name, values in entries.items()
        if values.get("old") != values.get("new")
    }


# The gate (pure) ----------------------------------------------------------------


def judge(comparison: Comparison, policy: Policy) -> Verdict:
    """Regressions beyond tolerance, slices, the trivial baseline and absolute thresholds.

    Without a baseline (first PR) only the thresholds and the trivial baseline are checked;
    when nothing about the model changed, nothing is checked: the base already passed.
    """
    if comparison.unchanged:
        return Verdict(passed=True)
    old = {name: _number(change.old) for name, change in comparison.metrics.items()}
    new = {name: _number(change.new) for name, change in comparison.metrics.items()}
    findings = []
    if comparison.has_baseline:
        for name, rule in policy.gate.metrics.items():
            change = comparison.metrics.get(f"model.{name}")
            if change is None or _number(change.old) is None:
                continue  # a metric the base did not have: nothing to regress from
            limit = f"{rule.direction} is better, tolerance {rule.tolerance:g}"
            if _number(change.new) is None:
                findings.append(Finding("missing", name, _number(change.old), None, limit))
            elif _worse_by(change, rule.direction) > rule.tolerance + 1e-12:
                findings.append(Finding("regression", name, _number(change.old), _number(change.new), limit))
        findings += sorted(
            slice_findings(comparison.metrics, policy.gate.slice_tolerance), key=lambda f: f.metric
        )
    for name in policy.gate.beat_baseline:
        model, baseline = new.get(f"model.{name}"), new.get(f"baseline.{name}")
        direction = policy.gate.metrics[name].direction
        if model is None or baseline is None or not _better(model, baseline, direction):
            limit = f"{direction} than the trivial baseline ({_fmt(baseline)})"
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
    return Verdict(passed=not findings, findings=findings)


def slice_findings(metrics: dict[str, Change], tolerance: float) -> list[Finding]:
    """Group metrics that worsened by more than `tolerance` times their base value."""
    findings = []
    for name, change in metrics.items():
        if not name.startswith("slices:"):
            continue
        parts = name.removeprefix("slices:").split(".")
        direction = SLICE_DIRECTIONS.get(parts[-1])
        if direction is None or "groups" not in parts[1:-1] or change.delta is None:
            continue
        allowed = tolerance * abs(_number(change.old))
        if _worse_by(change, direction) > allowed + 1e-12:
            findings.append(
                Finding(
                    "slice",
                    name.removeprefix("slices:"),
                    _number(change.old),
                    _number(change.new),
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


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def gate_record(
    comparison: Comparison | None,
    verdict: Verdict | None,
    error: str | None = None,
    note: PolicyNote | None = None,
) -> dict:
    """The machine-readable verdict (reports/gate.json): "pass", "fail" or "error"."""
    return {
        "verdict": "error" if error is not None else "pass" if verdict.passed else "fail",
        "error": error,
        "base": comparison.base if comparison else None,
        "has_baseline": comparison.has_baseline if comparison else None,
        "unchanged": comparison.unchanged if comparison else None,
        "findings": [dataclasses.asdict(finding) for finding in verdict.findings] if verdict else [],
        "policy": {
            "changed": [change.key for change in note.changes] if note else [],
            "applied": "pull request" if note and note.applied else "base",
            "approved_by": note.approval.by if note and note.applied else None,
        },
    }


# Markdown (pure) -----------------------------------------------------------------


def render(
    comparison: Comparison,
    verdict: Verdict,
    policy: Policy,
    note: PolicyNote | None = None,
    limit: int = MAX_CHARS,
) -> str:
    """GFM for the pull-request comment: verdict first, then a policy change (if any), what
    failed, metrics, charts, and the long parts (other metrics, slices, params) folded in
    <details>.

    Never longer than `limit`: tables that do not fit shed rows and say so."""
    failed = len(verdict.findings)
    headline = (
        "## ✅ Model gate passed"
        if verdict.passed
        else f"## ❌ Model gate failed: {failed} check{'s' if failed != 1 else ''}"
    )
    out = _Budget(limit)
    out.add(f"<!-- {WATERMARK_TITLE} -->", headline, "", _summary_line(comparison), "")
    if note is not None and note.changes:
        out.add(*_policy_lines(note, out))
    if verdict.findings:
        rows = [
            [f.check, f.metric, _fmt(f.old), _fmt(f.new), _fmt_delta(f.old, f.new), f.limit]
            for f in verdict.findings
        ]
        header = ["check", "metric", "base", "this PR", "delta", "limit"]
        out.add("### What failed", "", *out.table(header, rows, reserve=4_000))
    header = ["metric", f"base ({_code(comparison.base)})", "this PR", "delta", "trivial baseline", "gate"]
    out.add("### Metrics", "", *out.table(header, _gated_rows(comparison, policy), reserve=1_000))
    if not comparison.unchanged:
        out.add(*_charts(comparison, policy))
    other_rows = _metric_rows(comparison, lambda name: not name.startswith(("model.", "slices:")))
    slice_rows = _metric_rows(comparison, lambda name: name.startswith("slices:"))
    param_rows = [[name, _fmt(c.old), _fmt(c.new)] for name, c in sorted(comparison.params.items())]
    for title, header, rows in (
        ("Other metrics", ["metric", "base", "this PR", "delta"], other_rows),
        ("Slice metrics", ["metric", "base", "this PR", "delta"], slice_rows),
        ("Params changed", ["param", "base", "this PR"], param_rows),
    ):
        if rows:
            opening = f"<details><summary>{title} ({len(rows)})</summary>"
            table = out.table(header, rows, reserve=len(opening) + 20)
            out.add(opening, "", *table, "</details>", "")
    return out.text()


def render_error(base: str, message: str, pipeline_failed: bool = False) -> str:
    """The comment when the comparison could not be made, or the pull request's pipeline
    failed (so no stale verdict stays up)."""
    title, reason = (
        (
            "## ❌ The pipeline failed on this pull request",
            "The pipeline did not finish, so the model was not judged",
        )
        if pipeline_failed
        else (
            "## ⚠️ Model report could not be computed",
            f"Comparing with `{_code(base)}` failed, so the gate did not run",
        )
    )
    return "\n".join(
        [
            f"<!-- {WATERMARK_TITLE} -->",
            title,
            "",
            f"{reason}:",
            "",
            "```text",
            _cell(message, 4_000).replace("```", "'''"),
            "```",
            "",
        ]
    )


def _summary_line(comparison: Comparison) -> str:
    base = _code(comparison.base)
    if not comparison.has_baseline:
        return (
            f"No baseline yet: `{base}` has no metrics, so only the absolute thresholds "
            "and the trivial baseline are checked."
        )
    if comparison.unchanged:
        return f"No changes to the model: pipeline, params and metrics are as on `{base}`."
    changed = len(comparison.params)
    what = [
        "the pipeline (dvc.lock) changed" if comparison.lock_changed else "dvc.lock is as on the base",
        f"{changed} param{'s' if changed != 1 else ''} changed",
    ]
    return f"Compared with `{base}`: {', '.join(what)}."


def _policy_lines(note: PolicyNote, out: _Budget) -> list[str]:
    """The policy change in the verdict section: applied (approved) or not, and what changed."""
    if note.applied:
        status = f"Applied: {note.approval.note}."
    else:
        status = f"Not applied: this pull request was judged with the base's policy; {note.approval.note}."
    rows = [[change.key, _fmt(change.base), _fmt(change.proposed)] for change in note.changes]
    table = out.table(["policy key", "base", "this PR"], rows, reserve=6_000)
    return ["### ⚠️ This pull request changes the gate's policy", "", status, "", *table]


def _gated_rows(comparison: Comparison, policy: Policy) -> list[list[str]]:
    """The model's metrics, gated ones first, with the trivial baseline beside them."""
    names = [n.removeprefix("model.") for n in comparison.metrics if n.startswith("model.")]
    gated = [n for n in policy.gate.metrics if n in names]
    rows = []
    for name in gated + sorted(set(names) - set(gated)):
        trivial = comparison.metrics.get(f"baseline.{name}")
        rows.append(
            [
                f"model.{name}",
                *_change_cells(comparison.metrics[f"model.{name}"]),
                _fmt(trivial.new if trivial else None),
                _gate_cell(name, policy),
            ]
        )
    return rows


def _gate_cell(name: str, policy: Policy) -> str:
    rule = policy.gate.metrics.get(name)
    parts = [f"{rule.direction} is better, tolerance {rule.tolerance:g}"] if rule else []
    threshold = policy.thresholds.get(name)
    if threshold is not None and threshold.min is not None:
        parts.append(f"min {threshold.min:g}")
    if threshold is not None and threshold.max is not None:
        parts.append(f"max {threshold.max:g}")
    return "; ".join(parts) or "not gated"


def _metric_rows(comparison: Comparison, keep) -> list[list[str]]:
    return [
        [name.removeprefix("slices:"), *_change_cells(change)]
        for name, change in sorted(comparison.metrics.items())
        if keep(name)
    ]


def _change_cells(change: Change) -> list[str]:
    return [_fmt(change.old), _fmt(change.new), _fmt_delta(change.old, change.new)]


def _charts(comparison: Comparison, policy: Policy) -> list[str]:
    """One mermaid bar chart per gated metric: base, this PR and the trivial baseline.

    One chart per metric because the metrics have different scales, and one bar series
    per chart because mermaid draws several bar series on top of each other.
    """
    charts = []
    for name, rule in policy.gate.metrics.items():
        change = comparison.metrics.get(f"model.{name}")
        if change is None or _number(change.new) is None:
            continue
        trivial = comparison.metrics.get(f"baseline.{name}")
        bars = [
            (label, value)
            for label, value in (
                ("base", _number(change.old)),
                ("this PR", _number(change.new)),
                ("trivial baseline", _number(trivial.new) if trivial else None),
            )
            if value is not None
        ]
        values = [value for _, value in bars]
        low, high = min(0.0, *values), max(0.0, *values)
        pad = (high - low) * 0.1 or 1.0
        charts += [
            "```mermaid",
            "xychart-beta",
            f'    title "{name} ({rule.direction} is better)"',
            f"    x-axis [{', '.join(_quoted(label) for label, _ in bars)}]",
            f"    y-axis {_num(low - pad if low < 0 else 0)} --> {_num(high + pad)}",
            f"    bar [{', '.join(_num(value) for value in values)}]",
            "```",
            "",
        ]
    if not charts:
        return []
    return ["<details open><summary>Charts: gated metrics</summary>", "", *charts, "</details>", ""]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _num(value: float) -> str:
    """A plain decimal for mermaid (no exponent)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Budget:
    """Markdown lines that never exceed `limit` characters in all."""

    NOTE_ROOM = 200

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: list[str] = []
        self.used = 0

    def add(self, *lines: str) -> bool:
        """Add the lines as one block, or nothing when the block does not fit."""
        size = sum(len(line) + 1 for line in lines)
        if self.used + size > self.limit:
            return False
        self.lines += lines
        self.used += size
        return True

    def table(self, header: list[str], rows: list[list[str]], reserve: int) -> list[str]:
        """A GFM table and its blank line, as many rows as fit while keeping `reserve`
        characters for what follows; a note says how many rows were left out."""
        lines = [_row(header), _row(["---"] * len(header))]
        room = self.limit - self.used - reserve - self.NOTE_ROOM - sum(len(line) + 1 for line in lines)
        for cells in rows:
            line = _row(cells)
            room -= len(line) + 1
            if room < 0:
                break
            lines.append(line)
        lines.append("")
        hidden = len(rows) - (len(lines) - 3)
        if hidden:
            lines += [
                f"{hidden} more row{'s' if hidden != 1 else ''} not shown: the comment is capped at "
                f"{MAX_CHARS:,} characters (the job log lists every failed check).",
                "",
            ]
        return lines

    def text(self) -> str:
        return "\n".join(self.lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(str(cell), MAX_CELL) for cell in cells) + " |"


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    # `@` as an entity: a value from the pull request must not mention (notify) anyone.
    for char, escaped in (
        ("|", "\\|"),
        ("[", "\\["),
        ("]", "\\]"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("@", "&#64;"),
    ):
        text = text.replace(char, escaped)
    return text if len(text) <= width else text[: width - 1] + "…"


def _code(text: str) -> str:
    """Text for a code span: no backtick can end it early."""
    return text.replace("`", "'")


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_delta(old: object, new: object) -> str:
    delta = Change(old, new).delta
    if delta is None:
        return "—"
    return "0" if delta == 0 else f"{delta:+.4g}"


# The thin layer over DVC and git -------------------------------------------------


def read_diffs(root: Path, base: str) -> dict:
    """Metrics and params of the workspace against `base` through DVC's Python API, and
    whether dvc.lock changed. Plain JSON-able data: DVC's exceptions become
    {"error": class name, "message": text, "missing": the file does not exist}."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from scmrepo.exceptions import SCMError

    try:
        with Repo(str(root)) as repo:
            metrics = repo.metrics.diff(a_rev=base, b_rev="workspace", all=True)
            params = repo.params.diff(a_rev=base, b_rev="workspace")
    except (DvcException, SCMError, OSError) as err:
        hint = (
            " (in a shallow clone, fetch the base branch first)" if "unknown Git revision" in str(err) else ""
        )
        raise ReportError(f"DVC could not compare with {base!r}: {err}{hint}") from None
    return {
        "metrics": {"diff": metrics.get("diff", {}), "errors": _plain_errors(metrics.get("errors", {}))},
        "params": {"diff": params.get("diff", {}), "errors": _plain_errors(params.get("errors", {}))},
        "lock_changed": _lock_changed(root, base),
    }


def compare(root: Path, base: str) -> Comparison:
    return comparison_from_record(read_diffs(root, base), base)


def take_results(results: Path, root: Path) -> None:
    """Put the pull request's results (RESULT_FILES, as its pipeline wrote them) into the base's
    tree, so DVC compares them with the base. Only those files, only regular files, bounded."""
    if not (results / METRICS_FILE).is_file():
        raise NoResults(f"the pull request's results have no {METRICS_FILE}: its pipeline did not finish")
    for name in RESULT_FILES:
        source = results / name
        if not source.exists() and not source.is_symlink():
            (root / name).unlink(missing_ok=True)  # the pull request does not have it
            continue
        if source.is_symlink() or not source.is_file():
            raise ReportError(f"the pull request's {name} is not a regular file")
        if source.stat().st_size > MAX_RESULT_BYTES:
            raise ReportError(f"the pull request's {name} is over {MAX_RESULT_BYTES:,} bytes")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / name)


def _plain_errors(errors: dict) -> dict:
    plain = {}
    for revision, files in errors.items():
        # DVC reports one error per file, or one for a revision it could not read at all.
        per_file = files.items() if isinstance(files, dict) else [(WHOLE_REVISION, files)]
        plain[revision] = {
            path: {
                "error": type(error).__name__,
                "message": " ".join(str(error).split()) or type(error).__name__,
                "missing": isinstance(error, FileNotFoundError),
            }
            for path, error in per_file
        }
    return plain


def _lock_changed(root: Path, base: str) -> bool:
    """dvc.lock's blob at `base` against the file in the workspace (tracked or not)."""
    at_base = _git(root, "rev-parse", "--verify", "--quiet", f"{base}:{LOCK_FILE}", allowed=(0, 1))
    here = _git(root, "hash-object", LOCK_FILE) if (root / LOCK_FILE).exists() else ""
    return at_base != here


def _git(root: Path, *args: str, allowed: tuple[int, ...] = (0,)) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except OSError as err:
        raise ReportError(f"could not run git: {err}") from None
    if result.returncode not in allowed:
        message = " ".join(result.stderr.split()) or f"exit {result.returncode}"
        raise ReportError(f"git {args[0]} failed: {message}")
    return result.stdout.strip() if result.returncode == 0 else ""
