"""`{{ cookiecutter.package_name }} explain` on this project's model: test rows followed step by step, their
contributions adding up to the model's raw score, and bad rows refused in one line (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.artifacts import save_model
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.serving.explain import additivity_gaps, explain, validate_row

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def test_rows(model, test_set) -> list[dict]:
    """Test rows as a client sends them (through JSON: gaps are null)."""
    inputs = [str(name) for name in model.feature_names_in_]
    return json.loads(test_set[inputs].head(2).to_json(orient="records"))


def test_the_models_answer_is_explained_and_adds_up(model, contract, test_rows) -> None:
    inputs = [str(name) for name in model.feature_names_in_]
    for row in test_rows:
        explanation = explain(model, validate_row(row, contract, inputs))
        assert max(additivity_gaps(explanation).values()) <= explanation.tolerance
        frame_row = {name: (float("nan") if value is None else value) for name, value in row.items()}
        assert explanation.prediction == pytest.approx(model.predict(pd.DataFrame([frame_row]))[0])
        assert set(explanation.by_input()) == set(inputs)


@pytest.fixture(scope="module")
def project(model, root, tmp_path_factory) -> Path:
    """A project folder with this project's params, contract and the session's model in models/model."""
    where = tmp_path_factory.mktemp("explain")
    for name in ("params.yaml", "schema.yaml"):
        shutil.copy(root / name, where / name)
    save_model(model, where / "models" / "model", metadata={"mlflow_run_id": "explain"})
    return where


def test_the_command_explains_a_row_as_text_and_json(project, test_rows, capsys) -> None:
    row = project / "row.json"
    row.write_text(json.dumps(test_rows[0]), encoding="utf-8")
    assert main(["--root", str(project), "explain", str(row)]) == 0
    text = capsys.readouterr().out
    assert "1. input" in text and "contributions to the" in text and "prediction:" in text
    assert main(["--root", str(project), "explain", "--row-json", json.dumps(test_rows[0]), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model"] == "run-explain"
    assert answer["contributions"]["max_gap"] <= 1e-6
    assert answer["steps"][0]["name"] == "input"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"no_such_column": 1}, "no_such_column: Extra inputs are not permitted"),
        (None, "is not JSON"),
    ],
    ids=["unknown-column", "not-json"],
)
def test_a_bad_row_is_one_line_and_exit_2(project, test_rows, capsys, change, message) -> None:
    text = "{oops" if change is None else json.dumps({**test_rows[0], **change})
    assert main(["--root", str(project), "explain", "--row-json", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line, no traceback


def test_a_value_of_the_wrong_type_is_named(project, test_rows, contract, capsys) -> None:
    column = next(name for name in test_rows[0] if contract.columns[name].type in ("integer", "number"))
    assert (
        main(["--root", str(project), "explain", "--row-json", json.dumps({**test_rows[0], column: "x"})])
        == 2
    )
    assert f"{column}: Input should be a valid" in capsys.readouterr().err
