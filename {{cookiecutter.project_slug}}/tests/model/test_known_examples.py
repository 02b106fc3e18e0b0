"""Known examples (minimum functionality) and directional expectations, from known_examples.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.schema import validate_frame

pytestmark = pytest.mark.model

KNOWN = yaml.safe_load(Path(__file__).with_name("known_examples.yaml").read_text(encoding="utf-8")) or {}
EXAMPLES = KNOWN.get("examples") or []
DIRECTIONAL = KNOWN.get("directional") or []
ADD_EXAMPLES = (
    "tests/model/known_examples.yaml has no {} yet: add a few cases from your domain "
    "with the output a sound model must give (the comment in that file shows how)"
)


def cases(items: list[dict], kind: str) -> list:
    if not items:
        return [pytest.param(None, id="none", marks=pytest.mark.skip(reason=ADD_EXAMPLES.format(kind)))]
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


@pytest.mark.parametrize("example", cases(EXAMPLES, "examples"))
def test_known_example(example: dict, model, output) -> None:
    value = answer(model, output, example)
    assert not outside(example, value), f"{example['name']}: {value:.4g} is outside {example['expect']}"


@pytest.mark.parametrize("case", cases(DIRECTIONAL, "directional cases"))
def test_directional_expectation(case: dict, model, output) -> None:
    before = answer(model, output, case)
    after = answer(model, output, case, case["change"])
    change = after - before if case["expect"] == "higher" else before - after
    assert change >= case.get("by_at_least", 0), (
        f"{case['name']}: {before:.4g} -> {after:.4g}, expected {case['expect']} "
        f"by at least {case.get('by_at_least', 0)}"
    )


def test_known_examples_meet_the_data_contract(contract, settings) -> None:
    rows = [example["input"] for example in EXAMPLES]
    rows += [{**case["input"], **case["change"]} for case in DIRECTIONAL]
    if not rows:
        pytest.skip(ADD_EXAMPLES.format("examples"))
    features = {name: rule for name, rule in contract.columns.items() if name != settings.data.target}
    failures = validate_frame(
        pd.DataFrame(rows), contract.model_copy(update={"columns": features, "unique_rows": False})
    )
    assert not failures, failures


def test_known_examples_catch_a_model_trained_on_shuffled_labels(shuffled_model, output) -> None:
    if not EXAMPLES:
        pytest.skip(ADD_EXAMPLES.format("examples"))
    answers = {example["name"]: answer(shuffled_model, output, example) for example in EXAMPLES}
    assert any(outside(example, answers[example["name"]]) for example in EXAMPLES), (
        f"every known example passed for a model that learnt nothing: {answers}"
    )
