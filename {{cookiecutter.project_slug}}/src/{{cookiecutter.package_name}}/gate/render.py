"""The report as markdown, for the pull-request comment and the job summary (pure)."""

from __future__ import annotations

from ..feature_value import SECTION as IMPORTANCE
from ..feature_value import measured, without_value
from ..metrics import BETTER
from ..staleness import StalenessUnknown, table_rows
from .bounds import fairness_rows, small_groups, unjudged_fairness
from .charts import curve_charts, metric_charts
from .compare import Change, Comparison, formatted, number
from .curves import Curves
from .judge import UNDERPOWERED, Assessment, GateVerdict
from .noise import LEVEL, Significance, Unjudged
from .policy import Policy, PolicyNote

# `cml comment update --watermark-title=...` in the pr-report workflow uses this exact text.
WATERMARK_TITLE = "mlgate model report"
MAX_CHARS = 65_536  # GitHub's limit for a comment body
MAX_CELL = 120  # characters per table cell (long param values are cut)
MAX_NAMED = 30  # inputs named in the line on feature value


def render(
    comparison: Comparison,
    verdict: GateVerdict,
    policy: Policy,
    note: PolicyNote | None = None,
    limit: int = MAX_CHARS,
    staleness: dict | None = None,
    curves: Curves | None = None,
) -> str:
    """GFM for the pull-request comment: verdict first, then a policy change (if any), what
    failed, metrics, charts (bars; both branches' curves when given), and the long parts
    (other metrics, slices, params) folded in <details>.

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
            [f.check, f.metric, formatted(f.old), formatted(f.new), _fmt_delta(f.old, f.new), f.limit]
            for f in verdict.findings
        ]
        header = ["check", "metric", "base", "this PR", "delta", "limit"]
        out.add("### What failed", "", *out.table(header, rows, reserve=4_000))
    out.add(*_metrics_section(comparison, verdict, policy, out))
    out.add(*_feature_value_lines(comparison, policy))
    out.add(*_fairness_section(comparison, policy, out))
    for block in [] if comparison.unchanged else _charts(comparison, policy, curves):
        out.add(*block)
    if staleness is not None:
        out.add(*_staleness_lines(staleness, out))
    _add_folded_sections(comparison, out)
    return out.text()


def _add_folded_sections(comparison: Comparison, out: _Budget) -> None:
    """The long parts, folded: other metrics, slice metrics and the params changed (each table
    sized by what is left once the one before it is in)."""
    # Per-input importance is summed up in the line on feature value (plots/importance.json has it all).
    other_rows = _metric_rows(
        comparison, lambda name: not name.startswith(("model.", "slices:", f"{IMPORTANCE}."))
    )
    slice_rows = _metric_rows(comparison, lambda name: name.startswith("slices:"))
    param_rows = [[name, formatted(c.old), formatted(c.new)] for name, c in sorted(comparison.params.items())]
    for title, header, rows in (
        ("Other metrics", ["metric", "base", "this PR", "delta"], other_rows),
        ("Slice metrics", ["metric", "base", "this PR", "delta"], slice_rows),
        ("Params changed", ["param", "base", "this PR"], param_rows),
    ):
        if rows:
            opening = f"<details><summary>{title} ({len(rows)})</summary>"
            table = out.table(header, rows, reserve=len(opening) + 20)
            out.add(opening, "", *table, "</details>", "")


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
    lines = [_base_line(comparison, base)]
    if comparison.reproduce_failed:
        lines.append(
            f"⚠️ `{base}` was reproduced for this report because {comparison.reproduced}, "
            f"and that failed: {_cell(comparison.reproduce_failed, 600)}"
        )
    if comparison.results_uncommitted:
        lines.append(
            "⚠️ This pull request's committed `dvc.lock` is not what its pipeline produced: its "
            "results were not committed. Run `dvc repro` and commit dvc.lock, metrics.json and "
            "reports/, so that the base holds what its code produces."
        )
    return "\n\n".join(lines)


def _base_line(comparison: Comparison, base: str) -> str:
    if not comparison.has_baseline:
        return (
            f"No baseline yet: `{base}` has no metrics, so only the absolute thresholds "
            "and the trivial baseline are checked."
        )
    against = f"`{base}`"
    if comparison.reproduced and not comparison.reproduce_failed:
        against += f" as reproduced for this report ({comparison.reproduced})"
    if comparison.unchanged:
        return f"No changes to the model: pipeline, params and metrics are as on {against}."
    changed = len(comparison.params)
    what = [
        "the pipeline (dvc.lock) changed" if comparison.lock_changed else "dvc.lock is as on the base",
        f"{changed} param{'s' if changed != 1 else ''} changed",
    ]
    return f"Compared with {against}: {', '.join(what)}."


def _policy_lines(note: PolicyNote, out: _Budget) -> list[str]:
    """The policy change in the verdict section: applied (approved) or not, and what changed."""
    if note.applied:
        status = f"Applied: {note.approval.note}."
    else:
        status = f"Not applied: this pull request was judged with the base's policy; {note.approval.note}."
    rows = [[change.key, formatted(change.base), formatted(change.proposed)] for change in note.changes]
    table = out.table(["policy key", "base", "this PR"], rows, reserve=6_000)
    return ["### ⚠️ This pull request changes the gate's policy", "", status, "", *table]


def _metrics_section(comparison: Comparison, verdict: GateVerdict, policy: Policy, out: _Budget) -> list[str]:
    """The model's metrics with what each change means, and how that was told from noise."""
    header = [
        "metric",
        f"base ({_code(comparison.base)})",
        "this PR",
        "delta",
        f"{LEVEL:.0%} interval",
        "change",
    ]
    header += ["trivial baseline", "simple model", "gate"]
    rows = _gated_rows(comparison, policy, verdict)
    noise = [_noise_line(verdict.noise), ""] if verdict.noise is not None else []
    return ["### Metrics", "", *out.table(header, rows, reserve=1_000 + len("".join(noise))), *noise]


