"""The Makefile's test tiers (test-fast, test-pipeline, test-deploy) split every test between them, once each.

CI may run the tiers as parallel jobs instead of `make test`: a test that no tier selects
would never run there, and one that two tiers select would run twice. Every combination of
the markers declared in pyproject.toml is matched against each tier's `-m` expression with
pytest's own evaluator, so a new marker that no tier names is caught before any test has it.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TIERS = ("test-fast", "test-pipeline", "test-deploy")
RECIPE = re.compile(r'^(?P<target>test-[a-z]+):.*\n\tuv run pytest -m "(?P<markers>[^"]+)"$', re.MULTILINE)


def tier_expressions(makefile: str) -> dict[str, str]:
    """Target -> the marker expression its recipe passes to pytest."""
    return {found["target"]: found["markers"] for found in RECIPE.finditer(makefile)}


def declared_markers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [line.split(":")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]]


def overlaps_and_gaps(tiers: dict[str, str], markers: list[str]) -> list[str]:
    """Each combination of markers that no tier or more than one tier selects, with the tiers."""
    compiled = {target: Expression.compile(expression) for target, expression in tiers.items()}
    problems = []
    for size in range(len(markers) + 1):
        for combination in itertools.combinations(markers, size):
            chosen = set(combination)
            selected = [
                target for target, expression in compiled.items() if expression.evaluate(chosen.__contains__)
            ]
            if len(selected) != 1:
                problems.append(f"{sorted(chosen)} -> {selected}")
    return problems


def test_every_marker_combination_falls_in_exactly_one_tier():
    tiers = tier_expressions((ROOT / "Makefile").read_text())
    assert sorted(tiers) == sorted(TIERS)
    assert overlaps_and_gaps(tiers, declared_markers()) == []


def test_a_marker_no_tier_selects_is_caught():
    tiers = tier_expressions((ROOT / "Makefile").read_text())
    tiers["test-fast"] = "unit or data or model"  # a list of markers, not "none of the slow ones"
    assert "['gpu'] -> []" in overlaps_and_gaps(tiers, [*declared_markers(), "gpu"])


def test_a_tier_that_overlaps_another_is_caught():
    tiers = tier_expressions((ROOT / "Makefile").read_text())
    tiers["test-deploy"] = "registry or serving or load"  # forgot: and not integration
    assert "['integration', 'serving'] -> ['test-pipeline', 'test-deploy']" in overlaps_and_gaps(
        tiers, declared_markers()
    )
