"""Scratch projects for the registry, canary and rollback tests, each with its own tracking store.

A project is a temporary folder laid out like this one (params.yaml, schema.yaml,
the test set, a dvc.lock, models/model) whose models come from the session's
fixtures (the stages' pure functions), not from `dvc repro`. Its tracking store
is a copy of one empty sqlite store migrated once per session (MLflow spends
seconds creating its tables), or a real `mlflow server` on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from registry_helpers import DATA_MD5, Project
from team_server import NotStarted, TeamServer, running

from {{ cookiecutter.package_name }}.config.settings import Settings
from {{ cookiecutter.package_name }}.data import write_frame
from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.pipeline.train import fit

_names = itertools.count(1)


@pytest.fixture(scope="session")
def blank_store(tmp_path_factory) -> Path:
    """An empty sqlite tracking store with MLflow's tables, made once and copied for each project."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("blank-store") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


@pytest.fixture(scope="session")
def new_project(tmp_path_factory, root: Path, test_set: pd.DataFrame, blank_store: Path, contract):
    """Make a scratch project: on a copy of the blank sqlite store, or on the tracking server at `uri`."""

    def make(uri: str | None = None, reload_seconds: float = 1) -> Project:
        from mlflow import MlflowClient

        folder = tmp_path_factory.mktemp("project")
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        params["serving"]["reload_seconds"] = reload_seconds  # how often servers look at the alias
        # Latency and slowdown have their own unit tests: two servers timed side by side on a busy
        # machine differ by more than the shipped limits, and these tests judge the other checks.
        params["canary"] |= {"sample_size": 60, "max_p99_ms": 1000, "max_slowdown": 100}
        params["mlflow"]["registered_model"] += f"-{next(_names)}"  # unique on a shared server
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        shutil.copy(root / "schema.yaml", folder / "schema.yaml")
        write_frame(test_set, Paths(folder).test)
        out = {"path": "data/raw/data.csv", "md5": DATA_MD5}
        lock = {"schema": "2.0", "stages": {"ingest": {"outs": [out]}}}
        (folder / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
        if uri is None:
            shutil.copy(blank_store, folder / "mlflow.db")
            uri = f"sqlite:///{folder / 'mlflow.db'}"
            # Artifacts inside the project folder, not in ./mlruns of whoever runs the tests.
            artifacts = (folder / "mlartifacts").as_uri()
            MlflowClient(tracking_uri=uri).create_experiment(params["mlflow"]["experiment"], artifacts)
        return Project(folder, uri)

    return make


@pytest.fixture(scope="session")
def retrained_model(settings: Settings, train_set: pd.DataFrame):
    """A sound new candidate: the same model family refit on 90% of the training rows."""
    return fit(train_set.sample(frac=0.9, random_state=1), settings)


@pytest.fixture(scope="session")
def team_server(tmp_path_factory, postgresql) -> Iterator[TeamServer]:
    """A team's `mlflow server` on 127.0.0.1: its store on PostgreSQL, its artifacts proxied to an
    S3 bucket (tests/team_server.py), stopped after the session."""
    try:
        with running(postgresql, tmp_path_factory.mktemp("team-server")) as team:
            yield team
    except NotStarted as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def tracking_server(team_server: TeamServer) -> str:
    return team_server.url
