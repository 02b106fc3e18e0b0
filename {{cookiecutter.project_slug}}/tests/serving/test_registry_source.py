"""Serving from the MLflow registry: `models:/<name>@champion` is resolved, downloaded and
loaded; the server follows the alias when it moves. Against a scratch sqlite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.pipeline.train import log_run
from {{ cookiecutter.package_name }}.serving.errors import ServeError
from {{ cookiecutter.package_name }}.serving.sources import LocalSource, RegistrySource, default_source, parse_source

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def registry(tmp_path_factory, settings, model, train_set):
    """Two registered versions of the session's model; `champion` points at the first."""
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    scratch = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": uri})})
    name = scratch.mlflow.registered_model
    model_id = log_run(model, scratch, train_set)["mlflow_model_id"]  # also points mlflow at `uri`
    for commit in ("c1", "c2"):
        tags = {"git_commit": commit, "data_md5": "d" + commit}
        mlflow.register_model(f"models:/{model_id}", name, tags=tags)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "champion", "1")
    return scratch, Paths(root), client


def test_champion_is_downloaded_and_served_with_its_tags(registry, contract, rows, served):
    settings, paths, _ = registry
    source = parse_source(f"models:/{settings.mlflow.registered_model}@champion", settings, paths)
    loaded = source.load(contract)
    assert loaded.version == "1"
    assert loaded.info["git_commit"] == "c1"
    assert loaded.info["data_md5"] == "dc1"
    assert loaded.info["alias"] == "champion"
    assert loaded.info["fast_path"] == "yes"
    assert loaded.predict(rows) == served.predict(rows)


def test_the_server_follows_the_alias(registry, contract, rows, app_for):
    settings, _, client = registry
    name = settings.mlflow.registered_model
    source = RegistrySource(name, settings.mlflow.tracking_uri, alias="champion")
    client.set_registered_model_alias(name, "champion", "1")
    with TestClient(app_for(source.load(contract), source=source), client=LOOPBACK_CLIENT) as server:
        assert server.post("/predict", json=rows[0]).json()["model_version"] == "1"
        client.set_registered_model_alias(name, "champion", "2")  # promote
        assert server.post("/admin/reload").json()["model_version"] == "2"
        assert server.get("/version").json()["git_commit"] == "c2"
        client.set_registered_model_alias(name, "champion", "1")  # roll back
        assert server.post("/admin/reload").json() == {
            "changed": True,
            "model_version": "1",
            "previous_version": "2",
        }
        assert server.post("/predict", json=rows[0]).json()["model_version"] == "1"


def test_a_pinned_version_and_an_unknown_alias(registry, contract):
    settings, paths, _ = registry
    name = settings.mlflow.registered_model
    assert parse_source(f"models:/{name}/2", settings, paths).load(contract).version == "2"
    with pytest.raises(ServeError, match="not in the registry"):
        parse_source(f"models:/{name}@nobody", settings, paths).load(contract)


def test_default_source_is_the_champion_when_registered_else_the_model_directory(registry, tmp_path):
    settings, paths, _ = registry
    assert str(default_source(settings, paths)) == f"models:/{settings.mlflow.registered_model}@champion"
    unknown = settings.model_copy(update={"serving": settings.serving.model_copy(update={"alias": "nobody"})})
    assert isinstance(default_source(unknown, paths), LocalSource)
    # No tracking store: the project's model directory, and no store is created.
    fresh = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": "sqlite:///mlflow.db"})}
    )
    source = default_source(fresh, Paths(tmp_path))
    assert isinstance(source, LocalSource)
    assert source.path == tmp_path / "models" / "model"
    assert not (tmp_path / "mlflow.db").exists()


def test_source_uris_are_checked(registry):
    settings, paths, _ = registry
    for bad in ("models:/", "models:/name", "models:/name@", "models:/name/latest"):
        with pytest.raises(ServeError, match="expected models:/"):
            parse_source(bad, settings, paths)
    assert isinstance(parse_source("some/dir", settings, paths), LocalSource)
    assert parse_source("some/dir", settings, paths).path == Path("some/dir")
