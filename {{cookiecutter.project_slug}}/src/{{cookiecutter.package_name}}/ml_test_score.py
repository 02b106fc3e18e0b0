"""The ML Test Score (Breck et al., 2017) of this project, from test results (pure but for reading).

tests/ml_test_score.yaml maps each of the rubric's 28 ids to the tests that check it and the
tests that inject the fault it exists for (pytest node ids; `gate:judged` for the pull-request
gate's own record). An id scores 1 only when it has both, and every one of them passed in
the results read (JUnit XML from the test jobs, reports/gate.json); else 0, with the reason.
A section's score is the sum of its seven; the final score is the lowest section's.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SECTIONS = {"D": "data", "M": "model", "I": "infrastructure", "Mon": "monitoring"}
IDS = [f"{prefix}{n}" for prefix in SECTIONS for n in range(1, 8)]
GATE_JUDGED = "gate:judged"  # reports/gate.json holds a verdict (pass or fail), not an error
PASSED, FAILED, SKIPPED, NOT_RUN = "passed", "failed", "skipped", "not run"
MAX_RESULTS_BYTES = 50_000_000  # per JUnit file: the pull request's test jobs wrote them
MAX_COMMENT = 65_536  # GitHub's limit for a comment body (gate/render.py's MAX_CHARS)


class ScoreError(ValueError):
    """The table or a results file cannot be read."""


@dataclass(frozen=True)
class Entry:
    test: str  # what the rubric asks, in a few words
    checks: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    missing: str = ""  # what is not built yet (an id with no fault test must say)


@dataclass(frozen=True)
class Scored:
    points: int
    evidence: list[str]


def parse_table(text: str, source: str) -> dict[str, Entry]:
    """The table: every rubric id once, each with its checks, faults or what is missing."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScoreError(f"{source}: not valid YAML ({type(err).__name__})") from None
    if not isinstance(raw, dict) or sorted(raw) != sorted(IDS):
        found = sorted(map(str, raw)) if isinstance(raw, dict) else []
        wrong = sorted(set(found) ^ set(IDS))
        raise ScoreError(f"{source}: needs exactly the 28 rubric ids ({', '.join(IDS)}); wrong: {wrong}")
    table = {}
    for rubric_id, item in raw.items():
        if not isinstance(item, dict) or set(item) - {"test", "checks", "faults", "missing"}:
            raise ScoreError(f"{source}: {rubric_id}: allowed keys are test, checks, faults, missing")
        lists = [item.get(key) or [] for key in ("checks", "faults")]
        if not all(isinstance(names, list) and all(isinstance(n, str) for n in names) for names in lists):
            raise ScoreError(f"{source}: {rubric_id}: checks and faults are lists of test names")
        entry = Entry(str(item.get("test", "")), lists[0], lists[1], str(item.get("missing") or ""))
        if not entry.faults and not entry.missing:
            raise ScoreError(f"{source}: {rubric_id}: no fault test, so say what is missing (missing: ...)")
        table[rubric_id] = entry
    return table


def junit_outcomes(text: str, source: str) -> dict[str, list[str]]:
    """Each test case of a pytest JUnit XML file, as "classname::name", with its outcomes."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        raise ScoreError(f"{source}: not JUnit XML ({err})") from None
    outcomes: dict[str, list[str]] = {}
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = FAILED if kinds & {"failure", "error"} else SKIPPED if "skipped" in kinds else PASSED
        outcomes.setdefault(f"{case.get('classname', '')}::{case.get('name', '')}", []).append(outcome)
    return outcomes


def merged(results: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    combined: dict[str, list[str]] = {}
    for outcomes in results:
        for case, found in outcomes.items():
            combined.setdefault(case, []).extend(found)
    return combined


def outcome(name: str, outcomes: dict[str, list[str]], gate: dict | None) -> str:
    """A table entry's outcome: every run of the test (each parametrization) passed, or not."""
    if name == GATE_JUDGED:
        return PASSED if gate is not None and gate.get("verdict") in ("pass", "fail") else NOT_RUN
    path, _, function = name.partition("::")
    key = path.removesuffix(".py").replace("/", ".") + "::" + function
    found = [o for case, runs in outcomes.items() if case == key or case.startswith(key + "[") for o in runs]
    if not found:
        return NOT_RUN
    return FAILED if FAILED in found else SKIPPED if SKIPPED in found else PASSED


