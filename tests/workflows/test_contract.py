"""The contract between the reusable workflows and the projects that call them: each workflow
declares what it runs of the project (tests/workflows/contract.py), the declaration is exactly
what its steps run, and a project baked from the same commit provides all of it, the test tiers
its own ci.yml asks for included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from act_helpers import WORKFLOWS
from conftest import bake
from contract import (
    Contract,
    called_targets,
    contract_problems,
    declared,
    makefile_targets,
    params_keys,
    project_gaps,
    reusable_workflows,
)

REUSABLE = reusable_workflows()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("contract"), init_git="no")


@pytest.mark.parametrize("workflow", REUSABLE, ids=lambda path: path.stem)
def test_each_workflow_declares_exactly_the_targets_its_steps_run(workflow: Path):
    text = workflow.read_text()
    contract = declared(text)
    assert contract.targets, f"{workflow.name} declares no `#   make:` line"
    assert set(contract.targets) == called_targets(text)


def test_a_project_baked_from_the_same_commit_provides_every_contract(project: Path):
    assert project_gaps(project) == []
    targets = makefile_targets(project)
    caller = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    tiers = set(json.loads(caller["jobs"]["test"]["with"]["make-targets"]))
    assert tiers and tiers <= targets, tiers - targets


def test_a_project_without_a_target_or_a_key_is_found(project: Path):
    """The fault the check exists for: a Makefile missing a target a workflow runs, and a
    params.yaml missing a key a workflow needs (an older project before its update)."""
    makefile = project / "Makefile"
    original = makefile.read_text()
    try:
        makefile.write_text(original.replace("\nfetch-log:", "\nfetch-log-renamed:"))
        targets = makefile_targets(project)
    finally:
        makefile.write_text(original)
    keys = params_keys(yaml.safe_load((project / "params.yaml").read_text())) - {"monitor.retrain"}
    monitor = declared((WORKFLOWS / "monitor.yml").read_text())
    assert contract_problems("monitor.yml", monitor, targets, keys) == [
        "monitor.yml runs `make fetch-log`, which the Makefile lacks",
        "monitor.yml needs params.yaml's monitor.retrain, which is missing",
    ]


def test_a_step_that_runs_an_undeclared_target_is_found():
    text = (WORKFLOWS / "rollback.yml").read_text()
    assert declared(text) == Contract(
        frozenset({"install", "rollback", "status"}), frozenset({"mlflow.registered_model"})
    )
    spoilt = text.replace("run: make status", "run: make status-all")
    assert called_targets(spoilt) != set(declared(spoilt).targets)
