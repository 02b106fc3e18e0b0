"""The feedback partition: labelled rows of trusted requests become training rows once, only when
they pass the data contract, and `ingest` adds them with data.include_feedback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.feedback import Label, labels_beside, store_labels
from {{ cookiecutter.package_name }}.feedback_rows import kept_on_remote, labelled_rows
from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.pipeline import ingest
from {{ cookiecutter.package_name }}.serving.access import Access
from {{ cookiecutter.package_name }}.serving.app import create_app

pytestmark = pytest.mark.serving

TRUSTED = "trusted-token-for-the-feedback-rows"
ROWS = 30


def test_only_labelled_rows_of_trusted_answered_requests_count_and_each_once():
    def record(request_id: str, **fields) -> dict:
        inputs = [{"x": 1}, {"x": 2}]
        context = [{"group": "a", "person": "hmac-sha256:00"}, {"group": "b", "person": "hmac-sha256:11"}]
        return {"request_id": request_id, "inputs": inputs, "context": context, "trusted": True, **fields}

    records = [
        record("r1"),
        record("r1"),  # the same request twice (two files): one row each
        record("anonymous", trusted=False),
        record("shadowed", shadow=True),
        record("failed", error="prediction_failed"),
    ]
    labels = {
        (rid, row): f"label-{rid}-{row}"
        for rid in ("r1", "anonymous", "shadowed", "failed")
        for row in (0, 1)
    }
    del labels[("r1", 1)]  # not labelled yet
    rows = labelled_rows(records, labels, "y", kept=["group"])
    assert rows == [{"request_id": "r1", "row": 0, "x": 1, "group": "a", "y": "label-r1-0"}]


@pytest.fixture
def project(tmp_path: Path, settings) -> Path:
    here = Path.cwd()
    for name in ("params.yaml", "schema.yaml"):
        shutil.copy(here / name, tmp_path / name)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    if settings.data.csv_path:  # ingest reads the project's own data
        (tmp_path / settings.data.csv_path).parent.mkdir(parents=True)
        shutil.copy(here / settings.data.csv_path, tmp_path / settings.data.csv_path)
    params["data"]["include_feedback"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def sensitive_may_be_empty(project: Path, settings) -> None:
    """The sensitive features are no model inputs and never logged in clear: rows from the log lack
    them, which the contract must then allow."""
    schema = yaml.safe_load((project / "schema.yaml").read_text())
    for name in settings.data.sensitive_features:
        schema["columns"][name]["nullable"] = True
    (project / "schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))


def served_and_labelled(project: Path, served, contract, settings, test_set) -> list[str]:
    """ROWS rows of held-out data sent one per request by a trusted client, then one anonymous
    request; the true labels of all of them stored."""
    from {{ cookiecutter.package_name }}.config.settings import load_settings

    serving = load_settings(project / "params.yaml").serving
    folder = project / "logs" / "predictions"
    app = create_app(served, contract, serving, folder, None, Access(trusted_token=TRUSTED, loopback=True))
    rows = json.loads(test_set[list(served.inputs)].head(ROWS + 1).to_json(orient="records"))
    ids = []
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        for number, row in enumerate(rows):
            headers = {"Authorization": f"Bearer {TRUSTED}"} if number < ROWS else {}
            answer = client.post("/predict", json=row, headers=headers)
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["x-request-id"])
    truth = test_set[settings.data.target].head(ROWS + 1).tolist()
    labels = [Label(request_id, 0, label) for request_id, label in zip(ids, truth, strict=True)]
    store_labels(labels_beside(folder), labels, "test")
    return ids


def exported(project: Path, capsys) -> tuple[int, str]:
    code = main(["--root", str(project), "feedback", "export"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_labelled_rows_are_exported_once_and_ingest_adds_them(
    project, served, contract, settings, test_set, capsys
):
    sensitive_may_be_empty(project, settings)
    served_and_labelled(project, served, contract, settings, test_set)
    code, out = exported(project, capsys)
    assert code == 0 and f"{ROWS} new labelled row(s) -> data/feedback/labelled.csv" in out, out
    paths = Paths(project)
    part = pd.read_csv(paths.feedback)
    assert len(part) == ROWS  # the anonymous request's row is not training data
    expected = test_set.head(ROWS).reset_index(drop=True)
    target = settings.data.target
    assert part[target].astype(str).tolist() == expected[target].astype(str).tolist()
    assert (exported(project, capsys)) == (
        0,
        "feedback: 0 new labelled row(s) -> data/feedback/labelled.csv; `dvc repro` trains on them\n",
    )

    ingest.run(ingest.StageSettings.load(paths.params), paths)
    raw = pd.read_csv(paths.raw)
    source = ingest.ingest(ingest.StageSettings.load(paths.params).data, project)
    assert len(raw) == len(source) + ROWS and list(raw.columns) == list(source.columns)
    assert raw.tail(ROWS)[target].astype(str).tolist() == expected[target].astype(str).tolist()


def broken_by_the_rows(project: Path, contract, settings, served, test_set) -> list[str]:
    """Columns the served rows will break: the sensitive features the contract requires (never
    logged in clear), else an input whose maximum is set to the smallest value sent."""
    required = [name for name in settings.data.sensitive_features if not contract.columns[name].nullable]
    if required:
        return required
    name = next(n for n in served.inputs if contract.columns[n].type in ("integer", "number"))
    sent = test_set[name].head(ROWS).dropna()
    assert sent.max() > sent.min(), name
    schema = yaml.safe_load((project / "schema.yaml").read_text())
    schema["columns"][name] |= {"min": None, "max": float(sent.min())}
    (project / "schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))
    return [name]


def test_rows_that_break_the_contract_are_refused_in_one_line_and_nothing_is_written(
    project, served, contract, settings, test_set, capsys
):
    broken = broken_by_the_rows(project, contract, settings, served, test_set)
    served_and_labelled(project, served, contract, settings, test_set)
    code, out = exported(project, capsys)
    assert code != 0 and out.startswith(
        "error: data/feedback/labelled.csv: labelled rows break the data contract"
    )
    assert out.count("\n") == 1 and all(f"{name}: " in out for name in broken), out
    assert not Paths(project).feedback.exists()


def test_the_partition_follows_the_data_rule_git_or_the_dvc_remote(
    project, served, contract, settings, test_set, capsys
):
    """In git while the DVC remote is a folder of this machine; DVC-tracked (for `make retrain` to
    push) once the remote is storage that CI can reach."""
    assert not kept_on_remote(None) and not kept_on_remote("/srv/dvc") and not kept_on_remote("file:///srv")
    assert kept_on_remote("s3://bucket/dvc") and kept_on_remote("ssh://host/dvc")
    sensitive_may_be_empty(project, settings)
    served_and_labelled(project, served, contract, settings, test_set)
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=project, check=True)
    subprocess.run(
        [*dvc, "remote", "add", "-d", "mine", str(project.parent / "dvc-store")], cwd=project, check=True
    )
    code, out = exported(project, capsys)
    assert code == 0 and "-> data/feedback/labelled.csv; " in out, out
    assert not (project / "data" / "feedback" / "labelled.csv.dvc").exists(), "a local remote: kept in git"

    (project / "data" / "feedback" / "labelled.csv").unlink()
    subprocess.run(
        [*dvc, "remote", "add", "-f", "-d", "team", "s3://team-bucket/dvc"], cwd=project, check=True
    )
    code, out = exported(project, capsys)
    tracked = "(DVC-tracked: data/feedback/labelled.csv.dvc; `dvc push` sends it to s3://team-bucket/dvc)"
    assert code == 0 and tracked in out, out
    assert yaml.safe_load((project / "data" / "feedback" / "labelled.csv.dvc").read_text())["outs"][0][
        "path"
    ] == ("labelled.csv")
    assert "/labelled.csv" in (project / "data" / "feedback" / ".gitignore").read_text().split()