def _gated_rows(comparison: Comparison, policy: Policy, verdict: GateVerdict) -> list[list[str]]:
    """The model's metrics, gated ones first, with what each change means (told from noise)
    and the trivial baseline and simple model beside them."""
    names = [n.removeprefix("model.") for n in comparison.metrics if n.startswith("model.")]
    gated = [n for n in policy.gate.metrics if n in names]
    assessed = {item.metric: item for item in verdict.assessments}
    rows = []
    for name in gated + sorted(set(names) - set(gated)):
        trivial = comparison.metrics.get(f"baseline.{name}")
        simple = comparison.metrics.get(f"simple.{name}")
        rows.append(
            [
                f"model.{name}",
                *_change_cells(comparison.metrics[f"model.{name}"]),
                *_assessment_cells(assessed.get(name), policy),
                formatted(trivial.new if trivial else None),
                formatted(simple.new if simple else None),
                _gate_cell(name, policy),
            ]
        )
    return rows


def _assessment_cells(item: Assessment | None, policy: Policy) -> list[str]:
    if item is None:
        return ["—", "—"]
    span = "—" if item.interval is None else f"{item.interval.low:+.4g} … {item.interval.high:+.4g}"
    allowed = item.meaning == UNDERPOWERED and policy.gate.allow_underpowered
    return [span, f"{item.meaning} (allowed)" if allowed else item.meaning]


def _feature_value_lines(comparison: Comparison, policy: Policy) -> list[str]:
    """The inputs of no measurable value, in one line (nothing when importance was not measured)."""
    new = {name: number(change.new) for name, change in comparison.metrics.items() if change.new is not None}
    if not measured(new):
        return []
    useless = without_value(new)
    gated = "fails the gate" if policy.gate.require_feature_value else "not gated"
    if not useless:
        return ["Every input has measurable value (95% interval of its permutation importance above 0).", ""]
    shown = ", ".join(f"`{_code(_cell(name, 60))}`" for name in useless[:MAX_NAMED])
    more = f" and {len(useless) - MAX_NAMED} more" if len(useless) > MAX_NAMED else ""
    return [
        f"Inputs of no measurable value (95% interval of permutation importance not above 0; "
        f"gate.require_feature_value: {gated}): {shown}{more}.",
        "",
    ]


