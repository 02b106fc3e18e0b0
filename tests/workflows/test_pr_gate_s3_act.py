"""The pull-request gate with the DVC remote on S3, run for real: the baked ci.yml's report job
and mlgate's reusable pr-report.yml under act, against an S3-compatible server (moto's) on
127.0.0.1 whose keys reach the workflow only as secrets passed by name.

The reference project is moved to the S3 remote once per module (tests/workflows/act_helpers.py,
`s3_origin`): main's outputs and run-cache are pushed there, and so is the run of one more
model, trained as a developer's `make repro` and `make push` would leave it. Each scenario
opens a pull request on that origin and checks which stages ran and which were restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from act_helpers import (
    IMPROVED,
    RETUNED,
    S3_SECRETS,
    STAGES,
    Outcome,
    ci_caller,
    edit_readme,
    open_pull_request,
    reference_project,
    run_act,
    s3_origin,
    s3_store,
    set_model,
)

# One worker runs the whole module (`--dist loadgroup`): one S3 server, one origin.
pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("act-pr-gate-s3")]

UPSTREAM = ("ingest", "validate", "split")  # stages no train.model change reaches


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> Iterator[str]:
    reference = reference_project(tmp_path_factory)
    with s3_store(reference.project / ".venv" / "bin" / "python", tmp_path_factory.mktemp("s3")) as address:
        yield address


@pytest.fixture(scope="module")
def origin(tmp_path_factory, endpoint: str) -> Path:
    reference = reference_project(tmp_path_factory)
    return s3_origin(reference, tmp_path_factory.mktemp("s3-origin"), endpoint, also_cached=(IMPROVED,))


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
    assert "Running stage" not in outcome.output and "didn't change, skipping" not in outcome.output
