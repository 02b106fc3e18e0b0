"""Known examples (minimum functionality) and directional expectations, from known_examples.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.examples import propose
from {{ cookiecutter.package_name }}.schema import validate_frame

pytestmark = pytest.mark.model

KNOWN = yaml.safe_load(Path(__file__).with_name("known_examples.yaml").read_text(encoding="utf-8")) or {}
EXAMPLES = KNOWN.get("examples") or []
DIRECTIONAL = KNOWN.get("directional") or []
NO_EXAMPLES = (
    "tests/model/known_examples.yaml has no examples yet: `{{ cookiecutter.package_name }} examples record` proposes "
    "five from the test set with the model's outputs; review them and commit"
)
NO_DIRECTIONAL = (
    "tests/model/known_examples.yaml has no directional cases yet: add a few from your domain "
    "(the comment in that file shows how)"
)


def cases(items: list[dict], missing: str, required: bool) -> list:
    """One case per item; none: a skip, or for a required kind a case that calls `unavailable`
    (a skip on a laptop, a failure under CI=true)."""
    if not items:
        return [pytest.param(None, id="none", marks=[] if required else pytest.mark.skip(reason=missing))]
    return [pytest.param(item, id=item["name"]) for item in items]


def answer(model, output, case: dict, change: dict | None = None) -> float:
    """The model's output for the case's input (changed by `change`): with `class:` given, that
    class's probability (needed with more than two classes)."""
    value = output(model, pd.DataFrame([{**case["input"], **(change or {})}]), case.get("class"))[0]
    assert np.ndim(value) == 0, f"{case['name']}: name the class whose probability `expect` bounds (class:)"
    return float(value)


def outside(example: dict, value: float) -> bool:
    low, high = example["expect"].get("min"), example["expect"].get("max")
    return (low is not None and value < low) or (high is not None and value > high)


@pytest.mark.parametrize("example", cases(EXAMPLES, NO_EXAMPLES, required=True))
def test_known_example(example: dict | None, unavailable, model, output) -> None:
    if example is None:
        unavailable(NO_EXAMPLES)
    value = answer(model, output, example)
    assert not outside(example, value), f"{example['name']}: {value:.4g} is outside {example['expect']}"


@pytest.mark.parametrize("case", cases(DIRECTIONAL, NO_DIRECTIONAL, required=False))
def test_directional_expectation(case: dict, model, output) -> None:
    before = answer(model, output, case)
    after = answer(model, output, case, case["change"])
    change = after - before if case["expect"] == "higher" else before - after
    assert change >= case.get("by_at_least", 0), (
        f"{case['name']}: {before:.4g} -> {after:.4g}, expected {case['expect']} "
        f"by at least {case.get('by_at_least', 0)}"
    )


def test_known_examples_meet_the_data_contract(unavailable, contract, settings) -> None:
    rows = [example["input"] for example in EXAMPLES]
    rows += [{**case["input"], **case["change"]} for case in DIRECTIONAL]
    if not rows:
        unavailable(NO_EXAMPLES)
    features = {name: rule for name, rule in contract.columns.items() if name != settings.data.target}
    failures = validate_frame(
        pd.DataFrame(rows), contract.model_copy(update={"columns": features, "unique_rows": False})
    )
    assert not failures, failures


def test_known_examples_catch_a_model_trained_on_shuffled_labels(unavailable, shuffled_model, output) -> None:
    if not EXAMPLES:
        unavailable(NO_EXAMPLES)
    answers = {example["name"]: answer(shuffled_model, output, example) for example in EXAMPLES}
    assert any(outside(example, answers[example["name"]]) for example in EXAMPLES), (
        f"every known example passed for a model that learnt nothing: {answers}"
    )


def test_recorded_examples_hold_for_the_model_and_catch_one_trained_on_shuffled_labels(
    model, shuffled_model, test_set, settings, output
) -> None:
    """What `examples record` proposes: bounds no wider than canary.tolerance on each side, that
    the model meets and a model that learnt nothing misses."""
    proposed = [
        {
            "name": e.name,
            "input": e.inputs,
            "class": e.label,
            "expect": {"min": e.low, "max": e.high},
            "width": e.high - e.low,
        }
        for e in propose(model, test_set, settings)
    ]
    assert len(proposed) == 5
    tolerance = settings.canary.tolerance
    if settings.task == "classification":
        assert {case["class"] for case in proposed} == set(model.classes_.tolist()) or len(model.classes_) > 5
    else:
        tolerance *= float(
            np.ptp(np.percentile(model.predict(test_set[list(model.feature_names_in_)]), [5, 95]))
        )
    for case in proposed:
        assert case["width"] <= 2 * tolerance + 0.002, case
        assert not outside(case, answer(model, output, case)), case
    answers = {case["name"]: answer(shuffled_model, output, case) for case in proposed}
    assert any(outside(case, answers[case["name"]]) for case in proposed), answers
