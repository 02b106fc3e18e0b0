"""The request and response models of /predict, generated from the data contract (schema.yaml).

The same contract that training validates with decides what a request may hold, so the two
cannot drift apart.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, create_model

from ..schema import ColumnRule, Contract
from .errors import ServeError


def column_field(rule: ColumnRule) -> tuple[Any, Any]:
    """The type and the pydantic Field of one column (types made at run time: Any to the checker)."""
    kind: Any = {"integer": int, "number": float, "boolean": bool, "text": str}.get(rule.type, str)
    if rule.type == "category" and rule.values:
        kind = Literal[tuple(rule.values)]
    low, high = (rule.min, rule.max) if rule.type != "integer" else int64_bounds(rule.min, rule.max)
    bounds = (("ge", low), ("le", high))
    constraints: dict[str, Any] = {key: value for key, value in bounds if value is not None}
    if rule.type in ("integer", "number", "boolean"):
        # "5" is not a number and 1 is not a boolean: no silent coercion.
        constraints["strict"] = True
    if rule.type == "number":
        constraints["allow_inf_nan"] = False
    if rule.type == "date":
        # ISO 8601 text; a value that is no real date (2024-02-30) reaches the model as a missing one.
        constraints |= {"pattern": r"^\d{4}-\d{2}-\d{2}", "max_length": 40}
    # The constraints sit on the value's type, before the integer's validator: after it, pydantic
    # still checks them but writes `ge`/`le` into the OpenAPI document instead of minimum/maximum.
    constrained: Any = Annotated[kind, Field(**constraints)]
    if rule.type == "integer":
        constrained = Annotated[constrained, BeforeValidator(whole_float_to_int)]  # 21.0 (pandas, gaps) is 21
    if rule.nullable:
        return constrained | None, Field(default=None)
    return constrained, Field(...)


def whole_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def int64_bounds(low: float | None, high: float | None) -> tuple[int, int]:
    # An integer without a bound still has to fit the model's numbers.
    lowest, highest = -(2**63), 2**63 - 1
    return (
        lowest if low is None else max(lowest, math.ceil(low)),
        highest if high is None else min(highest, math.floor(high)),
    )


def request_model(contract: Contract, inputs: list[str], context: Sequence[str] = ()) -> type[BaseModel]:
    """One row of model inputs, generated from the contract: types, ranges, categories.

    Only the model's inputs are fields (not the target, not the sensitive features
    that the model does not use), and the optional context fields of `serving.log.context`
    (checked by the contract when it describes them, else text); any other key is refused.
    """
    missing = [name for name in inputs if name not in contract.columns]
    if missing:
        raise ServeError(f"the model needs columns the contract does not describe: {', '.join(missing)}")
    fields: dict[str, Any] = {name: column_field(contract.columns[name]) for name in inputs}
    fields |= {name: context_field(contract.columns.get(name)) for name in context if name not in fields}
    example = contract_rows(contract, inputs, 1)[0]
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    return create_model("PredictRow", __config__=config, **fields)


def context_field(rule: ColumnRule | None) -> tuple[Any, Any]:
    """A context field is never required: as its column in the contract, or text of a bounded length."""
    kind: Any = column_field(rule)[0] if rule is not None else Annotated[str, Field(max_length=256)]
    return kind | None, Field(default=None)


def body_model(row_model: type[BaseModel], max_rows: int) -> tuple[object, type[BaseModel]]:
    """The body of POST /predict, one row or `{"rows": [...]}`, and the batch model.

    An object whose `rows` is a list is a batch; any other object is one row. The
    discriminator keeps the error messages to the shape that was meant.
    """
    batch = create_model(
        "PredictBatch",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row_model], Field(..., min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )

    def shape(value: object) -> str:
        return "batch" if isinstance(value, dict) and isinstance(value.get("rows"), list) else "row"

    # Types made at run time (the models above): the type checker cannot read them as types.
    body = Annotated[
        Annotated[row_model, Tag("row")] | Annotated[batch, Tag("batch")],  # type: ignore[valid-type]
        Discriminator(shape),
    ]
    return body, batch


class Problem(BaseModel):
    """Why a request was refused: `error` names the fields, `detail` has one entry per problem."""

    error: str
    detail: list[dict[str, Any]] = []


def response_model(classifier: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "model_version": (str, ...),
        "request_id": (str, ...),
        "predictions": (list[str | int | float | bool], ...),
    }
    if classifier:
        fields["probabilities"] = (list[dict[str, float]], ...)
    return create_model("Prediction", **fields)


def contract_rows(contract: Contract, inputs: Sequence[str], count: int, seed: int = 0) -> list[dict]:
    """Valid rows drawn from the contract: every category, both bounds, the middle, gaps where allowed."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = [{} for _ in range(count)]
    for name in inputs:
        rule = contract.columns[name]
        values = column_values(rule, rng, count)
        for index, row in enumerate(rows):
            row[name] = values[index % len(values)]
    return rows


def column_values(rule: ColumnRule, rng: np.random.Generator, count: int) -> list:
    low = rule.min if rule.min is not None else (rule.max - 100 if rule.max is not None else -100.0)
    high = rule.max if rule.max is not None else low + 200
    if rule.type == "category":
        values: list = list(rule.values or ["a", "b"])
    elif rule.type == "boolean":
        values = [True, False]
    elif rule.type == "text":
        values = ["a", "text never seen in training", ""]
    elif rule.type == "date":
        values = ["2024-01-31", "1999-12-31T23:59:59", "2100-06-15"]
    elif rule.type == "integer":
        low, high = math.ceil(low), math.floor(high)
        values = [low, high, (low + high) // 2, *map(int, rng.integers(low, high + 1, count))]
    else:
        values = [float(low), float(high), (low + high) / 2, *map(float, rng.uniform(low, high, count))]
    if rule.nullable:
        values.insert(1, None)
    return values