def _fairness_section(comparison: Comparison, policy: Policy, out: _Budget) -> list[str]:
    """Fairness differences with their intervals and bounds; groups too small to judge."""
    rows = [
        [
            row.name,
            formatted(comparison.metrics[f"slices:{row.name}.value"].old),
            f"{row.value:.4g}",
            "—" if row.low is None or row.high is None else f"{row.low:.4g} … {row.high:.4g}",
            "—" if row.bound is None else f"max {row.bound:g}",
            row.meaning,
        ]
        for row in fairness_rows(comparison.metrics, policy)
    ]
    lines = []
    if rows:
        header = ["fairness", "base", "this PR", f"{LEVEL:.0%} interval", "bound", "meaning"]
        lines += ["### Fairness", "", *out.table(header, rows, reserve=2_000)]
        lines += ["A bound fails when the estimate and its whole interval (bootstrap) lie above it.", ""]
    small = small_groups(comparison.metrics)
    if small:
        named = ", ".join(f"{group.name} ({group.count})" for group in small)
        lines += [
            _cell(
                f"Too small to judge (under {policy.min_group_size} test rows, no bounds): {named}.", 1_500
            ),
            "",
        ]
    unmeasured = unjudged_fairness(comparison.metrics)
    if unmeasured:
        lines += [
            _cell(
                f"Fairness not measured (fewer than two groups large enough): {', '.join(unmeasured)}.", 600
            ),
            "",
        ]
    return lines


def _noise_line(noise: Significance | Unjudged) -> str:
    """How the changes were told from noise, under the metrics."""
    if isinstance(noise, Unjudged):
        return f"Changes judged on the point estimates alone: {_cell(noise.reason, 300)}."
    if noise.paired:
        how = f"paired bootstrap over the same {noise.rows:,} test rows"
    else:
        how = (
            f"the test set changed ({noise.common:,} rows in common; {noise.base_rows:,} on the base, "
            f"{noise.rows:,} here): unpaired bootstrap, each side resampled on its own"
        )
    lines = [
        f"Intervals: {how}, {noise.rounds:,} resamples. A gated metric fails when it is worse than its "
        "tolerance and its interval excludes 0; worse but not significant passes; an interval wider than "
        "twice the tolerance is too small to judge."
    ]
    if noise.mcnemar is not None:
        test = noise.mcnemar
        lines.append(
            f"McNemar's test on the labels: {test.base_only:,} rows right on the base only, "
            f"{test.pr_only:,} right here only, p = {test.p_value:.3g}."
        )
    return " ".join(lines)


def _gate_cell(name: str, policy: Policy) -> str:
    rule = policy.gate.metrics.get(name)
    parts = [f"{BETTER[name]} is better, tolerance {rule.tolerance:g}"] if rule else []
    if name in policy.gate.beat_simple:
        parts.append("beats the simple model")
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
    return [formatted(change.old), formatted(change.new), _fmt_delta(change.old, change.new)]


def _charts(comparison: Comparison, policy: Policy, shown: Curves | None) -> list[list[str]]:
    """The gated metrics' bars, open, and the curves of both branches, folded: two blocks, so
    that a report near its size limit drops the curves first."""
    blocks = []
    bars = metric_charts(comparison, policy)
    if bars:
        blocks.append(["<details open><summary>Charts: gated metrics</summary>", "", *bars, "</details>", ""])
    drawn = curve_charts(shown) if shown is not None else []
    if drawn:
        opening = "<details><summary>Charts: curves of the base and this pull request</summary>"
        blocks.append([opening, "", *drawn, "</details>", ""])
    return blocks


def _staleness_lines(report: dict, out: _Budget) -> list[str]:
    """This pull request's quality against model age (reports/staleness.json), folded."""
    try:
        header, rows, note = table_rows(report)
    except StalenessUnknown as err:
        return [_cell(str(err), 300), ""]
    except (KeyError, TypeError, ValueError):  # the pull request's file, not as the backtest writes it
        return ["reports/staleness.json is not as the backtest stage writes it: model age not shown.", ""]
    opening = "<details><summary>Model age: quality of models trained on ever earlier data</summary>"
    table = out.table(header, rows, reserve=len(opening) + 600)
    return [opening, "", *table, _cell(note, 500), "</details>", ""]


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


def _fmt_delta(old: object, new: object) -> str:
    delta = Change(old, new).delta
    if delta is None:
        return "—"
    return "0" if delta == 0 else f"{delta:+.4g}"
