"""A team's setup end to end, run for real: a project baked with dvc_remote=s3, its DVC remote
on an S3-compatible server (moto's) and its registry on a team tracking server (PostgreSQL,
artifacts proxied to another bucket of the same S3 server), everything on 127.0.0.1. The baked
ci.yml's report job with mlgate's pr-report.yml, and the baked deploy.yml with mlgate's
deploy.yml, run under act; the keys reach the workflows only as secrets passed by name.

Once per module the project is baked, installed and reproduced; main's outputs and run-cache are
pushed to S3, and so is the run of one more model, trained as a developer's `make repro` and
`make push` would leave it (tests/workflows/act_helpers.py, `s3_origin`). Each pull-request
scenario checks which stages ran and which were restored; the merge deploys through the team
server.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from act_helpers import (
    IMPROVED,
    RETUNED,
    S3_BUCKET,
    S3_SECRETS,
    STAGES,
    Outcome,
    aliases,
    ci_caller,
    deploy,
    edit_readme,
    make_bucket,
    open_pull_request,
    run_act,
    s3_bake,
    s3_environment,
    s3_origin,
    set_model,
    stored_models,
    team_server,
)

# One worker runs the whole module (`--dist loadgroup`): one bake, one set of servers. The fixtures
# are session-wide: the worker may run another module between two of these tests, which would
# finalize module fixtures and build them again.
pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("act-pr-gate-s3")]

UPSTREAM = ("ingest", "validate", "split")  # stages no train.model change reaches
MAKE_ERROR = re.compile(r"make(\[\d+\])?: \*\*\* ")  # make's own line; `make[1]` under `make test`


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    return s3_bake(tmp_path_factory.mktemp("s3-bake"))


@pytest.fixture(scope="session")
def team(project: Path, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The team tracking server; its S3 server also holds the DVC remote's bucket."""
    with team_server(project, tmp_path_factory.mktemp("team-server")) as addresses:
        make_bucket(addresses["s3_endpoint"], S3_BUCKET)
        yield addresses


@pytest.fixture(scope="session")
def endpoint(team: dict[str, str]) -> str:
    return team["s3_endpoint"]


@pytest.fixture(scope="session")
def origin(project: Path, endpoint: str) -> Path:
    return s3_origin(project, endpoint, also_cached=(IMPROVED,))


def report(origin: Path, where: Path, change, secrets: dict[str, str]) -> Outcome:
    clone, event = open_pull_request(origin, where, change)
    workflow = ci_caller(clone, where / "caller.yml", jobs=("report",))
    return run_act(clone, event, workflow, where / "record", secrets=secrets)


def test_a_docs_only_pr_restores_every_stage_from_s3(origin, endpoint, tmp_path):
    outcome = report(origin, tmp_path, edit_readme, {**S3_SECRETS, "AWS_ENDPOINT_URL": endpoint})
    assert outcome.returncode == 0, outcome.tail()
    assert "Running stage" not in outcome.output, outcome.tail()
    assert all(f"Stage '{stage}' didn't change, skipping" in outcome.output for stage in STAGES)
    assert outcome.comment and "No changes to the model" in outcome.comment


def test_a_params_change_already_run_elsewhere_is_not_trained_again(origin, endpoint, tmp_path):
    """IMPROVED was trained and pushed with its run-cache, its results never committed: the
    pull request that sets it restores the trained model from the run-cache (`make repro`
    pulls it) instead of fitting it, and the gate judges it. The stages whose outputs are all
    git-kept (`cache: false`: tune, evaluate, backtest) get no run-cache entry from DVC, and
    run; the stages upstream of train.model are skipped."""
    outcome = report(origin, tmp_path, set_model(IMPROVED), {**S3_SECRETS, "AWS_ENDPOINT_URL": endpoint})
    assert outcome.returncode == 0, outcome.tail()
    assert "Stage 'train' is cached - skipping run, checking out outputs" in outcome.output, outcome.tail()
    assert "Running stage 'train'" not in outcome.output
    assert not any(f"Running stage '{stage}'" in outcome.output for stage in UPSTREAM)
    assert outcome.comment and "✅ Model gate passed" in outcome.comment, outcome.comment


