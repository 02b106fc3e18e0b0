"""Deploy and rollback, run for real: the baked project's deploy.yml and mlgate's reusable
deploy.yml and rollback.yml under act (host mode, offline), against a team's real `mlflow server`
on 127.0.0.1 (its store on PostgreSQL, its artifacts in an S3 bucket behind it) given to the
workflows as the MLFLOW_TRACKING_URI secret.

One project is baked, installed, reproduced and pushed to a bare `origin` once per module
(shared with the pull-request scenarios' helpers); each scenario clones it, commits on main,
writes the push (or workflow_dispatch) event and runs act.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from act_helpers import (
    IMPROVED,
    REPOSITORY,
    RETUNED,
    aliases,
    deploy,
    deploy_caller,
    prepare_origins,
    reference_project,
    run_act,
    set_model,
    stored_models,
    team_server,
    write_event,
)
from conftest import run, subprocess_env

# One worker runs the whole module (`--dist loadgroup`): one bake, one team server.
pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("act-deploy")]


@pytest.fixture(scope="module")
def origins(tmp_path_factory):
    return prepare_origins(tmp_path_factory.mktemp("deploy-origins"), reference_project(tmp_path_factory))


@pytest.fixture(scope="module")
def team(origins, tmp_path_factory) -> Iterator[dict[str, str]]:
    """A team's tracking server (PostgreSQL, artifacts in S3): its url, s3_endpoint and bucket."""
    with team_server(origins.project, tmp_path_factory.mktemp("team-server")) as addresses:
        yield addresses


@pytest.fixture(scope="module")
def tracking_server(team) -> str:
    return team["url"]


def cli(project: Path, uri: str, *args: str) -> str:
    """`<package> <args>` in the host project, against the tracking server."""
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(
        ["uv", "run", "ml_project", *args], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def dispatch(origin: Path, where: Path, inputs: dict[str, str]) -> tuple[Path, Path]:
    """Clone the origin and write a workflow_dispatch event with `inputs`."""
    where.mkdir(parents=True, exist_ok=True)
    clone = where / "dispatch"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=where)
    event = {"ref": "refs/heads/main", "inputs": inputs, "repository": {"full_name": REPOSITORY}}
    return clone, write_event(where, event)


def no_change(clone: Path) -> None:
    with (clone / "README.md").open("a") as handle:
        handle.write("\nDeployed by the workflow.\n")


# Scenarios --------------------------------------------------------------------------


def test_push_promotes_through_the_canary_and_rollback_restores(origins, team, tmp_path):
    """The whole baked deploy.yml on a push (tests, gate, register, canary, promote), then rollback."""
    project, uri = origins.project, team["url"]
    cli(project, uri, "register")
    cli(project, uri, "promote", "--force", "the champion the deploy replaces")
    old = aliases(project, uri)["champion"]
    new = str(int(old) + 1)
    models_before = stored_models(team)

    outcome = deploy(
        origins.with_metrics,
        tmp_path / "push",
        set_model(RETUNED),
        jobs=("test", "deploy"),
        secrets={"MLFLOW_TRACKING_URI": uri},
        **{"pytest-markers": "unit"},
    )
    assert outcome.returncode == 0, outcome.tail()
    assert f"canary: challenger version {new} against champion version {old}" in outcome.output, (
        outcome.tail()
    )
    assert f"canary: pass: version {new} may be promoted" in outcome.output
    assert f"promote: ml-project version {new} is the champion (was {old})" in outcome.output
    assert aliases(project, uri) == {"challenger": new, "champion": new}
    # The version's model card in each job's summary: after the canary, and after the promotion.
    card = f"Summary - <!-- mlgate model card -->\n# Model card: ml\\-project version {new}\n"
    assert outcome.output.count(card) == 2, outcome.tail()
    assert f"\n- Canary: **passed** against version {old}\n" in outcome.summary
    verdict = json.loads((outcome.record / "artifacts" / "canary" / "canary.json").read_text())
    assert (verdict["challenger"], verdict["champion"], verdict["passed"]) == (new, old, True)
    # The job's train stage logged the new model through the server into the team's bucket.
    models_after = stored_models(team)
    assert len(models_after) == len(models_before) + 1, models_after

    clone, event = dispatch(
        origins.with_metrics, tmp_path / "rollback", {"action": "rollback", "version": "previous"}
    )
    workflow = deploy_caller(clone, tmp_path / "rollback" / "caller.yml", jobs=("rollback",))
    rolled = run_act(
        clone,
        event,
        workflow,
        tmp_path / "rollback" / "record",
        event_name="workflow_dispatch",
        secrets={"MLFLOW_TRACKING_URI": uri},
    )
    assert rolled.returncode == 0, rolled.tail()
    assert f"rollback: ml-project version {old} is the champion again (was {new})" in rolled.output, (
        rolled.tail()
    )
    assert aliases(project, uri)["champion"] == old


