"""The raw data meets the contract, and every kind of corruption is rejected naming its column.

Each corruption is derived from the contract itself (a column of the right kind),
so these tests hold for any data set the project is baked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.schema import Contract, check_contract, format_failures, validate_frame

pytestmark = pytest.mark.data

ROW = 3  # the row each test corrupts


def columns_of(contract: Contract, target: str, *types: str, where=lambda rule: True) -> list[str]:
    """Contract columns of the given types, the features before the target."""
    names = [name for name, rule in contract.columns.items() if rule.type in types and where(rule)]
    return sorted(names, key=lambda name: name == target)


def pick(contract: Contract, target: str, *types: str, where=lambda rule: True) -> str:
    names = columns_of(contract, target, *types, where=where)
    if not names:
        pytest.skip(f"the contract has no column of type {' or '.join(types)} for this check")
    return names[0]


def rejected(frame: pd.DataFrame, contract: Contract, column: str) -> None:
    failures = validate_frame(frame, contract)
    assert failures, "the corrupted frame passed the contract"
    assert column in {failure.column for failure in failures}, format_failures(failures)


def test_raw_data_meets_the_contract(raw: pd.DataFrame, contract: Contract) -> None:
    failures = validate_frame(raw, contract)
    assert not failures, "\n" + format_failures(failures)


def test_contract_describes_the_target(contract: Contract, settings) -> None:
    check_contract(contract, settings.data.target)


def test_missing_column_is_rejected(raw: pd.DataFrame, contract: Contract, settings) -> None:
    column = pick(contract, settings.data.target, "integer", "number", "category", "boolean", "text")
    rejected(raw.drop(columns=[column]), contract, column)


def test_unexpected_column_is_rejected(raw: pd.DataFrame, contract: Contract) -> None:
    rejected(raw.assign(surprise=1), contract, "surprise")


def test_wrong_type_is_rejected(raw: pd.DataFrame, contract: Contract, settings) -> None:
    column = pick(contract, settings.data.target, "integer", "number")
    frame = raw.astype({column: object})
    frame.loc[ROW, column] = "not a number"
    rejected(frame, contract, column)


def test_out_of_range_value_is_rejected(raw: pd.DataFrame, contract: Contract, settings) -> None:
    column = pick(
        contract,
        settings.data.target,
        "integer",
        "number",
        where=lambda rule: rule.min is not None or rule.max is not None,
    )
    rule = contract.columns[column]
    bad = rule.max + abs(rule.max) + 1 if rule.max is not None else rule.min - abs(rule.min) - 1
    frame = raw.astype({column: float if rule.type == "number" else raw[column].dtype})
    frame.loc[ROW, column] = bad if rule.type == "number" else int(bad)
    rejected(frame, contract, column)


def test_unknown_category_is_rejected(raw: pd.DataFrame, contract: Contract, settings) -> None:
    column = pick(contract, settings.data.target, "category", where=lambda rule: bool(rule.values))
    frame = raw.copy()
    frame.loc[ROW, column] = "<never seen>"
    rejected(frame, contract, column)


def test_missing_target_is_rejected(raw: pd.DataFrame, contract: Contract, settings) -> None:
    target = settings.data.target
    frame = raw.copy()
    frame.loc[ROW, target] = np.nan
    rejected(frame, contract, target)


def test_missing_value_in_a_required_feature_is_rejected(
    raw: pd.DataFrame, contract: Contract, settings
) -> None:
    column = pick(
        contract,
        settings.data.target,
        "integer",
        "number",
        "category",
        "boolean",
        "text",
        where=lambda rule: not rule.nullable,
    )
    # int and bool columns cannot hold NaN: make room for it the way a CSV with a gap would.
    frame = raw.astype({column: object}) if raw[column].dtype.kind in "iub" else raw.copy()
    frame.loc[ROW, column] = np.nan
    rejected(frame, contract, column)


def test_duplicate_rows_are_rejected_when_the_contract_wants_unique_rows(
    raw: pd.DataFrame, contract: Contract
) -> None:
    unique = contract.model_copy(update={"unique_rows": True})
    frame = raw.drop_duplicates()
    assert validate_frame(frame, unique) == [], "the deduplicated data should pass"
    duplicated = pd.concat([frame, frame.iloc[[ROW]]])  # repeats row ROW, index label included
    failures = validate_frame(duplicated, unique)
    assert failures and all(failure.check == "multiple_fields_uniqueness" for failure in failures), (
        format_failures(failures)
    )


def repeat_problem(frame: pd.DataFrame, unique_rows: bool) -> str | None:
    """Whether rows repeat, against what the contract says (as `schema infer` writes it: the
    tightest contract the data meets)."""
    repeated = int(frame.duplicated().sum())
    if unique_rows and repeated:
        return f"{repeated} repeated row(s), but schema.yaml says unique_rows: true"
    if not unique_rows and not repeated:
        return "no row repeats, yet schema.yaml allows it (unique_rows: false): set it to true"
    return None


def test_the_contract_says_whether_rows_repeat(raw: pd.DataFrame, contract: Contract) -> None:
    assert repeat_problem(raw, contract.unique_rows) is None


def test_a_contract_wrong_about_repeated_rows_is_caught(raw: pd.DataFrame) -> None:
    unique = raw.drop_duplicates()
    assert repeat_problem(unique, unique_rows=False) is not None
    assert repeat_problem(pd.concat([unique, unique.head(1)]), unique_rows=True) is not None
