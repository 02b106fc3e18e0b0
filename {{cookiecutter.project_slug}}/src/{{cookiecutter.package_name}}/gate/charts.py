"""The report's mermaid charts (pure): gated metrics as bars, base and pull-request curves as lines.

Mermaid, not images: GitHub draws it in the comment, and nothing is uploaded. Every text in a
chart is fixed here or reduced to plain characters (gate/curves.py), so no value from a file
can end the block or add syntax. The charts are small (SIZE) so that several fit on a screen.
"""

from __future__ import annotations

from ..metrics import BETTER
from .compare import Comparison, number
from .curves import Curves
from .policy import Policy

SIZE = {"width": 420, "height": 220}  # pixels
GREY, BLUE, RED = "#8c959f", "#0969da", "#cf222e"  # GitHub's own palette: base, this PR, limit


def metric_charts(comparison: Comparison, policy: Policy) -> list[str]:
    """A bar chart per gated metric: the base and this PR (or, with no base yet, this PR and the
    trivial baseline), and a line at the gate's limit, base ± tolerance.

    The y-axis spans the values shown, not 0 to the top: from 0, a change of a few hundredths
    (log loss 0.426 against 0.463) is a sliver. Here the values, the limit among them, fill
    the middle half of the axis, so a change of the tolerance is at least a quarter of the
    chart's height, and one that fails the gate crosses the line.
    One chart per metric because the metrics have different scales, and one bar series per
    chart because mermaid draws several bar series on top of each other.
    """
    charts = []
    for name in policy.gate.metrics:
        change = comparison.metrics.get(f"model.{name}")
        new = number(change.new) if change else None
        if change is None or new is None:
            continue
        old, tolerance = number(change.old), policy.gate.metrics[name].tolerance
        if old is None:
            trivial = comparison.metrics.get(f"baseline.{name}")
            bars = [("this PR", new), ("trivial baseline", number(trivial.new) if trivial else None)]
            limit = None
        else:
            bars = [("base", old), ("this PR", new)]
            limit = old + tolerance if BETTER[name] == "lower" else old - tolerance
        shown = [(label, value) for label, value in bars if value is not None]
        charts += _bar_chart(name, shown, limit, tolerance)
    return charts


def _bar_chart(name: str, bars: list[tuple[str, float]], limit: float | None, tolerance: float) -> list[str]:
    values = [value for _, value in bars] + ([] if limit is None else [limit])
    low, high = axis(values, tolerance)
    lines = [
        f"    title {_quoted(name + ' (' + BETTER[name] + ' is better)')}",
        f"    x-axis [{', '.join(_quoted(label) for label, _ in bars)}]",
        f"    y-axis {_num(low)} --> {_num(high)}",
        f"    bar [{', '.join(_num(value) for _, value in bars)}]",
    ]
    if limit is not None:
        lines.append(f"    line [{', '.join(_num(limit) for _ in bars)}]")
    return _block([BLUE, RED], lines)


def axis(values: list[float], tolerance: float) -> tuple[float, float]:
    """The y-axis around `values`: half their spread (at least half the tolerance) beyond
    each end. With a limit, base ± tolerance, among them it spans at least twice the tolerance."""
    low, high = min(values), max(values)
    span = max(high - low, tolerance, 1e-9)
    return low - span / 2, high + span / 2


def curve_charts(shown: Curves) -> list[str]:
    """A line chart per curve: the base's (grey) and this PR's (blue), on the same points."""
    charts = []
    for curve in shown.curves:
        series = ([curve.base] if curve.base is not None else []) + [curve.pr]
        values = [value for points in series for value in points]
        top = max(1.0, *values) if curve.x_label == "false positive rate" else max(values) * 1.05 or 1.0
        whose = "base grey, this PR blue" if curve.base is not None else "this PR (not on the base)"
        lines = [
            f"    title {_quoted(curve.title + ': ' + whose)}",
            f"    x-axis {_quoted(curve.x_label)} {_num(curve.x_range[0])} --> {_num(curve.x_range[1])}",
            f"    y-axis {_quoted(curve.y_label)} 0 --> {_num(top)}",
            *(f"    line [{', '.join(_num(value) for value in points)}]" for points in series),
        ]
        charts += _block([GREY, BLUE] if curve.base is not None else [BLUE], lines)
    if shown.classes_left_out:
        left = shown.classes_left_out
        charts += [f"{left} less frequent class{'es' if left != 1 else ''} not drawn.", ""]
    return charts


def _block(colours: list[str], lines: list[str]) -> list[str]:
    """A fenced mermaid xychart, small, its series in these colours (in the order drawn)."""
    config = [
        "---",
        "config:",
        "  xyChart:",
        f"    width: {SIZE['width']}",
        f"    height: {SIZE['height']}",
        "  themeVariables:",
        "    xyChart:",
        f'      plotColorPalette: "{", ".join(colours)}"',
        "---",
    ]
    return ["```mermaid", *config, "xychart-beta", *lines, "```", ""]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _num(value: float) -> str:
    """A plain decimal for mermaid (no exponent)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