def test_refused_canary_fails_the_deploy_and_leaves_the_champion(origins, tracking_server, tmp_path):
    """A challenger that disagrees with the champion beyond canary.min_agreement is not promoted."""
    project, uri = origins.project, tracking_server
    before = aliases(project, uri)
    if "champion" not in before:
        cli(project, uri, "register")
        cli(project, uri, "promote", "--force", "the champion the deploy keeps")
        before = aliases(project, uri)

    def strict_canary(clone: Path) -> None:
        # Any other model disagrees on some rows once nothing is tolerated.
        set_model(IMPROVED)(clone)
        params = clone / "params.yaml"
        text = params.read_text()
        text = text.replace("  min_agreement: 0.85", "  min_agreement: 1.0")
        text = text.replace("  tolerance: 0.1 ", "  tolerance: 0.0 ")
        params.write_text(text)

    outcome = deploy(
        origins.with_metrics,
        tmp_path / "push",
        strict_canary,
        jobs=("deploy",),
        secrets={"MLFLOW_TRACKING_URI": uri},
    )
    assert outcome.returncode != 0, outcome.tail()
    assert "canary: refused" in outcome.output and "fails agreement" in outcome.output, outcome.tail()
    assert "Promote the challenger" not in outcome.output, "promotion must not start"
    after = aliases(project, uri)
    assert after["champion"] == before["champion"], "the champion may not move"
    assert int(after["challenger"]) > int(before.get("challenger", 0)), "the refused version was registered"


def test_push_without_a_tracking_server_stops_before_promotion(origins, tracking_server, tmp_path):
    project, uri = origins.project, tracking_server
    before = aliases(project, uri)
    outcome = deploy(origins.with_metrics, tmp_path / "push", no_change, jobs=("deploy",), secrets={})
    assert outcome.returncode == 0, outcome.tail()
    assert "The secret MLFLOW_TRACKING_URI is not set" in outcome.output
    assert "canary: pass (first deploy" in outcome.output, "the canary runs on a throwaway registry"
    assert "Promote the challenger" not in outcome.output
    assert aliases(project, uri) == before, "the shared registry is untouched"


def test_rollback_without_a_tracking_server_is_a_clear_error_on_the_runner_asked_for(origins, tmp_path):
    """Also the `runs-on` input: a JSON list of labels picks the runner (here, one act maps to this
    machine); with no runner of those labels the job never runs."""
    clone, event = dispatch(origins.with_metrics, tmp_path, {"action": "rollback", "version": "previous"})
    workflow = deploy_caller(clone, tmp_path / "caller.yml", jobs=("rollback",))
    caller = yaml.safe_load(workflow.read_text())
    caller["jobs"]["rollback"]["with"] |= {"runs-on": '["self-hosted", "mlgate-large"]', "timeout-minutes": 5}
    workflow.write_text(yaml.safe_dump(caller, sort_keys=False))
    outcome = run_act(
        clone, event, workflow, tmp_path / "record", event_name="workflow_dispatch", runners=("self-hosted",)
    )
    assert outcome.returncode != 0
    # The summary file is read by act after the step; a step's own output can be cut when it exits at once.
    assert "there is no shared registry to roll back" in outcome.summary, outcome.tail()
    assert "make rollback" not in outcome.output
    elsewhere = run_act(clone, event, workflow, tmp_path / "elsewhere", event_name="workflow_dispatch")
    assert "there is no shared registry" not in elsewhere.output + elsewhere.summary, elsewhere.tail()


def test_a_rollback_version_never_reaches_a_shell(origins, tracking_server, tmp_path):
    """The dispatch input `version` is free text: it reaches the command as one argument,
    which refuses anything but a number or "previous", in the job that holds the secrets."""
    marker = tmp_path / "pwned"
    project, uri = origins.project, tracking_server
    before = aliases(project, uri)
    payload = f"1; touch {marker}; echo $(touch {marker}) `touch {marker}`"
    clone, event = dispatch(
        origins.with_metrics, tmp_path / "run", {"action": "rollback", "version": payload}
    )
    workflow = deploy_caller(clone, tmp_path / "run" / "caller.yml", jobs=("rollback",))
    outcome = run_act(
        clone,
        event,
        workflow,
        tmp_path / "run" / "record",
        event_name="workflow_dispatch",
        secrets={"MLFLOW_TRACKING_URI": uri},
    )
    assert not marker.exists(), "the version ran as shell"
    assert outcome.returncode != 0, outcome.tail()
    assert "error: --version '1; touch" in outcome.output and "is not a version" in outcome.output
    assert aliases(project, uri) == before, "nothing changed in the registry"
