"""The deploy loop with real processes: canary, promote, a server that follows `champion`, roll back.

Every model server here is the real `serve` command in its own process on
127.0.0.1. The loop runs once on a scratch sqlite store and once on a real
`mlflow server` (sqlite backend in a temporary folder) through MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pandas as pd
import pytest
from registry_helpers import Project, serve

from {{ cookiecutter.package_name }}.config.serving import TRUSTED_TOKEN_ENV
from {{ cookiecutter.package_name }}.deploy.registry import CHALLENGER, CHAMPION
from {{ cookiecutter.package_name }}.deploy.servers import request

pytestmark = pytest.mark.registry

# A server polls the alias every serving.reload_seconds (1 s in these projects), then downloads and
# loads the new version; the swap must be done within this many seconds after that.
LOAD_WITHIN = 20.0
TRUSTED_TOKEN = "trusted-traffic-t0ken"  # the token of the clients whose requests the canary may replay


@pytest.fixture(params=["sqlite", "team-server"])
def project(request, new_project) -> Project:
    if request.param == "sqlite":
        return new_project()
    return new_project(request.getfixturevalue("tracking_server"))


def client_rows(model, test_set: pd.DataFrame, count: int) -> list[dict]:
    return json.loads(test_set[list(model.feature_names_in_)].head(count).to_json(orient="records"))


def register(project: Project) -> str:
    code, _, err = project.cli("register")
    assert code == 0, err
    return str(project.alias(CHALLENGER))


def canary(project: Project) -> tuple[int, str, dict]:
    """`canary --promote`, as the deploy workflow runs it: exit code, output, the JSON verdict."""
    report = project.root / "canary.json"
    report.unlink(missing_ok=True)
    code, out, err = project.cli("canary", "--promote", "--output", str(report))
    assert code in (0, 1), f"the canary could not run:\n{err}"
    return code, out, json.loads(report.read_text())


def post_trusted(url: str, body: object) -> int:
    """POST as the trusted traffic source (with its bearer token): the status."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TRUSTED_TOKEN}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def answered_by(url: str, row: dict) -> str:
    status, body = request(url, "POST", "/predict", row)
    assert status == 200, body
    return str(body["model_version"])  # type: ignore[index]


