"""A broken, missing, foreign or unreachable tracking store: one `error: ` line, and nothing changed.

Each test injects one fault into a scratch project with two registered versions
(1 the champion, 2 the challenger), runs the real command in a subprocess, and
checks the single line it prints, its exit code, and that the registry, the
store file and the artifacts are as they were. Each fault is undone after its test.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from registry_helpers import Project, refusal, run_cli

from {{ cookiecutter.package_name }}.data import write_frame
from {{ cookiecutter.package_name }}.deploy.registry import CHALLENGER, CHAMPION, check_servable, model_metrics
from {{ cookiecutter.package_name }}.deploy.servers import free_port
from {{ cookiecutter.package_name }}.pipeline.train import log_run
from {{ cookiecutter.package_name }}.provenance import evaluated_other_model
from {{ cookiecutter.package_name }}.tracking import (
    NEW_REGISTRY_ENV,
    STATE_FILE,
    RegistryError,
    download_version,
    open_store,
    read_state,
    remember,
)

pytestmark = pytest.mark.registry

METRICS = {"model": {"roc_auc": 0.71}}
UNREACHABLE_WITHIN = 25.0  # seconds to give up on a silent server: 3 tries of 2 s, backoff, fitting


@pytest.fixture(scope="module")
def registered(new_project, model, train_set) -> Project:
    """Versions 1 (champion) and 2 (challenger) of one train run's model; the train set in place."""
    project = new_project()
    write_frame(train_set, project.paths.train)
    project.train(model, train_set, METRICS)
    for command in (["register"], ["promote", "--force", "a first champion for these tests"], ["register"]):
        code, _, err = project.cli(*command)
        assert code == 0, err
    assert (project.alias(CHAMPION), project.alias(CHALLENGER)) == ("1", "2")
    return project


@pytest.fixture
def project(registered: Project, tmp_path: Path) -> Iterator[Project]:
    """The registered project; its store, record and metrics are put back after the test."""
    kept = [registered.root / "mlflow.db", registered.root / STATE_FILE, registered.paths.metrics]
    copies = {path: tmp_path / f"kept-{index}" for index, path in enumerate(kept)}
    for path, copy in copies.items():
        shutil.copy2(path, copy)
    before = versions(registered)
    yield registered
    for path, copy in copies.items():
        shutil.copy2(copy, path)
    assert versions(registered) == before