def score_entry(entry: Entry, outcomes: dict[str, list[str]], gate: dict | None) -> Scored:
    evidence = [f"{outcome(name, outcomes, gate)}: {name}" for name in [*entry.checks, *entry.faults]]
    if entry.missing:
        evidence.append(f"missing: {entry.missing}")
    complete = bool(entry.checks) and bool(entry.faults) and not entry.missing
    points = int(complete and all(line.startswith(PASSED) for line in evidence))
    return Scored(points, evidence)


def score(table: dict[str, Entry], outcomes: dict[str, list[str]], gate: dict | None) -> dict:
    """The JSON shape `test-score --json` prints."""
    tests = {rubric_id: score_entry(table[rubric_id], outcomes, gate) for rubric_id in IDS}
    sections = {
        name: sum(tests[f"{prefix}{n}"].points for n in range(1, 8)) for prefix, name in SECTIONS.items()
    }
    return {
        "sections": sections,
        "final": min(sections.values()),
        "tests": {rubric_id: {"points": s.points, "evidence": s.evidence} for rubric_id, s in tests.items()},
    }


def render_text(result: dict, table: dict[str, Entry]) -> str:
    """One line per id: its points, what it tests, how many of its tests passed and the first
    that did not, or what is missing (--json has every test)."""
    lines = [f"{'id':<5} {'points':>6}  test: evidence"]
    for rubric_id in IDS:
        scored = result["tests"][rubric_id]
        lines.append(
            f"{rubric_id:<5} {scored['points']:>6}  {table[rubric_id].test}: {_summary(scored['evidence'])}"
        )
    sums = ", ".join(f"{name} {points}/7" for name, points in result["sections"].items())
    return "\n".join([*lines, "", f"sections: {sums}; final (the lowest): {result['final']}"])


def _summary(evidence: list[str]) -> str:
    tests = [line for line in evidence if not line.startswith("missing: ")]
    passed = sum(line.startswith(f"{PASSED}: ") for line in tests)
    parts = [f"{passed}/{len(tests)} tests passed"] if tests else []
    parts += [line for line in tests if not line.startswith(f"{PASSED}: ")][:1]
    parts += [line for line in evidence if line.startswith("missing: ")]
    return "; ".join(parts)


def render_markdown(result: dict, table: dict[str, Entry]) -> str:
    """A folded block for the pull-request comment."""
    sums = ", ".join(f"{name} {points}/7" for name, points in result["sections"].items())
    rows = [
        f"| {rubric_id} | {result['tests'][rubric_id]['points']} | {table[rubric_id].test} | "
        + _cell(_summary(result["tests"][rubric_id]["evidence"]))
        + " |"
        for rubric_id in IDS
    ]
    return "\n".join(
        [
            f"<details><summary>ML Test Score: {result['final']} ({sums})</summary>",
            "",
            "An id scores 1 when its checks and the tests that inject its fault all passed in this run.",
            "",
            "| id | points | test | evidence |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            "</details>",
            "",
        ]
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("@", "&#64;")


def junit_files(paths: list[Path]) -> list[Path]:
    """The files given, and the junit*.xml files anywhere under the folders given."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("junit*.xml")) if path.is_dir() else [path]
    return found


def read_results(junit: list[Path], gate: Path) -> tuple[dict[str, list[str]], dict | None]:
    """The test cases of the JUnit files (a missing or oversized file is an error) and the
    gate's record (None when there is none: its entries did not run)."""
    outcomes = []
    for path in junit_files(junit):
        try:
            if path.stat().st_size > MAX_RESULTS_BYTES:
                raise ScoreError(f"{path}: over {MAX_RESULTS_BYTES:,} bytes")
            outcomes.append(junit_outcomes(path.read_text(encoding="utf-8"), str(path)))
        except OSError as err:
            raise ScoreError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        record = json.loads(gate.read_text(encoding="utf-8")) if gate.is_file() else None
    except (OSError, ValueError):
        raise ScoreError(f"{gate}: not a gate record (JSON)") from None
    return merged(outcomes), record if isinstance(record, dict) else None


def with_report(report: str, block: str, limit: int = MAX_COMMENT) -> str:
    """The pull-request comment: the report, then the score's block when both fit in `limit`."""
    combined = f"{report.rstrip()}\n\n{block}" if report else block
    if len(combined) <= limit:
        return combined
    return report if report else block[:limit]
