"""The model card of a registered version, as markdown (pure: plain dicts in, text out).

`register` gathers the facts from the project's files (card_facts.py) and keeps them beside
the version; the card is rendered from those facts and the version's tags (commit, data hash,
canary verdict, a forced promotion's reason and who gave it), so it can be rendered again
after the canary or a promotion. Every value that comes from a file or a tag may come from a
pull request: it is escaped, never written as markdown or HTML of its own.
"""

from __future__ import annotations

import math
import re

from .tags import CANARY, CANARY_CHAMPION, FORCED, FORCED_BY, PREVIOUS

MARK = "<!-- mlgate model card -->"  # the card's first line: what `check_card` looks for
MD5 = re.compile(r"^[0-9a-f]{32}$")
COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
TOO_SMALL = "too_small"  # a group's mark in reports/slices.json (pipeline/evaluate.py)
MAX_TEXT = 2_000  # characters of one free-text value (intended use, a reason)
MAX_CELL = 120
MAX_PARAMS = 80  # rows of the params table
# The card's summary lines, which `check_card` reads back.
DATA_LINE = re.compile(r"^- Data md5 \(data/raw/data\.csv\): `([0-9a-f]{32})`$", re.MULTILINE)
GATE_LINE = re.compile(r"^- Gate: \*\*(pass|fail|error|not judged)\*\*", re.MULTILINE)
CANARY_LINE = re.compile(r"^- Canary: \*\*(passed|refused|not run)\*\*", re.MULTILINE)
# Backslash-escaped: every ASCII character that markdown gives a meaning to.
MARKDOWN_PUNCTUATION = "\\`*_{}[]()#+-.!|~"


class CardError(ValueError):
    """A card that lacks what every card must say."""