def versions(project: Project) -> list[tuple[str, tuple[str, ...]]]:
    """(version, aliases) of every version, read straight from the store (no checks on the way)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.uri, registry_uri=project.uri)
    name = project.settings.mlflow.registered_model
    found = client.search_model_versions(f"name = '{name}'")
    aliases = client.get_registered_model(name).aliases if found else {}
    return sorted(
        (str(v.version), tuple(sorted(a for a, n in aliases.items() if str(n) == str(v.version))))
        for v in found
    )


def files(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def aside(path: Path) -> Iterator[None]:
    """`path` moved away for the duration (whatever took its place meanwhile is dropped)."""
    away = path.with_name(path.name + ".aside")
    path.rename(away)
    try:
        yield
    finally:
        if path.is_dir():
            shutil.rmtree(path)
        away.replace(path)


def test_a_store_overwritten_with_garbage_is_refused_and_left_alone(project):
    db = project.root / "mlflow.db"
    garbage = bytes(range(256)) * 16
    db.write_bytes(garbage)
    line = refusal(run_cli(project, "status"))
    assert line == (
        f"error: {project.uri}: not an SQLite database (overwritten?): restore it, "
        f"or move it aside and set {NEW_REGISTRY_ENV}=1 to start a new registry"
    )
    for command in ("register", "promote", "rollback"):  # in this process: the same line
        assert project.cli(command) == (1, "", line + "\n")
    code, _, err = project.cli("canary")
    assert code == 2 and err.count("\n") == 1 and "not an SQLite database" in err  # 2: could not run
    assert db.read_bytes() == garbage  # MLflow did not "repair" it into a new store


def test_a_truncated_store_is_refused_and_left_alone(project):
    db = project.root / "mlflow.db"
    truncated = db.read_bytes()[: db.stat().st_size // 2]
    db.write_bytes(truncated)
    code, _, err = project.cli("promote", "--version", "2")
    assert code == 1
    assert err.startswith(f"error: {project.uri}: the database file is damaged (truncated?): restore it")
    assert db.read_bytes() == truncated


def test_a_deleted_store_is_refused_not_silently_recreated(project):
    db = project.root / "mlflow.db"
    name = project.settings.mlflow.registered_model
    with aside(db):
        line = refusal(run_cli(project, "register"))
        assert line == (
            f"error: {project.uri}: the registry file is gone, yet this project used it "
            f"({name} up to version 2): restore it from a backup, or set {NEW_REGISTRY_ENV}=1 "
            "to start a new registry"
        )
        assert project.cli("canary") == (2, "", line + "\n")  # not a "first deploy" on an empty store
        assert project.cli("train")[0] == 1
        assert not db.exists()


def test_a_new_registry_is_accepted_on_purpose(new_project, monkeypatch):
    project = new_project()  # an empty store, as MLflow would make in place of a lost one
    name = project.settings.mlflow.registered_model
    db = project.root / "mlflow.db"
    remember(project.uri, name, 4)  # the project used this store up to version 4
    assert "version 4 is missing" in project.cli("status")[2]
    monkeypatch.setenv(NEW_REGISTRY_ENV, "1")
    code, out, err = project.cli("status")
    assert code == 0, err
    assert "no registered versions yet" in out
    monkeypatch.delenv(NEW_REGISTRY_ENV)
    assert project.cli("status")[0] == 0  # the record is of this store now
    assert read_state(db)["stores"][str(db.resolve())]["models"] == {}


def test_an_emptied_store_is_refused(project):
    db = project.root / "mlflow.db"
    db.write_bytes(b"")
    code, _, err = project.cli("rollback")
    assert code == 1
    assert err.startswith(f"error: {project.uri}: the registry file is empty, yet this project used it")
    assert db.stat().st_size == 0


def test_a_store_without_the_versions_this_project_registered_is_refused(project, blank_store):
    shutil.copy(blank_store, project.root / "mlflow.db")  # an older or another store: tables, no versions
    name = project.settings.mlflow.registered_model
    code, _, err = project.cli("register")
    assert code == 1
    assert err == (
        f"error: {project.uri}: {name} version 2 is missing, yet this project registered it here (an older "
        f"copy, or another store?): restore the store, or set {NEW_REGISTRY_ENV}=1 to accept this one\n"
    )
    assert versions(project) == []  # nothing registered into it


def test_deleted_artifacts_are_refused_before_they_become_the_champion(project, tmp_path):
    name = project.settings.mlflow.registered_model
    with aside(project.root / "mlartifacts"):
        code, _, err = project.cli("promote", "--version", "2")
        gone = project.root / "mlartifacts"
        assert code == 1 and err.startswith(f"error: models:/{name}/2: its files are gone from {gone}")
        assert err.endswith("(mlruns/ deleted?): restore them, or register and promote another version\n")
        assert project.alias(CHAMPION) == "1"
        # What the server and the canary call before loading a version: one line, not a FileNotFoundError.
        with pytest.raises(RegistryError, match="its files are gone"):
            download_version(open_store(project.uri), project.uri, name, "1", tmp_path)
        with pytest.raises(RegistryError, match="its files are gone"):
            check_servable(project.settings, "1")
        # The train run's files are gone too: register logs models/model again, so the version has files.
        code, out, err = project.cli("register")
        assert code == 0, err
        assert "version 3 " in out
        download_version(open_store(project.uri), project.uri, name, "3", tmp_path / "v3")
        assert (tmp_path / "v3" / "MLmodel").is_file()


def test_a_copied_project_does_not_write_into_the_originals_artifacts(project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(project.root, copy)
    before = files(project.root / "mlartifacts")
    copied = Project(copy, f"sqlite:///{copy / 'mlflow.db'}")
    code, _, line = copied.cli("train")
    assert code == 1
    assert line == (
        f"error: {copied.uri}: this registry's artifacts live in {project.root / 'mlartifacts'}, outside "
        f"{copy}, the store's folder (a copied or moved project?): work in the project that holds them, or "
        f"move mlflow.db aside here and set {NEW_REGISTRY_ENV}=1 to start a registry of its own\n"
    )
    assert copied.cli("register") == (1, "", line)
    assert files(project.root / "mlartifacts") == before
    assert versions(copied) == versions(project)


def test_train_against_a_port_that_refuses_fails_fast_in_one_line(project):
    model_file = project.paths.model / "model.skops"
    saved = model_file.stat().st_mtime_ns
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ran = run_cli(Project(project.root, uri), "train")
    line = refusal(ran)
    assert line == (
        f"error: {uri}: connection refused: is the tracking server up? "
        "(MLFLOW_TRACKING_URI, else mlflow.tracking_uri in params.yaml)"
    )
    # No time bound here beyond run_cli's (most of the time is starting Python and importing MLflow,
    # whose own retries would take over four minutes); the next test times the wait itself.
    assert model_file.stat().st_mtime_ns == saved  # the stage failed before writing models/model


def test_train_against_a_server_that_never_answers_gives_up_in_bounded_time(project, monkeypatch):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts connections; nobody ever reads or answers
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        # A timeout the user set is kept (the default is 10 s); the retries are the project's (3 tries).
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
        monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
        started = time.monotonic()
        code, _, err = Project(project.root, uri).cli("train")
        waited = time.monotonic() - started
    assert code == 1
    assert err == (
        f"error: {uri}: no answer within 2 s: is the tracking server up? "
        "(MLFLOW_TRACKING_URI, else mlflow.tracking_uri in params.yaml)\n"
    )
    assert waited < UNREACHABLE_WITHIN


def test_register_refuses_a_model_without_test_metrics(project):
    with aside(project.paths.metrics):  # a failed evaluate stage: DVC removed its outputs
        line = refusal(run_cli(project, "register"))
    assert line == "error: metrics.json not found: run the evaluate stage (`dvc repro`) first"
    project.paths.metrics.write_text(json.dumps({"baseline": {"roc_auc": 0.5}}))
    code, _, err = project.cli("register")
    assert code == 1
    assert err == "error: metrics.json has no `model` metrics: run the evaluate stage (`dvc repro`) first\n"


def test_register_refuses_metrics_of_another_model(project):
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    stages = lock["stages"]
    stages["train"] = {"outs": [{"path": "models/model", "md5": "new.dir"}]}
    stages["evaluate"] = {"deps": [{"path": "models/model", "md5": "old.dir"}]}  # evaluate failed since
    (project.root / "dvc.lock").write_text(yaml.safe_dump(lock))
    try:
        code, _, err = project.cli("register")
    finally:
        del stages["train"], stages["evaluate"]
        (project.root / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert code == 1 and "metrics.json is another model's" in err


def test_a_new_experiment_keeps_its_artifacts_beside_the_store_wherever_train_runs(
    blank_store, model, train_set, settings, tmp_path, monkeypatch
):
    store = tmp_path / "project" / "mlflow.db"
    store.parent.mkdir()
    shutil.copy(blank_store, store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    mlflow = settings.mlflow.model_copy(update={"tracking_uri": "sqlite:///mlflow.db"})
    ids = log_run(model, settings.model_copy(update={"mlflow": mlflow}), train_set, root=store.parent)
    client = open_store(f"sqlite:///{store}")
    location = client.get_experiment_by_name(settings.mlflow.experiment).artifact_location
    assert Path(location).is_relative_to(store.parent / "mlruns")
    assert (Path(client.get_logged_model(ids["mlflow_model_id"]).artifact_location) / "MLmodel").is_file()
    assert not list(elsewhere.iterdir())


def test_model_metrics_and_the_lock_check():
    assert model_metrics({"model": {"roc_auc": 0.7}}) == {"model": {"roc_auc": 0.7}}
    for bad in ({}, {"model": {}}, {"model": "0.7"}, [], None):
        with pytest.raises(RegistryError, match="no `model` metrics"):
            model_metrics(bad)
    with pytest.raises(RegistryError, match="'roc_auc' is not a number"):
        model_metrics({"model": {"roc_auc": "high"}})
    trained = {"train": {"outs": [{"path": "models/model", "md5": "a"}]}}
    assert not evaluated_other_model({"stages": trained})  # evaluate never ran: nothing to compare
    same = {"evaluate": {"deps": [{"path": "models/model", "md5": "a"}]}}
    assert not evaluated_other_model({"stages": trained | same})
    other = {"evaluate": {"deps": [{"path": "models/model", "md5": "b"}]}}
    assert evaluated_other_model({"stages": trained | other})
