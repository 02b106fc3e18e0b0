"""Register, promote and roll back with MLflow aliases, against a scratch sqlite store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import Paths, Settings
from {{ cookiecutter.package_name }}.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryError,
    alias_version,
    format_status,
    previous_champion,
    promote,
    register,
    rollback,
    status,
    version_tags,
)
from {{ cookiecutter.package_name }}.train import log_run, save_model

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def store(tmp_path_factory, settings: Settings, model, train_set) -> tuple[Settings, Paths]:
    """A scratch project folder and tracking store holding one trained, evaluated model."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    scratch = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": uri})})
    paths = Paths(root)
    save_model(model, paths.model, metadata=log_run(model, scratch, train_set))
    paths.metrics.write_text(json.dumps({"model": {"score": 0.75}}))
    return scratch, paths


def new_candidate(store) -> str:
    settings, paths = store
    return register(settings, paths)


def test_register_tags_the_version_and_points_challenger_at_it(store):
    settings, _ = store
    version = new_candidate(store)
    assert alias_version(settings, CHALLENGER) == version
    [row] = [row for row in status(settings) if row.version == version]
    assert row.tags["metric.score"] == "0.75"
    assert {"git_commit", "data_md5"} <= set(row.tags)


def test_promote_then_rollback_restores_the_previous_champion(store):
    settings, _ = store
    first = promote(settings, new_candidate(store))
    assert alias_version(settings, CHAMPION) == first
    second = promote(settings, new_candidate(store))
    assert alias_version(settings, CHAMPION) == second != first
    [row] = [row for row in status(settings) if row.version == second]
    assert row.tags[PREVIOUS] == first

    assert rollback(settings) == first
    assert alias_version(settings, CHAMPION) == first
    assert "champion" in format_status(status(settings))


def test_rollback_to_an_explicit_version(store):
    settings, _ = store
    target = new_candidate(store)
    promote(settings)
    other = promote(settings, new_candidate(store))
    assert alias_version(settings, CHAMPION) == other
    assert rollback(settings, version=target) == target


def test_rollback_without_history_is_refused():
    with pytest.raises(RegistryError, match="no previous version"):
        previous_champion({})
    assert previous_champion({PREVIOUS: "3"}) == "3"


def test_register_refuses_a_model_without_a_run(store, tmp_path: Path, model):
    settings, _ = store
    bare = Paths(tmp_path)
    save_model(model, bare.model, metadata={})
    with pytest.raises(RegistryError, match="run the train stage"):
        register(settings, bare)
    shutil.rmtree(bare.model)


def test_version_tags_read_the_data_hash_from_the_lock():
    lock = {"stages": {"ingest": {"outs": [{"path": "data/raw/data.csv", "md5": "abc123"}]}}}
    tags = version_tags({"model": {"roc_auc": 0.7}}, lock, "deadbeef")
    assert tags == {"git_commit": "deadbeef", "data_md5": "abc123", "metric.roc_auc": "0.7"}
