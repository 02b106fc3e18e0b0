"""The request and response contract of POST /predict, generated from schema.yaml,
and every class of bad input: its status code and a message naming the field."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package_name }}.schema import ColumnRule, Contract
from {{ cookiecutter.package_name }}.serving.errors import ServeError
from {{ cookiecutter.package_name }}.serving.requests import contract_rows, request_model

pytestmark = pytest.mark.serving


def column_of(contract, served, kinds: str, bounded: bool = False) -> str:
    """The first model input of one of these contract types (with a maximum, if asked)."""
    for name in served.inputs:
        rule = contract.columns[name]
        if rule.type in kinds.split("|") and (not bounded or rule.max is not None):
            return name
    pytest.skip(f"the model has no {kinds} input{' with a maximum' if bounded else ''} in the contract")


def assert_names(answer, status: int, field: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert field in body["error"], body
    assert field in [item["field"] for item in body["detail"]], body


def schema_values(schema: object, key: str) -> list:
    """Every value of `key` anywhere in a JSON schema (a nullable field nests them in anyOf)."""
    if isinstance(schema, dict):
        found = [schema[key]] if key in schema else []
        return found + [v for value in schema.values() for v in schema_values(value, key)]
    if isinstance(schema, list):
        return [v for value in schema for v in schema_values(value, key)]
    return []


def test_request_fields_are_the_model_inputs_typed_by_the_contract(client, contract, served, settings):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRow"]
    assert list(schema["properties"]) == list(served.inputs)
    assert settings.data.target not in schema["properties"]
    for banned in settings.data.banned_features:
        assert banned not in schema["properties"], f"sensitive feature {banned} is a request field"
    assert schema["additionalProperties"] is False
    required = set(schema.get("required", []))
    for name in served.inputs:
        rule, prop = contract.columns[name], schema["properties"][name]
        assert (name in required) is not rule.nullable, name
        if rule.type == "category":
            allowed = (schema_values(prop, "enum") or [schema_values(prop, "const")])[0]
            assert set(allowed) == set(rule.values), prop
        if rule.type in ("integer", "number"):
            assert schema_values(prop, "type")[0] == rule.type, prop
            for bound, key in ((rule.min, "minimum"), (rule.max, "maximum")):
                if bound is not None:
                    assert schema_values(prop, key) == [bound], prop


def test_response_schema_documents_predictions_and_the_version(client, served):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Prediction"]
    expected = {"model_version", "request_id", "predictions"}
    if served.classes is not None:
        expected.add("probabilities")
    assert set(schema["required"]) == expected


def test_one_row_gets_a_prediction_and_the_model_version(client, rows, served):
    answer = client.post("/predict", json=rows[0])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "test-1"
    assert len(body["predictions"]) == 1
    assert answer.headers["x-request-id"] == body["request_id"]
    if served.classes is not None:
        [probabilities] = body["probabilities"]
        assert list(probabilities) == list(served.classes)
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert body["predictions"][0] == max(probabilities, key=probabilities.get)
    else:
        assert "probabilities" not in body


def test_a_batch_gets_the_pipelines_predictions(client, rows, served, test_set):
    answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    expected = served.pipeline.predict(test_set[list(served.inputs)].head(len(rows))).tolist()
    if served.classes is None:
        assert answer.json()["predictions"] == pytest.approx(expected)
    else:
        assert answer.json()["predictions"] == expected


def test_rows_drawn_from_the_contract_are_accepted(client, contract, served):
    answer = client.post("/predict", json={"rows": contract_rows(contract, list(served.inputs), 50)})
    assert answer.status_code == 200, answer.text


def test_missing_column_is_422_naming_it(client, rows, contract, served):
    required = [name for name in served.inputs if not contract.columns[name].nullable]
    if not required:
        pytest.skip("every model input may be empty")
    answer = client.post("/predict", json={k: v for k, v in rows[0].items() if k != required[0]})
    assert_names(answer, 422, required[0])
    assert "required" in answer.json()["detail"][0]["message"].lower()


def test_wrong_type_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "integer|number")
    for wrong in ("not a number", "5", True, [1]):
        assert_names(client.post("/predict", json={**rows[0], name: wrong}), 422, name)


def test_a_whole_float_is_an_integer_and_a_fraction_is_not(client, rows, contract, served):
    name = column_of(contract, served, "integer")
    whole = float(rows[0][name])
    assert client.post("/predict", json={**rows[0], name: whole}).status_code == 200
    assert_names(client.post("/predict", json={**rows[0], name: whole + 0.5}), 422, name)


def test_out_of_range_value_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "integer|number", bounded=True)
    answer = client.post("/predict", json={**rows[0], name: contract.columns[name].max + 1000})
    assert_names(answer, 422, name)
    assert "less than or equal" in answer.json()["detail"][0]["message"]


def test_unknown_category_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "category")
    answer = client.post("/predict", json={**rows[0], name: "no-such-category"})
    assert_names(answer, 422, name)


def test_unexpected_column_is_422_naming_it(client, rows, settings):
    assert_names(client.post("/predict", json={**rows[0], "surprise": 1}), 422, "surprise")
    # The target is not an input: a client that sends it is told so.
    answer = client.post("/predict", json={**rows[0], settings.data.target: 1})
    assert_names(answer, 422, settings.data.target)


def test_bad_batches_are_422_naming_the_row(client, rows, served, settings, contract):
    assert client.post("/predict", json={"rows": []}).status_code == 422
    too_many = {"rows": rows[:1] * (settings.serving.max_batch_rows + 1)}
    assert client.post("/predict", json=too_many).status_code == 422
    required = [name for name in served.inputs if not contract.columns[name].nullable]
    if not required:
        pytest.skip("every model input may be empty")
    broken = {**rows[1]}
    del broken[required[0]]
    answer = client.post("/predict", json={"rows": [rows[0], broken]})
    assert_names(answer, 422, f"rows.1.{required[0]}")


def test_bodies_that_are_not_a_row_are_422(client, rows):
    for body in (b"{not json", b"[1, 2]", b"42", b"null", b""):
        answer = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"].startswith("invalid input")


def test_non_finite_numbers_are_422(client, rows, contract, served):
    name = column_of(contract, served, "number|integer")
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = json.dumps({**rows[0], name: 0.5}).replace(f'"{name}": 0.5', f'"{name}": {literal}')
        answer = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert_names(answer, 422, name)


def test_oversized_body_is_413(client, rows, settings):
    padding = "x" * settings.serving.max_body_bytes
    answer = client.post("/predict", json={**rows[0], "pad": padding})
    assert answer.status_code == 413
    assert str(settings.serving.max_body_bytes) in answer.json()["error"]


def test_oversized_body_without_a_length_is_413(client, rows, settings):
    chunk = json.dumps(rows[0]).encode()
    count = settings.serving.max_body_bytes // len(chunk) + 2
    answer = client.post(
        "/predict", content=(chunk for _ in range(count)), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert client.post("/predict", json=rows[0]).status_code == 200, "the server still answers"


def test_request_model_refuses_inputs_the_contract_does_not_describe(contract):
    with pytest.raises(ServeError, match="does not describe: nope"):
        request_model(contract, ["nope"])


def test_a_date_field_takes_iso_text_only():
    from pydantic import ValidationError

    row = request_model(Contract(columns={"day": ColumnRule(type="date", nullable=True)}), ["day"])
    assert row.model_validate({"day": "2024-05-31"}).model_dump() == {"day": "2024-05-31"}
    assert row.model_validate({"day": "2024-05-31T08:30:00+02:00"}).model_dump()["day"].startswith("2024")
    assert row.model_validate({"day": None}).model_dump() == {"day": None}
    for wrong in ("31/05/2024", 20240531, "soon"):
        with pytest.raises(ValidationError):
            row.model_validate({"day": wrong})