def escaped(value: object, width: int = MAX_CELL) -> str:
    """A value from a file or a tag as inert markdown text: one line, no markup, no HTML, no mention."""
    text = " ".join(str(value).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("@", "&#64;")
    return "".join("\\" + char if char in MARKDOWN_PUNCTUATION else char for char in text)


def number(value: object) -> str:
    """A metric as the card shows it (4 significant digits); anything else escaped."""
    if _is_number(value):
        return f"{value:.4g}"
    return escaped(value)


def render_card(name: str, version: str, facts: dict, tags: dict[str, str]) -> str:
    """The whole card: summary lines first (what `check_card` reads), then each section."""
    sections = [
        [MARK, f"# Model card: {escaped(name)} version {escaped(version)}", ""],
        summary_lines(facts, tags),
        intended_use_lines(facts),
        data_lines(facts, tags),
        params_lines(facts.get("params")),
        metrics_lines(facts),
        slices_lines(facts.get("slices")),
        limits_lines(facts),
        verdict_lines(facts.get("gate"), tags),
    ]
    return "\n".join(line for section in sections for line in section)


def summary_lines(facts: dict, tags: dict[str, str]) -> list[str]:
    data = tags.get("data_md5", "")
    shown = f"`{data}`" if MD5.fullmatch(data) else f"not recorded ({escaped(data or 'no data_md5 tag')})"
    return [
        f"- Data md5 (data/raw/data.csv): {shown}",
        f"- Gate: {gate_summary(facts.get('gate'))}",
        f"- Canary: {canary_summary(tags)}",
        f"- Promotion: {promotion_summary(tags)}",
        "",
    ]


def gate_summary(gate: object) -> str:
    if not isinstance(gate, dict) or gate.get("verdict") not in ("pass", "fail", "error"):
        why = gate.get("missing", "") if isinstance(gate, dict) else ""
        return f"**not judged** ({escaped(why or 'no gate record', MAX_TEXT)})"
    verdict = gate["verdict"]
    base = gate.get("base")
    against = f" against {escaped(base)}" if base else ""
    return f"**{verdict}**{against}"


def canary_summary(tags: dict[str, str]) -> str:
    verdict = tags.get(CANARY)
    if verdict not in ("passed", "refused"):
        return "**not run** (no canary has judged this version yet)"
    champion = tags.get(CANARY_CHAMPION, "")
    against = (
        "as the first deploy (no champion)"
        if champion in ("", "none")
        else f"against version {escaped(champion)}"
    )
    return f"**{verdict}** {against}"


def promotion_summary(tags: dict[str, str]) -> str:
    reason = tags.get(FORCED)
    if reason:
        by = escaped(tags.get(FORCED_BY) or "unknown")
        return f"**forced** without the canary's pass, by {by}: {escaped(reason, MAX_TEXT)}"
    replaced = tags.get(PREVIOUS)
    if replaced:
        return f"promoted, replacing version {escaped(replaced)}"
    return "no forced promotion recorded (without a reason, only a version the canary passed is promoted)"


def intended_use_lines(facts: dict) -> list[str]:
    use = str(facts.get("intended_use") or "").strip()
    text = escaped(use, MAX_TEXT) if use else "Not written: set `card.intended_use` in params.yaml."
    return ["## Intended use", "", text, ""]


def data_lines(facts: dict, tags: dict[str, str]) -> list[str]:
    params = _mapping(facts.get("params"))
    data, commit = tags.get("data_md5", ""), tags.get("git_commit", "")
    rows = [
        ["data md5 (data/raw/data.csv)", code_or_text(data, MD5)],
        ["git commit", code_or_text(commit, COMMIT)],
        ["source", escaped(params.get("data.source", "not recorded"))],
        ["target", escaped(params.get("data.target", "not recorded"))],
        ["test rows", number(facts.get("test_rows", "not recorded"))],
    ]
    return ["## Data", "", *table(["", "value"], rows)]


def code_or_text(value: str, pattern: re.Pattern[str]) -> str:
    """A hash as code when it is one; anything else escaped (never inside a code span)."""
    return f"`{value}`" if pattern.fullmatch(value) else escaped(value or "not recorded")


def params_lines(params: object) -> list[str]:
    params = _mapping(params)
    if not params:
        return ["## Params", "", "Not recorded.", ""]
    shown = sorted(params.items())[:MAX_PARAMS]
    more = len(params) - len(shown)
    note = [f"{more} more not shown.", ""] if more > 0 else []
    rows = [[escaped(key), escaped(value)] for key, value in shown]
    summary = "<details><summary>Params that made the model (params.yaml)</summary>"
    return ["## Params", "", summary, "", *table(["key", "value"], rows), *note, "</details>", ""]


def metrics_lines(facts: dict) -> list[str]:
    """The model's test metrics, each with its 95% interval (or why there is none) and the baseline's."""
    metrics, intervals = _mapping(facts.get("metrics")), _mapping(facts.get("intervals"))
    baseline = _mapping(facts.get("baseline"))
    if not metrics:
        return ["## Metrics (test set)", "", "Not recorded.", ""]
    rows = [
        [escaped(name), number(value), interval_text(intervals.get(name)), number(baseline.get(name, "—"))]
        for name, value in sorted(metrics.items())
    ]
    note = str(facts.get("interval_note") or "")
    if not intervals:
        note = f"No intervals: {note or 'none were recorded'}."
    header = ["metric", "value", "95% interval", "trivial baseline"]
    return ["## Metrics (test set)", "", *table(header, rows), escaped(note, MAX_TEXT), ""]


def interval_text(interval: object) -> str:
    if isinstance(interval, list | tuple) and len(interval) == 2 and all(map(_is_number, interval)):
        return f"\\[{number(interval[0])}, {number(interval[1])}\\]"
    return "no interval"


def slices_lines(slices: object) -> list[str]:
    """Each slice's groups (rows and metrics), then the fairness differences with their intervals."""
    lines = ["## Slices and fairness", ""]
    features = {
        str(name): found
        for name, found in _mapping(slices).items()
        if isinstance(found, dict) and isinstance(found.get("groups"), dict)
    }
    if not features:
        return [*lines, "No slices recorded (reports/slices.json).", ""]
    fairness: list[list[str]] = []
    for feature, found in sorted(features.items()):
        lines += [f"**{escaped(feature)}**", "", *group_table(found["groups"])]
        fairness += fairness_rows(feature, found.get("fairness"))
    if fairness:
        lines += [
            "**Fairness differences**",
            "",
            *table(["slice", "difference", "value", "95% interval"], fairness),
        ]
    else:
        lines += ["No fairness differences recorded (they are measured for classifiers).", ""]
    return lines


def group_table(groups: dict) -> list[str]:
    found = [values for values in groups.values() if isinstance(values, dict)]
    names = sorted({str(key) for values in found for key in values} - {TOO_SMALL, "count"})
    rows = []
    for group, values in sorted(groups.items(), key=lambda item: str(item[0])):
        values = _mapping(values)
        cells = [number(values.get(name, "—")) for name in names]
        if values.get(TOO_SMALL):
            cells = ["too small to judge"] * len(names)
        rows.append([escaped(group), number(values.get("count", "—")), *cells])
    return table(["group", "rows", *map(escaped, names)], rows)


def fairness_rows(feature: str, fairness: object) -> list[list[str]]:
    rows = []
    for measure, found in sorted(_mapping(fairness).items()):
        if isinstance(found, dict) and "value" in found:
            interval = interval_text([found.get("low"), found.get("high")])
            rows.append([escaped(feature), escaped(measure), number(found["value"]), interval])
    return rows


def limits_lines(facts: dict) -> list[str]:
    """The limits params.yaml states, then those the results show (groups too small to judge)."""
    limitations = facts.get("limitations")
    stated = limitations if isinstance(limitations, list) else []
    found = [
        f"{feature} = {group}: too few test rows to judge"
        for feature, group in small_groups(facts.get("slices"))
    ]
    items = [escaped(item, MAX_TEXT) for item in stated] + [escaped(item) for item in found]
    if not stated:
        items.append("None written in params.yaml (`card.limitations`).")
    return ["## Known limits", "", *(f"- {item}" for item in items), ""]


def small_groups(slices: object) -> list[tuple[str, str]]:
    return [
        (str(feature), str(group))
        for feature, found in sorted(_mapping(slices).items())
        for group, values in sorted(_mapping(_mapping(found).get("groups")).items())
        if isinstance(values, dict) and values.get(TOO_SMALL)
    ]


def verdict_lines(gate: object, tags: dict[str, str]) -> list[str]:
    """The gate's findings and who approved a policy change; the canary; a forced promotion."""
    lines = ["## Verdicts", "", f"- Gate: {gate_summary(gate)}"]
    record = _mapping(gate)
    if record.get("error"):
        lines.append(f"  - error: {escaped(record['error'], MAX_TEXT)}")
    for finding in record.get("findings") or []:
        found = _mapping(finding)
        what = " ".join(str(found.get(key, "")) for key in ("check", "metric"))
        lines.append(f"  - failed: {escaped(what)} ({escaped(found.get('limit', ''))})")
    if record:
        lines += policy_lines(record.get("policy"))
    lines += [f"- Canary: {canary_summary(tags)}", f"- Promotion: {promotion_summary(tags)}", ""]
    return lines


def policy_lines(policy: object) -> list[str]:
    """Who approved a pull request's own policy (gate.json): the gate judged by it."""
    policy = _mapping(policy)
    changed = policy.get("changed") if isinstance(policy.get("changed"), list) else []
    if not changed:
        return ["  - policy: the base's, unchanged"]
    keys = ", ".join(escaped(key) for key in changed)
    if policy.get("applied") != "pull request":
        return [f"  - policy change: {keys}, not applied (the base's policy judged)"]
    return [
        f"  - policy change: {keys}, applied, approved by {escaped(policy.get('approved_by') or 'unknown')}"
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table of cells already escaped or formatted, and its blank line."""
    lines = [header, ["---"] * len(header), *rows]
    return [*("| " + " | ".join(cells) + " |" for cells in lines), ""]


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_card(markdown: str) -> None:
    """CardError unless the card says what every card must: its data hash and the gate's verdict."""
    if not markdown.startswith(MARK):
        raise CardError("not a model card (its first line is not the card's mark)")
    if not DATA_LINE.search(markdown):
        raise CardError("the model card has no data hash (an md5 of data/raw/data.csv)")
    if not GATE_LINE.search(markdown):
        raise CardError("the model card has no gate verdict")
    if not CANARY_LINE.search(markdown):
        raise CardError("the model card has no canary line")
