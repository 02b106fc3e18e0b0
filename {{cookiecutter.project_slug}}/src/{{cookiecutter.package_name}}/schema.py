"""The data contract: `schema.yaml` -> a pandera schema.

Training validates the raw data against it; serving builds its request model
from the same contract, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .data import as_times, iso_dates

ColumnType = Literal["integer", "number", "boolean", "category", "date", "text"]
MAX_CATEGORIES = 20  # infer: a text column with at most this many values is a category


class ContractError(ValueError):
    """schema.yaml is missing, invalid, or does not fit the settings."""


class ColumnRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None  # allowed values of a category


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Some data sets legitimately repeat records (two people with the same answers).
    unique_rows: bool = True
    columns: dict[str, ColumnRule]


@dataclass(frozen=True)
class Failure:
    column: str
    check: str
    rows: int
    examples: tuple[str, ...]


def parse_contract(raw: object, source: str = "schema.yaml") -> Contract:
    try:
        return Contract.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ContractError(f"{source}: {key}: {first['msg']}") from None


def load_contract(path: Path) -> Contract:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path.name}: not found") from None
    return parse_contract(raw, source=path.name)


def dump_contract(contract: Contract) -> str:
    data = contract.model_dump(exclude_defaults=True)
    data["unique_rows"] = contract.unique_rows
    return yaml.safe_dump(data, sort_keys=False)


def check_contract(contract: Contract, target: str) -> None:
    """The contract must describe the target and forbid missing labels."""
    if not contract.columns:
        raise ContractError(
            f"schema.yaml has no columns: run `{__package__} schema infer`, review the result and commit it"
        )
    rule = contract.columns.get(target)
    if rule is None:
        raise ContractError(f"schema.yaml: target column {target!r} is not in the contract")
    if rule.nullable:
        raise ContractError(f"schema.yaml: target column {target!r} must not be nullable")


def build_schema(contract: Contract):
    import pandera.pandas as pa  # imported here: pandera is slow to import

    def column(rule: ColumnRule) -> pa.Column:
        checks = []
        if rule.min is not None:
            checks.append(pa.Check.ge(rule.min))
        if rule.max is not None:
            checks.append(pa.Check.le(rule.max))
        if rule.values is not None:
            checks.append(pa.Check.isin(rule.values))
        if rule.type == "date":
            checks.append(pa.Check(lambda values: as_times(values).notna(), name="iso_date"))
        dtype = {
            "integer": "Int64" if rule.nullable else "int64",
            "number": float,
            "boolean": "boolean" if rule.nullable else bool,
            "category": str,
            "date": str,  # ISO 8601 text, as a CSV holds it
            "text": str,
        }[rule.type]
        # Nullable integers arrive from CSV as floats, nullable booleans as objects; coercion fixes both.
        coerce = rule.type == "number" or (rule.type in ("integer", "boolean") and rule.nullable)
        return pa.Column(dtype, checks=checks, nullable=rule.nullable, coerce=coerce)

    return pa.DataFrameSchema(
        {name: column(rule) for name, rule in contract.columns.items()},
        strict=True,
        unique=list(contract.columns) if contract.unique_rows else None,
    )


def validate_frame(frame: pd.DataFrame, contract: Contract) -> list[Failure]:
    """Every way the frame breaks the contract, one Failure per column and check."""
    import pandera.pandas as pa

    try:
        # A fresh index: pandera cannot report duplicate rows under repeated index labels.
        build_schema(contract).validate(frame.reset_index(drop=True), lazy=True)
    except pa.errors.SchemaErrors as err:
        return _group_failures(err.failure_cases)
    return []


def _group_failures(cases: pd.DataFrame) -> list[Failure]:
    # A missing or unexpected column is a frame-level failure whose case is the column's name.
    names_column = cases["column"].isna() & cases["check"].isin(["column_in_dataframe", "column_in_schema"])
    cases = cases.assign(
        column=cases["column"].where(~names_column, cases["failure_case"]).fillna("<frame>").astype(str),
        check=cases["check"].astype(str),
        # map(str), not astype(str): pandas 3 keeps NaN through astype(str), and examples must be text.
        failure_case=cases["failure_case"].map(str),
    )
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        examples = tuple(dict.fromkeys(group["failure_case"]))[:3]
        failures.append(Failure(str(column), str(check), len(group), examples))
    return failures


def format_failures(failures: list[Failure]) -> str:
    """A plain table: column, check, failing rows, examples."""
    header = ("column", "check", "rows", "examples")
    rows = [(f.column, f.check, str(f.rows), ", ".join(f.examples)) for f in failures]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


def validation_report(frame: pd.DataFrame, failures: list[Failure]) -> dict:
    return {
        "passed": not failures,
        "rows": len(frame),
        "columns": len(frame.columns),
        "failures": [
            {"column": f.column, "check": f.check, "rows": f.rows, "examples": list(f.examples)}
            for f in failures
        ],
    }


def infer_contract(frame: pd.DataFrame, max_categories: int = MAX_CATEGORIES) -> Contract:
    """A first contract from the data, for a person to review and commit."""
    return Contract(
        unique_rows=not bool(frame.duplicated().any()),
        columns={str(name): _infer_rule(frame[name], max_categories) for name in frame.columns},
    )


def _infer_rule(series: pd.Series, max_categories: int) -> ColumnRule:
    nullable = bool(series.isna().any())
    values = series.dropna()
    # A CSV column of True/False with gaps is read as objects, not as bool.
    if pd.api.types.is_bool_dtype(series) or (len(values) and pd.api.types.infer_dtype(values) == "boolean"):
        return ColumnRule(type="boolean", nullable=nullable)
    if iso_dates(series):
        return ColumnRule(type="date", nullable=nullable)
    if pd.api.types.is_numeric_dtype(series):
        # Whole floats are integers only when gaps made them floats (a CSV column of ints with blanks);
        # a float column without gaps would fail the int64 check of a non-nullable integer.
        integral = pd.api.types.is_integer_dtype(series) or (nullable and bool((values % 1 == 0).all()))
        low, high = (float(values.min()), float(values.max())) if len(values) else (None, None)
        return ColumnRule(type="integer" if integral else "number", nullable=nullable, min=low, max=high)
    categories = sorted(values.astype(str).unique())
    if len(categories) <= max_categories:
        return ColumnRule(type="category", nullable=nullable, values=categories)
    return ColumnRule(type="text", nullable=nullable)