def until_served(url: str, row: dict, version: str, within: float) -> float:
    """Seconds until /predict answers with `version` (polled every 50 ms); fails after `within`."""
    started = time.monotonic()
    while (seen := answered_by(url, row)) != version:
        if time.monotonic() - started > within:
            pytest.fail(f"still served by version {seen}, not {version}, after {within:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def check(report: dict, name: str) -> dict:
    return next(item for item in report["checks"] if item["name"] == name)


def test_canary_promote_and_rollback_with_a_running_server(
    project, model, retrained_model, shuffled_model, train_set, test_set, monkeypatch
):
    monkeypatch.setenv(TRUSTED_TOKEN_ENV, TRUSTED_TOKEN)  # the server's environment
    settings = project.settings
    reload_seconds = settings.serving.reload_seconds
    bound = reload_seconds + LOAD_WITHIN
    row = client_rows(model, test_set, 1)[0]

    # First deploy: no champion, judged on errors and latency only, then promoted.
    project.train(model, train_set)
    first = register(project)
    code, out, report = canary(project)
    assert code == 0, out
    assert "first deploy" in out and report["champion"] is None and report["first_deploy"]
    assert report["rows_from"] == "data/prepared/test.csv"
    assert project.alias(CHAMPION) == first

    server = serve(project)  # no --model: models:/<name>@champion, followed as the alias moves
    try:
        assert answered_by(server.url, row) == first
        # The trusted clients' traffic fills the prediction log, which the next canaries replay;
        # anonymous requests after it are logged too, but never replayed.
        traffic = {"rows": client_rows(model, test_set, settings.canary.sample_size)}
        assert post_trusted(f"{server.url}/predict", traffic) == 200
        assert request(server.url, "POST", "/predict", traffic)[0] == 200

        # A challenger trained on shuffled labels disagrees: refused, and champion does not move.
        project.train(shuffled_model, train_set)
        bad = register(project)
        code, out, report = canary(project)
        assert code == 1, out
        assert "refused" in out
        assert report["rows_from"] == "logs/predictions"
        assert not check(report, "agreement")["passed"]
        assert project.alias(CHAMPION) == first
        time.sleep(reload_seconds * 2)
        assert answered_by(server.url, row) == first

        # A sound retrain agrees: promoted, and the running server picks it up.
        project.train(retrained_model, train_set, fit_seconds=10.0)
        good = register(project)
        code, out, report = canary(project)
        assert code == 0, out
        assert check(report, "agreement")["value"] >= settings.canary.min_agreement
        # Its costs, measured beside the champion's: two servers of one size, one fit time unknown.
        assert 50 < report["figures"]["peak_rss_mb"] < 2000 and report["champion_figures"]["p50_ms"] > 0
        assert 0.5 < check(report, "memory")["value"] < 1.5 and check(report, "train_time")["value"] is None
        assert project.alias(CHAMPION) == good
        promoted_in = until_served(server.url, row, good, bound)

        # The bad version is promoted anyway (by hand, which takes a reason: the canary refused
        # it); rollback restores the good one, one call.
        code, _, err = project.cli("promote", "--version", bad)
        assert code == 1 and "the canary refused it" in err, err
        assert project.cli("promote", "--version", bad, "--force", "to show the rollback")[0] == 0
        until_served(server.url, row, bad, bound)
        code, out, _ = project.cli("rollback")
        assert code == 0 and project.alias(CHAMPION) == good
        rolled_back_in = until_served(server.url, row, good, bound)
        print(
            f"\n[{project.uri.split(':')[0]}] served the new champion {promoted_in:.2f} s after promote, "
            f"the previous one {rolled_back_in:.2f} s after rollback (reload_seconds={reload_seconds:g})"
        )
    finally:
        server.stop()

    code, out, _ = project.cli("status")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line[:1].isdigit()}
    assert set(rows) == {first, bad, good}
    assert "champion" in rows[good] and "challenger" in rows[good]
    assert "champion" not in rows[first] + rows[bad]
    assert out.splitlines()[-1].endswith(f"{first} -> {good} -> {bad} -> {good}")

    # The same model again, but its fit took eight times the champion's: refused on train_time
    # alone, and its figures are on the version for the next comparison.
    project.train(retrained_model, train_set, fit_seconds=80.0)
    slow = register(project)
    code, out, report = canary(project)
    assert code == 1 and [c["name"] for c in report["checks"] if not c["passed"]] == ["train_time"], out
    assert check(report, "train_time")["value"] == 8.0
    tags = project.version_tags(slow)
    assert tags["canary"] == "refused" and float(tags["canary_peak_rss_mb"]) > 50, tags


def test_rollback_with_reload_is_served_when_the_command_returns(
    new_project, model, shuffled_model, train_set, test_set
):
    """`rollback --reload URL`: the server swaps before the command returns (its polling is off here)."""
    project = new_project(reload_seconds=0)
    row = client_rows(model, test_set, 1)[0]
    project.train(model, train_set)
    good = register(project)
    project.canaried(good)
    assert project.cli("promote")[0] == 0
    project.train(shuffled_model, train_set)
    bad = register(project)
    assert project.cli("promote", "--force", "a champion to roll back from")[0] == 0
    server = serve(project)
    try:
        assert answered_by(server.url, row) == bad
        code, out, err = project.cli("rollback")  # without --reload, and no polling: nothing changes
        assert code == 0, err
        time.sleep(1)
        assert answered_by(server.url, row) == bad
        assert project.cli("promote", "--version", bad, "--force", "again, to roll back from")[0] == 0

        started = time.monotonic()
        code, out, err = project.cli("rollback", "--reload", server.url)
        took = time.monotonic() - started
        assert code == 0, err
        assert f"serves model {good}" in out
        assert answered_by(server.url, row) == good  # the first request after the command
        print(f"\nrollback --reload: {took:.2f} s from command start to the previous version serving")

        code, _, err = project.cli(
            "promote", "--version", bad, "--force", "once more", "--reload", "http://127.0.0.1:9"
        )
        assert code == 1 and "did not reload" in err  # a server that cannot be told is an error
    finally:
        server.stop()


