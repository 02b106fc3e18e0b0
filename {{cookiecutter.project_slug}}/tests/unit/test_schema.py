"""The data contract: inference, validation and the schema.yaml round trip (property-based)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.schema import (
    ColumnRule,
    Contract,
    ContractError,
    check_contract,
    dump_contract,
    format_failures,
    infer_contract,
    parse_contract,
    validate_frame,
    validation_report,
)

pytestmark = pytest.mark.unit


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
FLOATS = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def frames(draw) -> pd.DataFrame:
    """Small frames with the column kinds a CSV holds: integers, decimals, text, booleans, gaps."""
    rows = draw(st.integers(min_value=1, max_value=25))
    kinds = draw(st.lists(st.sampled_from(["integer", "decimal", "text", "boolean"]), min_size=1, max_size=5))
    columns = {}
    for position, kind in enumerate(kinds):
        values = {
            "integer": st.integers(min_value=-(10**6), max_value=10**6),
            "decimal": FLOATS,
            "text": st.text(alphabet="abcxyz", min_size=1, max_size=3),
            "boolean": st.booleans(),
        }[kind]
        if draw(st.booleans()):
            values = st.none() | values
        columns[f"{kind}_{position}"] = draw(st.lists(values, min_size=rows, max_size=rows))
    return pd.DataFrame(columns)


@given(frame=frames())
def test_a_frame_meets_the_contract_inferred_from_it(frame: pd.DataFrame) -> None:
    failures = validate_frame(frame, infer_contract(frame))
    assert not failures, format_failures(failures)


@given(frame=frames())
def test_csv_data_meets_the_contract_inferred_from_it_after_a_round_trip(frame: pd.DataFrame) -> None:
    # `schema infer` reads the source CSV; `validate` reads the copy that ingest wrote.
    source = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    copy = pd.read_csv(io.StringIO(source.to_csv(index=False)))
    failures = validate_frame(copy, infer_contract(source))
    assert not failures, format_failures(failures)


RULES = st.one_of(
    st.builds(
        ColumnRule,
        type=st.sampled_from(["integer", "number"]),
        nullable=st.booleans(),
        min=st.none() | FLOATS,
        max=st.none() | FLOATS,
    ),
    st.builds(
        ColumnRule,
        type=st.just("category"),
        nullable=st.booleans(),
        values=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True),
    ),
    st.builds(ColumnRule, type=st.sampled_from(["boolean", "text"]), nullable=st.booleans()),
)
CONTRACTS = st.builds(Contract, unique_rows=st.booleans(), columns=st.dictionaries(NAMES, RULES, max_size=6))


@given(contract=CONTRACTS)
def test_contract_survives_a_dump_and_load(contract: Contract) -> None:
    assert parse_contract(yaml.safe_load(dump_contract(contract))) == contract


def test_infer_reads_types_bounds_and_categories() -> None:
    frame = pd.read_csv(
        io.StringIO("age,score,colour,visits,note\n30,0.5,red,1,x\n41,,blue,,y\n25,1.5,red,3,z\n")
    )
    contract = infer_contract(frame, max_categories=2)
    assert contract.columns["age"] == ColumnRule(type="integer", min=25, max=41)
    assert contract.columns["score"] == ColumnRule(type="number", nullable=True, min=0.5, max=1.5)
    assert contract.columns["colour"] == ColumnRule(type="category", values=["blue", "red"])
    assert contract.columns["visits"] == ColumnRule(type="integer", nullable=True, min=1, max=3)
    assert contract.columns["note"] == ColumnRule(type="text")  # 3 values > max_categories
    assert contract.unique_rows is True


def test_infer_types_iso_dates_and_validation_refuses_what_is_no_date() -> None:
    frame = pd.DataFrame({"day": ["2024-05-31", None, "2024-06-01T08:30:00"], "plan": ["a", "b", "2024"]})
    contract = infer_contract(frame)
    assert contract.columns["day"] == ColumnRule(type="date", nullable=True)
    assert contract.columns["plan"].type == "category", "one date-like value does not make a date column"
    assert validate_frame(frame, contract) == []
    broken = frame.assign(day=["2024-05-31", "31/05/2024", "soon"])
    [failure] = validate_frame(broken, contract)
    assert (failure.column, failure.check, failure.rows) == ("day", "iso_date", 2)


def test_infer_notices_duplicate_rows() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "x", "y"]})
    assert infer_contract(frame).unique_rows is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"columns": {}}, "has no columns"),
        ({"columns": {"age": {"type": "integer"}}}, "target column 'label' is not in the contract"),
        ({"columns": {"label": {"type": "category", "nullable": True}}}, "must not be nullable"),
    ],
)
def test_check_contract_rejects_what_training_cannot_use(raw: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_contract(parse_contract(raw), target="label")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"columns": {"age": {"type": "integr"}}}, "columns.age.type"),
        ({"columns": {"age": {"type": "integer", "maximum": 3}}}, "columns.age.maximum"),
        ({"uniq_rows": True, "columns": {}}, "uniq_rows"),
    ],
)
def test_invalid_contract_fails_naming_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ContractError, match=f"schema.yaml: {key}:"):
        parse_contract(raw)


def test_validation_report_and_table_name_every_failure() -> None:
    contract = parse_contract(
        {"columns": {"age": {"type": "integer", "min": 0}, "colour": {"type": "category", "values": ["red"]}}}
    )
    frame = pd.DataFrame({"age": [-1, 5], "colour": ["red", None]})
    failures = validate_frame(frame, contract)
    assert {(f.column, f.check) for f in failures} == {
        ("age", "greater_than_or_equal_to(0.0)"),
        ("colour", "not_nullable"),
    }
    report = validation_report(frame, failures)
    json.loads(json.dumps(report, allow_nan=False))  # strict JSON: no NaN in examples
    assert report["passed"] is False and report["rows"] == 2
    table = format_failures(failures).splitlines()
    assert table[0].split() == ["column", "check", "rows", "examples"]
    assert [line.split()[0] for line in table[1:]] == sorted(f.column for f in failures)


def test_validate_frame_passes_good_data() -> None:
    contract = parse_contract({"columns": {"x": {"type": "number", "min": 0, "max": 1}}})
    assert validate_frame(pd.DataFrame({"x": np.linspace(0, 1, 5)}), contract) == []
