"""A team's tracking server (tests/team_server.py): runs and versions in PostgreSQL, model files in
the S3 bucket behind the server, and a server that cannot store artifacts refused in one line.

The whole deploy path against it (canary, promote, rollback with a running model server) is
tests/registry/test_deploy.py's `team-server` case.
"""

from __future__ import annotations

import pytest
from registry_helpers import Project, refusal, run_cli
from team_server import NotStarted, TeamServer, stored_keys, tracking_server

from {{ cookiecutter.package_name }}.data import write_frame
from {{ cookiecutter.package_name }}.deploy.registry import CHAMPION

pytestmark = pytest.mark.registry


def versions_in_database(team: TeamServer, name: str) -> list[str]:
    """The registered versions of `name`, read from the backend store's own table."""
    import psycopg

    url = team.database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT version FROM model_versions WHERE name = %s ORDER BY version", (name,)
        )
        return [str(row[0]) for row in rows]


def test_versions_live_in_postgresql_and_model_files_in_the_bucket(
    team_server, new_project, model, train_set
):
    project = new_project(team_server.url)
    name = project.settings.mlflow.registered_model
    project.train(model, train_set)
    assert project.cli("register")[0] == 0
    assert project.cli("promote", "--force", "the first champion")[0] == 0
    assert versions_in_database(team_server, name) == ["1"]
    assert project.alias(CHAMPION) == "1"

    keys = stored_keys(team_server.s3_endpoint, team_server.bucket)
    assert any(key.endswith("/model.skops") for key in keys), keys
    assert not (project.root / "mlartifacts").exists() and not (project.root / "mlruns").exists()

    # The champion comes back from the bucket through the server: the files a model server loads.
    code, out, err = project.cli("status")
    assert code == 0 and "champion" in out, err


def test_a_server_that_cannot_store_artifacts_fails_train_in_one_line(
    team_server, new_project, model, train_set
):
    """The server's bucket does not exist (a wrong bucket, endpoint or key looks the same to a
    client): `train` fails in one line, models/model and the registry stay as they were."""
    project = new_project(team_server.url)
    write_frame(train_set, project.paths.train)
    project.train(model, train_set)
    assert project.cli("register")[0] == 0
    model_file = project.paths.model / "model.skops"
    saved = model_file.stat().st_mtime_ns
    folder = project.root / "broken-server"
    folder.mkdir()
    try:
        url, server = tracking_server(folder, team_server.database, team_server.s3_endpoint, "no-such-bucket")
    except NotStarted as err:
        pytest.fail(str(err))
    try:
        ran = run_cli(Project(project.root, url), "train")
    finally:
        server.stop()
    assert refusal(ran) == (
        f"error: {url}: the server answered HTTP 500 on every try: "
        "see the tracking server's log (can it reach its database and its artifact store?)"
    )
    assert model_file.stat().st_mtime_ns == saved
    assert versions_in_database(team_server, project.settings.mlflow.registered_model) == ["1"]