def shadowed_rows(project: Project, version: str) -> int:
    from {{ cookiecutter.package_name }}.served_log import newest_records

    logged = newest_records(project.paths.root / project.settings.serving.log.uri)
    return sum(len(r["inputs"]) for r in logged if r.get("shadow") and r["model_version"] == version)


def until_shadowed(project: Project, version: str, rows: int, within: float = 20.0) -> None:
    """Wait until the log holds `rows` rows that `version` scored in shadow (written in the background)."""
    deadline = time.monotonic() + within
    while shadowed_rows(project, version) < rows:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{shadowed_rows(project, version)} rows of version {version} in shadow after {within:g} s"
            )
        time.sleep(0.1)


def test_a_challenger_in_shadow_is_judged_on_live_traffic(
    new_project, model, retrained_model, shuffled_model, train_set, test_set, monkeypatch
):
    """serving.shadow: challenger on a real server; `canary --from-log` refuses a degraded challenger
    on the requests it scored in shadow, then passes (and promotes) a sound one the server picked up."""
    monkeypatch.setenv(TRUSTED_TOKEN_ENV, TRUSTED_TOKEN)
    project = new_project()
    params = project.paths.params
    params.write_text(params.read_text().replace("  shadow: ''", "  shadow: challenger"))
    assert project.settings.serving.shadow == CHALLENGER
    size = project.settings.canary.sample_size
    project.train(model, train_set)
    first = register(project)
    project.canaried(first)
    assert project.cli("promote")[0] == 0
    project.train(shuffled_model, train_set)
    bad = register(project)

    code, _, err = project.cli("canary", "--from-log")
    assert code == 2 and err.startswith(f"error: 0 trusted rows scored by version {bad} in shadow"), err

    traffic = {"rows": client_rows(model, test_set, size)}
    server = serve(project)
    try:
        assert post_trusted(f"{server.url}/predict", traffic) == 200
        until_shadowed(project, bad, size)
        code, out, report = canary_from_log(project)
        assert code == 1 and not check(report, "agreement")["passed"], out
        assert report["champion"] == first and project.alias(CHAMPION) == first

        project.train(retrained_model, train_set)
        good = register(project)
        until_challenger(server.url, good, LOAD_WITHIN + 1)
        assert post_trusted(f"{server.url}/predict", traffic) == 200
        until_shadowed(project, good, size)
        code, out, report = canary_from_log(project)
        assert code == 0 and check(report, "agreement")["passed"], out
        assert report["rows_from"] == "the shadow log in logs/predictions"
        # Request times off the request path are not a served request's: not compared.
        assert check(report, "slowdown")["value"] is None and check(report, "memory")["value"] is None
        assert project.alias(CHAMPION) == good
    finally:
        server.stop()


def canary_from_log(project: Project) -> tuple[int, str, dict]:
    report = project.root / "canary.json"
    report.unlink(missing_ok=True)
    code, out, err = project.cli("canary", "--from-log", "--promote", "--output", str(report))
    assert code in (0, 1), f"the canary could not run:\n{err}"
    return code, out, json.loads(report.read_text())


def until_challenger(url: str, version: str, within: float) -> None:
    deadline = time.monotonic() + within
    while (seen := request(url, "GET", "/version")[1].get("challenger_version")) != version:  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            pytest.fail(f"the server's challenger is {seen}, not {version}, after {within:g} s")
        time.sleep(0.1)
