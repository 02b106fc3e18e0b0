"""Who may do what: admin calls and the detail of /version need the admin token (or, when
none is set, a loopback client of a loopback server); a server on another address does not
start without one; predictions are logged as trusted only with a token."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT, PACKAGE

from {{ cookiecutter.package_name }}.config.serving import ADMIN_TOKEN_ENV, TRUSTED_TOKEN_ENV
from {{ cookiecutter.package_name }}.deploy.servers import free_port
from {{ cookiecutter.package_name }}.served_log import newest_records
from {{ cookiecutter.package_name }}.serving.access import Access, bearer_matches, check_access, is_loopback
from {{ cookiecutter.package_name }}.serving.errors import ServeError

pytestmark = pytest.mark.serving

ADMIN = Access(admin_token="adm1n-t0ken", trusted_token="tru5ted-t0ken")
AS_ADMIN = {"Authorization": "Bearer adm1n-t0ken"}
REMOTE_CLIENT = ("192.0.2.7", 40000)  # another machine
BRIEF = {"model_version", "loaded_at"}


def test_loopback_addresses_and_bearer_tokens():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com", "localhost.example.com", "", None):
        assert not is_loopback(host), host
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer s3cret", "s3cret")
    wrong = (None, "", "s3cret", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearer é")
    for header in wrong:
        assert not bearer_matches(header, "s3cret"), header
    assert not bearer_matches("Bearer ", "")  # no token configured: nobody matches it


def test_only_a_loopback_server_may_run_without_an_admin_token_and_none_with_a_short_one():
    admin, trusted = "a" * 16, "t" * 16
    for host in ("0.0.0.0", "::", "192.168.1.5", "my-host"):
        with pytest.raises(ServeError, match=f"needs an admin token: set {ADMIN_TOKEN_ENV}"):
            check_access(host, Access(trusted_token=trusted))
        check_access(host, Access(admin_token=admin, trusted_token=trusted))
    check_access("127.0.0.1", Access())
    for short in (Access(admin_token="changeme"), Access(admin_token=admin, trusted_token="t" * 15)):
        with pytest.raises(ServeError, match=r"has (8|15) characters: use at least 16"):
            check_access("127.0.0.1", short)
    environment = {ADMIN_TOKEN_ENV: f" {admin}\n", TRUSTED_TOKEN_ENV: trusted}
    assert Access.from_env("0.0.0.0", environment) == Access(admin, trusted, loopback=False)
    assert Access.from_env("127.0.0.1", {ADMIN_TOKEN_ENV: " "}) == Access("", "", loopback=True)


def test_serve_on_all_interfaces_without_an_admin_token_is_one_clear_error(root, model_dir):
    env = {key: value for key, value in os.environ.items() if key != ADMIN_TOKEN_ENV}
    command = [sys.executable, "-m", PACKAGE, "--root", str(root), "serve", "--model", str(model_dir)]
    command += ["--host", "0.0.0.0", "--port", str(free_port()), "--no-log"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: serving on 0.0.0.0 (not a loopback address) needs an admin token: "
        f"set {ADMIN_TOKEN_ENV}, or serve on 127.0.0.1"
    ]
    assert result.stdout == ""  # refused before the model is loaded or a port is bound


def test_with_an_admin_token_admin_calls_and_version_detail_need_it(app_for, local_model, contract):
    source = local_model
    app = app_for(source.load(contract), source=source, access=ADMIN)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        # Anonymous, a wrong token, the trusted token, another scheme: refused, even from loopback.
        for header in (None, "Bearer adm1n-t0keN", "Bearer tru5ted-t0ken", "Basic adm1n-t0ken", "Bearer "):
            headers = {"Authorization": header} if header else {}
            answer = client.post("/admin/reload", headers=headers)
            assert answer.status_code == 401, header
            assert answer.headers["www-authenticate"] == "Bearer"
            assert set(client.get("/version", headers=headers).json()) == BRIEF
        answer = client.post("/admin/reload", headers={"Authorization": "bearer adm1n-t0ken"})
        assert answer.status_code == 200 and answer.json()["changed"] is False
        detail = client.get("/version", headers=AS_ADMIN).json()
        assert detail["model_version"] == "run-first" and detail["mlflow_run_id"] == "first"
        assert detail["source"] == str(source.path) and detail["fast_path"] == "yes"


@pytest.mark.parametrize("loopback_server", [True, False], ids=["loopback-server", "other-server"])
def test_without_an_admin_token_only_loopback_calls_to_a_loopback_server_are_admin(
    app_for, local_model, contract, loopback_server
):
    source = local_model
    app = app_for(source.load(contract), source=source, access=Access(loopback=loopback_server))
    with TestClient(app, client=REMOTE_CLIENT) as remote:
        answer = remote.post("/admin/reload")
        assert answer.status_code == 403 and ADMIN_TOKEN_ENV in answer.json()["detail"]
        assert remote.post("/admin/reload", headers={"Authorization": "Bearer "}).status_code == 403
        assert set(remote.get("/version").json()) == BRIEF
    with TestClient(app, client=LOOPBACK_CLIENT) as local:
        assert local.post("/admin/reload").status_code == (200 if loopback_server else 403)
        assert ("source" in local.get("/version").json()) is loopback_server


def test_the_log_marks_only_requests_with_a_token_as_trusted(app_for, served, rows, tmp_path):
    log = tmp_path / "predictions"
    with TestClient(app_for(served, log, access=ADMIN), client=LOOPBACK_CLIENT) as client:
        client.post("/predict", json=rows[0])  # anonymous, even from this machine
        client.post("/predict", json=rows[1], headers={"Authorization": "Bearer tru5ted-t0ken"})
        client.post("/predict", json=rows[2], headers=AS_ADMIN)
        client.post("/predict", json=rows[3], headers={"Authorization": "Bearer guessed"})
    trusted = [record["trusted"] for record in reversed(list(newest_records(log)))]
    assert trusted == [False, True, True, False]
