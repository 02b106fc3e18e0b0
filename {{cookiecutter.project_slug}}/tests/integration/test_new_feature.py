"""A new feature is added the way the README says: a column in the data, its rule in the contract
(schema.yaml) and the data source in params.yaml; `dvc repro` then trains on it end to end. In a
temporary copy of the project (slow)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import explain, ignore, run

from {{ cookiecutter.package_name }}.artifacts import load_model
from {{ cookiecutter.package_name }}.config.settings import load_settings
from {{ cookiecutter.package_name }}.pipeline.ingest import ingest
from {{ cookiecutter.package_name }}.schema import ColumnRule, dump_contract, load_contract

pytestmark = pytest.mark.integration

NEW = "new_signal"
SOURCE = "data/external/source.csv"


def with_new_signal(frame: pd.DataFrame, target: str, seed: int) -> pd.DataFrame:
    """The data with one more column that carries information about the target, plus noise: a
    feature worth adding, so the model that gets it must draw on it."""
    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(frame))
    truth = frame[target]
    codes = truth if pd.api.types.is_numeric_dtype(truth) else truth.astype("category").cat.codes
    signal = (codes - codes.mean()) / (codes.std() or 1.0)
    return frame.assign(**{NEW: (signal + noise).round(6)})


def added_feature_problems(project: Path) -> list[str]:
    """What keeps the new column from being a working feature after `dvc repro`."""
    model_dir = project / "models" / "model"
    if not model_dir.exists():
        return ["no model was trained"]
    if NEW not in list(load_model(model_dir).feature_names_in_):
        return [f"{NEW} does not reach the model"]
    rows = json.loads((project / "plots" / "importance.json").read_text())["importance"]
    row = next((r for r in rows if r["feature"] == NEW), None)
    if row is None or not row["importance"] > 2 * row["std"]:
        return [f"{NEW} is not valued by the model: {row}"]
    return []


@pytest.fixture(scope="module")
def attempts(tmp_path_factory: pytest.TempPathFactory, root: Path) -> dict[str, object]:
    """A copy of the project given a new column: first in the data alone, then with its rule in
    the contract. The outcome of `dvc repro` after each step."""
    project = tmp_path_factory.mktemp("new-feature") / root.name
    shutil.copytree(root, project, ignore=ignore(root), symlinks=True)
    result = run(project, "git", "init", "--quiet")
    assert result.returncode == 0, explain(result)
    settings = load_settings(project / "params.yaml")
    frame = ingest(settings.data, project)
    (project / SOURCE).parent.mkdir(parents=True, exist_ok=True)
    with_new_signal(frame, settings.data.target, settings.train.seed).to_csv(project / SOURCE, index=False)
    if settings.data.source != "csv":  # the bundled demo data: read the file instead
        params = (project / "params.yaml").read_text(encoding="utf-8")
        params = re.sub(r"(?m)^  source: .*$", f"  source: csv\n  csv_path: {SOURCE}", params, count=1)
        (project / "params.yaml").write_text(params, encoding="utf-8")

    outcomes: dict[str, object] = {"data only": run(project, "dvc", "repro")}
    outcomes["data only: problems"] = added_feature_problems(project)
    contract = load_contract(project / "schema.yaml")
    rule = ColumnRule(type="number", min=-20, max=20)
    widened = contract.model_copy(update={"columns": {**contract.columns, NEW: rule}})
    (project / "schema.yaml").write_text(dump_contract(widened), encoding="utf-8")
    outcomes["with contract"] = run(project, "dvc", "repro")
    outcomes["with contract: problems"] = added_feature_problems(project)
    return outcomes


def test_a_column_added_through_data_contract_and_params_is_trained_on(attempts) -> None:
    result = attempts["with contract"]
    assert isinstance(result, subprocess.CompletedProcess) and result.returncode == 0, explain(result)
    assert attempts["with contract: problems"] == []


def test_a_column_added_to_the_data_alone_is_refused_by_name(attempts) -> None:
    """The fault: a column that reaches the data without a rule in the contract. The pipeline stops
    before training, naming it, and the check above sees no working feature."""
    result = attempts["data only"]
    assert isinstance(result, subprocess.CompletedProcess) and result.returncode != 0
    assert NEW in result.stderr and "Traceback" not in result.stderr, explain(result)
    assert attempts["data only: problems"] == ["no model was trained"]
