"""The tracking store's pure part: URIs, HTTP bounds, the record of what was seen, one-line messages."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.tracking import (
    HTTP_DEFAULTS,
    NEW_REGISTRY_ENV,
    RegistryError,
    absolute_uri,
    accepting_new_registry,
    artifact_folder,
    bound_http_requests,
    check_file,
    describe,
    file_fault,
    local_store_present,
    missing_http_defaults,
    outside,
    parse_state,
    remember,
    sqlite_file,
    with_seen,
)

pytestmark = pytest.mark.unit

URI = "sqlite:////p/mlflow.db"


def test_relative_sqlite_stores_are_the_projects_and_others_are_left_alone(tmp_path):
    assert absolute_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    for uri in ("sqlite:////abs/mlflow.db", "http://127.0.0.1:5000", "postgresql://db/mlflow"):
        assert absolute_uri(uri, tmp_path) == uri
    assert sqlite_file("sqlite:////abs/my%20store.db?timeout=5") == Path("/abs/my store.db").resolve()
    assert sqlite_file("http://127.0.0.1:5000") is None


def test_http_bounds_are_defaults_that_never_override_the_user(monkeypatch):
    assert missing_http_defaults({}) == HTTP_DEFAULTS
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in missing_http_defaults({"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"})
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    bound_http_requests()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    # The worst wait on a silent server: every try times out, with backoff between (at most factor * 2^n).
    tries = int(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) + 1
    backoff = sum(int(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]) * 2**n for n in range(1, tries))
    assert tries * int(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]) + backoff < 60


def test_a_new_registry_is_accepted_only_when_asked():
    assert accepting_new_registry({NEW_REGISTRY_ENV: "1"})
    assert accepting_new_registry({NEW_REGISTRY_ENV: "yes"})
    assert not accepting_new_registry({})
    assert not accepting_new_registry({NEW_REGISTRY_ENV: "0"})


def test_the_record_keeps_the_highest_version_seen_and_forgets_on_request():
    db = Path("/p/mlflow.db")
    state = parse_state(None, db)
    state = with_seen(state, db, URI, "m", 3)
    state = with_seen(state, db, URI, "m", 2)  # a lower one does not lower the mark
    state = with_seen(state, db, URI)
    assert state == {"stores": {"/p/mlflow.db": {"uri": URI, "models": {"m": 3}}}}
    assert with_seen(state, db, URI, fresh=True)["stores"]["/p/mlflow.db"]["models"] == {}
    assert with_seen(state, Path("/copy/mlflow.db"), URI)["stores"]["/copy/mlflow.db"]["models"] == {}
    with pytest.raises(RegistryError, match="not a registry record; delete it"):
        parse_state("{not json", Path("/p/.mlgate/registry.json"))
    with pytest.raises(RegistryError, match="not a registry record"):
        parse_state("[]", Path("/p/.mlgate/registry.json"))


def test_a_store_file_is_refused_only_where_the_project_used_one():
    record = {"models": {"m": 3}}
    assert file_fault(URI, None, None) is None  # a first run: MLflow creates the store
    assert file_fault(URI, None, 0) is None
    assert file_fault(URI, record, 4096) is None
    assert file_fault(URI, record, None) == (
        f"{URI}: the registry file is gone, yet this project used it (m up to version 3): "
        f"restore it from a backup, or set {NEW_REGISTRY_ENV}=1 to start a new registry"
    )
    assert file_fault(URI, {"models": {}}, 0).startswith(
        f"{URI}: the registry file is empty, yet this project used it: restore"
    )


def test_damaged_files_are_refused_before_mlflow_is_involved(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 100)
    connection.close()
    uri = f"sqlite:///{db}"
    check_file(uri, db, None)  # intact
    whole = db.read_bytes()
    db.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RegistryError, match=r"damaged \(truncated\?\): restore it, or move it aside"):
        check_file(uri, db, None)
    db.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(RegistryError, match=r"not an SQLite database \(overwritten\?\)"):
        check_file(uri, db, None)
    assert db.read_bytes() == b"\x00garbage" * 100


def test_artifacts_outside_the_stores_folder_are_found(tmp_path):
    home = tmp_path / "project"
    assert outside(str(home / "mlruns" / "1"), home) is None
    assert outside((home / "mlartifacts").as_uri(), home) is None
    original = tmp_path / "original" / "mlruns" / "1"
    assert outside(str(original), home) == original
    assert outside((tmp_path / "other").as_uri(), home) == tmp_path / "other"
    for remote in ("mlflow-artifacts:/1", "s3://bucket/mlruns/1"):
        assert outside(remote, home) is None
    assert artifact_folder(home, "ml project/v2") == home / "mlruns" / "ml-project-v2"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "API request to http://h/api failed with exception HTTPConnectionPool(host='h'): Max retries "
            "exceeded (Caused by NewConnectionError('[Errno 111] Connection refused'))",
            "connection refused: is the tracking server up?",
        ),
        ("... Read timed out. (read timeout=7)", "no answer within 7 s: is the tracking server up?"),
        ("file is not a database", "not an SQLite database (overwritten?): restore it"),
        ("database is locked", "the database is locked by another process: try again when it is done"),
        ("API request to /x failed with error code 401 != 200", "the server refused the credentials"),
        (
            "API request to http://h/api/2.0/mlflow-artifacts/artifacts/1/m.skops failed with exception "
            "HTTPConnectionPool(host='h'): Max retries exceeded (Caused by ResponseError('too many 500 "
            "error responses'))",
            "the server answered HTTP 500 on every try: see the tracking server's log",
        ),
        ("Something new\nwith a second line", "Something new"),
    ],
)
def test_store_failures_read_as_one_line_naming_the_store(text, line):
    message = describe("http://h", text, {"MLFLOW_HTTP_REQUEST_TIMEOUT": "7"})
    assert message.startswith(f"http://h: {line}")
    assert "\n" not in message
    assert len(describe("http://h", "x" * 5000, {})) < 300


def test_a_server_without_a_store_serves_models_model_but_not_in_place_of_a_lost_one(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert not local_store_present(uri)  # never made here: models/model is served, no store is created
    assert not db.exists()
    db.write_bytes(b"")
    remember(uri, "m", 2)
    with pytest.raises(RegistryError, match="the registry file is empty, yet this project used it"):
        local_store_present(uri)
    db.unlink()
    with pytest.raises(RegistryError, match="the registry file is gone"):
        local_store_present(uri)
    monkeypatch.setenv(NEW_REGISTRY_ENV, "1")
    assert not local_store_present(uri)
    assert local_store_present("http://127.0.0.1:5000")
