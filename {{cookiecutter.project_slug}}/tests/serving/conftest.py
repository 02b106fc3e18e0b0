"""The model server's fixtures: the session's model served in-process, and in a real process.

The model comes from the shared session fixtures (the stages' pure functions),
so no `dvc repro` is needed; a real server gets a copy saved in a temporary folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

from {{ cookiecutter.package_name }}.artifacts import save_model
from {{ cookiecutter.package_name }}.serving.access import Access
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.sources import LocalSource, Served, serve_model


@pytest.fixture(scope="session")
def served(model, contract) -> Served:
    return serve_model(model, contract, "test-1", {"git_commit": "abc"})


@pytest.fixture(scope="session")
def rows(served: Served, test_set) -> list[dict]:
    """Real rows as a client sends them: the test set's model inputs, through JSON."""
    return json.loads(test_set[list(served.inputs)].head(20).to_json(orient="records"))


@pytest.fixture(scope="session")
def app_for(contract, settings):
    """An app serving a given model (default: the session's), logging to a given folder.

    Its access is that of `serve` on 127.0.0.1 without tokens unless `access` says otherwise:
    admin calls from loopback clients (LOOPBACK_CLIENT) only.
    """

    def make(
        served: Served,
        folder: Path | None = None,
        source=None,
        access: Access | None = None,
        challenger: Served | None = None,
        **serving,
    ):
        serving_settings = settings.serving.model_copy(update=serving)
        access = access or Access(loopback=True)
        return create_app(served, contract, serving_settings, folder, source, access, challenger)

    return make


@pytest.fixture(scope="module")
def client(app_for, served) -> Iterator[TestClient]:
    with TestClient(app_for(served), client=LOOPBACK_CLIENT) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def model_dir(model, tmp_path_factory) -> Path:
    """The session's model saved as the train stage saves it."""
    path = tmp_path_factory.mktemp("served") / "model"
    save_model(model, path, metadata={"mlflow_run_id": "abc"})
    return path


@pytest.fixture
def local_model(model, tmp_path) -> LocalSource:
    """The session's model in a directory of its own, as a source a server reloads from."""
    path = tmp_path / "model"
    save_model(model, path, metadata={"mlflow_run_id": "first"})
    return LocalSource(path)
