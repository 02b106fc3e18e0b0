"""The model card: `register` attaches it to the version in MLflow; the canary and a forced
promotion show on it; `card` prints it; a card without its data hash is refused."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from registry_helpers import DATA_MD5, Project, run_cli

from {{ cookiecutter.package_name }}.deploy.cards import CARD_TAG
from {{ cookiecutter.package_name }}.deploy.model_card import escaped

pytestmark = pytest.mark.registry


def read_card(project: Project, version: str) -> str:
    """The card as MLflow keeps it: the artifact the version's `model_card` tag names."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.uri, registry_uri=project.uri)
    name = project.settings.mlflow.registered_model
    location = client.get_model_version(name, version).tags[CARD_TAG]
    run_id, path = location.removeprefix("runs:/").split("/", 1)
    with tempfile.TemporaryDirectory() as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_text(encoding="utf-8")


def evaluated(project: Project, model, train_set, evaluation) -> None:
    """What the train and evaluate stages and the gate leave: metrics, slices, predictions, gate.json."""
    project.train(model, train_set, evaluation.metrics)
    paths = project.paths
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.slices.write_text(json.dumps(evaluation.slices), encoding="utf-8")
    evaluation.predictions.to_csv(paths.predictions, index=False)
    gate = {"verdict": "pass", "base": "deploy-base", "findings": [], "policy": {"changed": []}}
    gate["commit"] = project.commit
    paths.gate.write_text(json.dumps(gate), encoding="utf-8")


def test_register_attaches_a_card_with_metrics_intervals_and_data_hash(
    new_project, model, train_set, evaluation, monkeypatch
):
    project = new_project()
    evaluated(project, model, train_set, evaluation)
    code, out, err = project.cli("register")
    assert code == 0, err
    version = project.alias("challenger")
    card = read_card(project, version)
    assert f"- Data md5 (data/raw/data.csv): `{DATA_MD5}`" in card
    assert "- Gate: **pass** against deploy\\-base" in card
    assert "- Canary: **not run**" in card
    for name, value in evaluation.metrics["model"].items():
        row = next(line for line in card.splitlines() if line.startswith(f"| {escaped(name)} |"))
        assert f"| {value:.4g} | \\[" in row, row  # the value and its interval
    assert "resamples of the" in card

    project.canaried(version)
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    code, _, err = project.cli("promote", "--version", version, "--force", "incident 42, canary skipped")
    assert code == 0, err
    card = read_card(project, version)
    assert "- Canary: **passed** as the first deploy" in card
    assert "**forced** without the canary's pass, by release\\-bot: incident 42, canary skipped" in card

    summary = project.root / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = project.cli("card", "--version", version)
    assert code == 0, err
    assert out.startswith("<!-- mlgate model card -->") and "**forced**" in out
    assert summary.read_text(encoding="utf-8") == out


@pytest.mark.parametrize(
    "other_commit, why",
    [(None, "no readable reports/gate\\.json"), ("0" * 40, "reports/gate\\.json judged another commit")],
)
def test_without_a_gate_record_on_its_commit_the_card_says_not_judged(
    new_project, model, train_set, other_commit, why
):
    project = new_project()
    project.train(model, train_set, {"model": {"roc_auc": 0.71}}, gate=None)
    if other_commit:
        project.judged("pass", commit=other_commit)
    code, _, err = project.cli("register")
    assert code == 0, err
    card = read_card(project, project.alias("challenger"))
    assert f"- Gate: **not judged** ({why}" in card
    assert "No intervals: reports/predictions\\.csv not found\\." in card


def test_a_card_without_the_data_hash_is_refused_and_nothing_registered(new_project, model, train_set):
    project = new_project()
    project.train(model, train_set, {"model": {"roc_auc": 0.71}})
    lock = {"schema": "2.0", "stages": {}}  # dvc.lock without the ingest stage's md5
    project.paths.lock.write_text(yaml.safe_dump(lock), encoding="utf-8")
    ran = run_cli(project, "register")
    assert "Traceback" not in ran.err and ran.code == 1, ran.err
    assert ran.err.splitlines() == [
        "error: version new: the model card has no data hash (an md5 of data/raw/data.csv): nothing written"
    ]
    assert project.alias("challenger") is None


def test_card_of_a_version_without_one_is_one_line(new_project, model, train_set):
    from mlflow import MlflowClient

    project = new_project()
    project.train(model, train_set, {"model": {"roc_auc": 0.71}})
    assert project.cli("register")[0] == 0
    version = project.alias("challenger")
    name = project.settings.mlflow.registered_model
    MlflowClient(tracking_uri=project.uri).delete_model_version_tag(name, version, CARD_TAG)
    code, out, err = project.cli("card", "--version", version)
    assert (code, out) == (1, "")
    assert err == (
        f"error: {name} version {version} has no model card: register the model again to write one\n"
    )
