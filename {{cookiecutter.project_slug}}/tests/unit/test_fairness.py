"""Slices and fairness with absolute bounds (pure): the fairness differences and their intervals,
groups too small to judge, and the gate's bounds on reports/slices.json (gate/bounds.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from {{ cookiecutter.package_name }}.config.gate import GateSettings
from {{ cookiecutter.package_name }}.config.reading import ConfigError
from {{ cookiecutter.package_name }}.gate.bounds import (
    ABOVE_NOT_SIGNIFICANT,
    bound_findings,
    fairness_rows,
    slice_changes,
    small_groups,
    unjudged_fairness,
)
from {{ cookiecutter.package_name }}.gate.policy import Policy, policy_changes, policy_from_params
from {{ cookiecutter.package_name }}.pipeline.evaluate import TOO_SMALL, fairness_slices, slice_metrics
from {{ cookiecutter.package_name }}.pipeline.fairness import differences, fairness_differences

pytestmark = pytest.mark.unit

GATE = {"metrics": {"accuracy": {"tolerance": 0.02}}, "slice_tolerance": 0.05}
BOUNDS = {
    "slices": {"recall": {"min": 0.35}},
    "fairness": {"demographic_parity_difference": {"max": 0.2}, "equalized_odds_difference": {"max": 0.3}},
}


def policy(min_group_size: int = 30, **gate: object) -> Policy:
    return Policy(gate=GateSettings.model_validate({**GATE, **BOUNDS, **gate}), min_group_size=min_group_size)


def rows(seed: int, n: int = 600, groups: str = "ab") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.5
    predicted = np.where(rng.random(n) < 0.8, truth, ~truth)  # right on 80% of rows in every group
    return truth, predicted, rng.choice(list(groups), n)


# The differences and their intervals ------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_resampled_measure_is_fairlearns_on_the_rows_as_they_are(seed: int) -> None:
    truth, predicted, groups = rows(seed, groups="abc")
    ours = differences(truth, predicted, groups)
    theirs = [
        demographic_parity_difference(truth, predicted, sensitive_features=groups),
        equalized_odds_difference(truth, predicted, sensitive_features=groups),
    ]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_intervals_are_seeded_and_bracket_a_fair_models_small_gaps() -> None:
    truth, predicted, groups = rows(0)
    first = fairness_differences(truth, predicted, groups, rounds=200, seed=3)
    assert first == fairness_differences(truth, predicted, groups, rounds=200, seed=3)
    for measured in first.values():
        assert 0 <= measured["low"] <= measured["high"] < 0.2
        assert measured["value"] < 0.15


def test_a_model_unfair_on_one_group_has_gaps_whose_whole_interval_is_large() -> None:
    truth, predicted, groups = rows(1)
    unfair = np.where(groups == "b", ~predicted, predicted)  # flipped for group b only
    measured = fairness_differences(truth, unfair, groups, rounds=200, seed=0)
    assert measured["equalized_odds_difference"]["low"] > 0.3
    slices = {"f": {"fairness": measured}}
    found = bound_findings(slice_changes(slices), policy())
    assert [(f.check, f.name) for f in found] == [("fairness", "f.fairness.equalized_odds_difference")]


def test_fairness_is_measured_for_every_class_one_vs_rest_and_never_skipped() -> None:
    rng = np.random.default_rng(0)
    truth = pd.Series(rng.choice(["a", "b", "c"], 300))
    predicted = truth.to_numpy().copy()
    sensitive = pd.DataFrame({"region": rng.choice(["x", "y", "tiny"], 300, p=[0.48, 0.48, 0.04])})
    result = fairness_slices(truth, predicted, sensitive, ["a", "b", "c"], None, 30, rounds=20, seed=0)
    region = result["region"]
    assert region["fairness"] == {"groups_judged": 2}  # "tiny" has fewer than 30 rows
    assert set(region["classes"]) == {"a", "b", "c"}
    for one in region["classes"].values():
        assert set(one["fairness"]) == {"demographic_parity_difference", "equalized_odds_difference"}


def test_fairness_without_two_groups_large_enough_is_said_so() -> None:
    truth = pd.Series(["Yes", "No"] * 20)
    sensitive = pd.DataFrame({"colour": ["a"] * 35 + ["b"] * 5})
    result = fairness_slices(truth, truth.to_numpy(), sensitive, ["No", "Yes"], "Yes", 30, rounds=20, seed=0)
    assert result == {"colour": {"fairness": {"groups_judged": 1}}}
    assert unjudged_fairness(slice_changes(result)) == ["colour.fairness"]


def test_rows_without_the_feature_are_no_group_of_the_fairness_differences() -> None:
    """Served rows come back labelled without their sensitive feature: were they a group, a fair
    model would be judged on how its known groups differ from rows of every group mixed."""
    rng = np.random.default_rng(4)
    truth = pd.Series(rng.choice(["No", "Yes"], 400))
    predicted = truth.to_numpy().copy()
    predicted[:200] = "Yes"  # the rows whose feature is missing: all predicted positive
    colour = pd.Series(rng.choice(["a", "b"], 400), dtype=object)
    colour[:200] = None
    result = fairness_slices(
        truth, predicted, pd.DataFrame({"colour": colour}), ["No", "Yes"], "Yes", 30, rounds=20, seed=0
    )
    fairness = result["colour"]["fairness"]
    assert fairness["groups_judged"] == 2
    assert fairness["demographic_parity_difference"]["value"] < 0.2  # a and b are predicted alike


# Groups too small to judge --------------------------------------------------------------


def test_a_group_below_the_minimum_size_is_reported_too_small_with_no_metrics() -> None:
    truth = pd.Series(["Yes", "No"] * 20)
    predicted = np.array(["No"] * 40)  # recall 0 everywhere: a small group must not hide or pass it
    sensitive = pd.DataFrame({"colour": ["a"] * 35 + ["b"] * 5})
    result = slice_metrics(truth, predicted, sensitive, "classification", positive="Yes", min_group_size=30)
    groups = result["colour"]["groups"]
    assert groups["b"] == {"count": 5, TOO_SMALL: 1}
    assert groups["a"]["count"] == 35 and groups["a"]["recall"] == 0.0
    changes = slice_changes(result)
    assert [(g.name, g.count) for g in small_groups(changes)] == [("colour.groups.b", 5)]
    assert [(f.check, f.name) for f in bound_findings(changes, policy())] == [
        ("slice bound", "colour.groups.a.recall")
    ]


def test_a_group_marked_too_small_that_the_policy_would_judge_fails() -> None:
    # The pull request raised evaluate.min_group_size to 100: the base's policy (30) judges 40 rows.
    slices = {"colour": {"groups": {"b": {"count": 40, TOO_SMALL: 1}}}}
    [finding] = bound_findings(slice_changes(slices), policy(min_group_size=30))
    assert (finding.check, finding.name) == ("too small", "colour.groups.b")
    assert bound_findings(slice_changes(slices), policy(min_group_size=100)) == []


# Bounds per group and per class -------------------------------------------------------------


def test_a_per_class_bound_breach_fails_naming_slice_class_and_metric() -> None:
    slices = {
        "(class)": {"groups": {"No": {"recall": 0.1, "count": 260}, "Yes": {"recall": 0.9, "count": 1228}}},
        "region": {"classes": {"left": {"groups": {"east": {"recall": 0.2, "count": 55}}}}},
    }
    found = bound_findings(slice_changes(slices), policy())
    assert [(f.check, f.name, f.value) for f in found] == [
        ("slice bound", "(class).groups.No.recall", 0.1),
        ("slice bound", "region.classes.left.groups.east.recall", 0.2),
    ]
    assert all(f.limit == "min 0.35" for f in found)


def test_bounds_hold_on_a_model_within_them() -> None:
    slices = {"(class)": {"groups": {"No": {"recall": 0.52, "count": 260}}}}
    assert bound_findings(slice_changes(slices), policy()) == []


def test_a_fairness_gap_above_the_bound_but_within_noise_passes_marked_not_significant() -> None:
    measured = {"value": 0.25, "low": 0.1, "high": 0.4}
    slices = {"colour": {"fairness": {"demographic_parity_difference": measured}}}
    changes = slice_changes(slices)
    assert bound_findings(changes, policy()) == []
    [row] = fairness_rows(changes, policy())
    assert (row.name, row.bound, row.meaning) == (
        "colour.fairness.demographic_parity_difference",
        0.2,
        ABOVE_NOT_SIGNIFICANT,
    )


# D4: sensitive features reach the model only with a reviewed reason ------------------------


def test_a_sensitive_model_input_fails_without_the_reviewers_reason_and_passes_with_it() -> None:
    slices = {"(sensitive inputs)": {"colour": 1, "sex": 0}}
    [finding] = bound_findings(slice_changes(slices), policy())
    assert (finding.check, finding.name) == ("sensitive feature", "colour")
    reviewed = policy(allow_sensitive_features="colour is needed to audit the 1990s data; reviewed by A. B.")
    assert bound_findings(slice_changes(slices), reviewed) == []


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines", "x" * 201])
def test_the_reason_must_be_one_line(reason: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        GateSettings.model_validate({**GATE, "allow_sensitive_features": reason})


def test_a_pull_request_granting_itself_the_opt_in_is_a_policy_change() -> None:
    base = policy_from_params({"gate": GATE}, "params.yaml")
    proposed = policy_from_params(
        {"gate": {**GATE, "allow_sensitive_features": "mine"}, "evaluate": {"min_group_size": 5}},
        "params.yaml",
    )
    keys = {change.key for change in policy_changes(base, proposed)}
    assert keys == {"gate.allow_sensitive_features", "evaluate.min_group_size"}
    assert base.min_group_size == 30 and base.gate.slices == {} and base.gate.fairness == {}  # older bases


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"slices": {"selection_rate": {"min": 0.1}}}, "gate.slices: unknown slice metric 'selection_rate'"),
        ({"fairness": {"demographic_parity_difference": {"max": 1.5}}}, "less than or equal to 1"),
        ({"fairness": {"equal_opportunity": {"max": 0.1}}}, "demographic_parity_difference"),
    ],
)
def test_bounds_are_validated(gate: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy_from_params({"gate": {**GATE, **gate}}, "params.yaml")