def test_a_new_params_change_reruns_only_what_it_reaches(origin, endpoint, tmp_path):
    outcome = report(origin, tmp_path, set_model(RETUNED), {**S3_SECRETS, "AWS_ENDPOINT_URL": endpoint})
    assert outcome.returncode == 0, outcome.tail()
    assert "Running stage 'train'" in outcome.output, outcome.tail()
    assert not any(f"Running stage '{stage}'" in outcome.output for stage in UPSTREAM), outcome.tail()
    assert all(f"Stage '{stage}' didn't change, skipping" in outcome.output for stage in UPSTREAM)
    assert outcome.comment is not None


def test_without_the_keys_the_pull_fails_and_the_gate_judges_nothing(origin, endpoint, tmp_path):
    """No keys (a fork's pull request gets no secrets): the pull fails, so nothing is reproduced
    from missing inputs and the run fails."""
    outcome = report(origin, tmp_path, edit_readme, {"AWS_ENDPOINT_URL": endpoint})
    assert outcome.returncode != 0, outcome.tail()
    assert "Unable to locate credentials" in outcome.output, outcome.tail()
    assert "pull: the DVC remote failed (above)" in outcome.output, "the settings behind it are named"
    assert "Running stage" not in outcome.output and "didn't change, skipping" not in outcome.output


def test_the_merged_model_deploys_through_the_team_server(origin, team, project, tmp_path):
    """The merge of the pull request that set IMPROVED: the deploy restores the model the gate
    judged from the run-cache (not refit), registers it on the team server (its file in the
    team's bucket), passes the canary as the first deploy and promotes it."""
    merged = tmp_path / "origin.git"  # a copy: the push to main leaves the module's origin alone
    shutil.copytree(origin, merged)
    models_before = stored_models(team)
    secrets = {"MLFLOW_TRACKING_URI": team["url"], **S3_SECRETS, "AWS_ENDPOINT_URL": team["s3_endpoint"]}
    outcome = deploy(merged, tmp_path / "push", set_model(IMPROVED), jobs=("deploy",), secrets=secrets)
    assert outcome.returncode == 0, outcome.tail()
    assert "Stage 'train' is cached - skipping run, checking out outputs" in outcome.output, outcome.tail()
    assert "Running stage 'train'" not in outcome.output
    assert "canary: pass (first deploy" in outcome.output, outcome.tail()
    assert "promote: ml-project version 1 is the champion (the first)" in outcome.output, outcome.tail()
    assert aliases(project, team["url"]) == {"challenger": "1", "champion": "1"}
    assert len(stored_models(team)) == len(models_before) + 1, stored_models(team)


def test_an_endpoint_that_does_not_answer_fails_pull_and_push_naming_the_settings(project, origin):
    """DVC's own error names the URL it tried; `make pull` and `make push` add the line naming
    the settings behind it, and fail. (`origin`: the project is reproduced, so push has outputs
    to look up at the remote.)"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # One attempt per request (botocore's setting): DVC's default retries add seconds, not meaning.
    environment = s3_environment(closed) | {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    for target in ("pull", "push"):
        result = subprocess.run(
            ["make", "-s", target], cwd=project, env=environment, capture_output=True, text=True
        )
        said = [line for line in result.stderr.splitlines() if not MAKE_ERROR.match(line)]
        assert result.returncode != 0 and said, result.stdout + result.stderr
        assert f'Could not connect to the endpoint URL: "{closed}/' in result.stderr, result.stderr
        assert said[-1].startswith(f"{target}: the DVC remote failed (above)"), result.stderr
        assert "AWS_ENDPOINT_URL" in said[-1] and "dvc remote list" in said[-1], said[-1]
