"""Static checks of mlgate's workflows and of the baked caller: actionlint, zizmor,
the security rules, and callers' `with:` against the called workflows' inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, bake

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
FULL_SHA = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
INPUT_TYPES = {"string": (str,), "boolean": (bool,), "number": (int, float)}


@pytest.fixture(scope="module")
def baked_workflows(tmp_path_factory) -> Path:
    project = bake(tmp_path_factory.mktemp("static"), init_git="no")
    return project / ".github" / "workflows"


def all_workflows(baked: Path) -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(baked.glob("*.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def resolve_called(uses: str, caller: Path) -> Path:
    """`./.github/workflows/x.yml` or `owner/repo/.github/workflows/x.yml@ref` -> this repo's file."""
    if uses.startswith("./"):
        return caller.parents[2] / uses[2:]
    path = uses.split("@")[0].split("/", 2)[2]
    return ROOT / path


def caller_mismatches(caller: Path) -> list[str]:
    """Every `with:` key or type that the called workflow's workflow_call inputs do not accept."""
    problems = []
    for name, job in load(caller)["jobs"].items():
        if "uses" not in job:
            continue
        inputs = triggers(load(resolve_called(job["uses"], caller)))["workflow_call"].get("inputs") or {}
        given = job.get("with") or {}
        for key, value in given.items():
            if key not in inputs:
                problems.append(f"{caller.name}: job {name}: unknown input {key!r}")
            elif not isinstance(value, INPUT_TYPES[inputs[key]["type"]]) and not str(value).startswith("${{"):
                problems.append(f"{caller.name}: job {name}: input {key!r} must be {inputs[key]['type']}")
        for key, spec in inputs.items():
            if spec.get("required") and "default" not in spec and key not in given:
                problems.append(f"{caller.name}: job {name}: required input {key!r} missing")
    return problems


def test_actionlint_is_clean(baked_workflows):
    result = subprocess.run(
        [str(BIN / "actionlint"), *map(str, all_workflows(baked_workflows))], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run([str(BIN / "actionlint"), str(broken)], capture_output=True, text=True)
    assert result.returncode != 0


def test_zizmor_finds_nothing_at_medium_or_above(baked_workflows):
    for folder in (WORKFLOWS, baked_workflows):
        result = subprocess.run(
            [str(BIN / "zizmor"), "--offline", "--min-severity", "medium", "--format", "json", str(folder)],
            capture_output=True,
            text=True,
        )
        assert json.loads(result.stdout) == [], result.stdout


def test_zizmor_catches_an_injection(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--min-severity", "medium", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout) != []


def test_security_rules(baked_workflows):
    for path in all_workflows(baked_workflows):
        workflow = load(path)
        assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in triggers(workflow), path.name
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} must declare its permissions"
            assert job.get("secrets") != "inherit", f"{path.name}: job {name} inherits secrets"
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run: in job {name}"
                uses = step.get("uses", "")
                if uses and not uses.startswith("./"):
                    assert FULL_SHA.match(uses), f"{path.name}: {uses} is not pinned to a full SHA"
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (
                        f"{path.name}: checkout keeps credentials"
                    )


def test_callers_match_the_called_inputs(baked_workflows):
    assert caller_mismatches(baked_workflows / "ci.yml") == []


def test_input_check_catches_a_bad_caller(tmp_path):
    caller = tmp_path / ".github" / "workflows" / "ci.yml"
    caller.parent.mkdir(parents=True)
    caller.write_text(
        yaml.safe_dump(
            {
                "on": "pull_request",
                "jobs": {
                    "report": {
                        "uses": "OWNER/mlgate/.github/workflows/pr-report.yml@v1",
                        "with": {"comment": "yes", "base_ref": "main"},
                    }
                },
            }
        )
    )
    assert sorted(caller_mismatches(caller)) == [
        "ci.yml: job report: input 'comment' must be boolean",
        "ci.yml: job report: unknown input 'base_ref'",
    ]


def test_report_watermark_matches_the_workflow():
    template = ROOT / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}" / "report.py"
    title = re.search(r'WATERMARK_TITLE = "(.+)"', template.read_text()).group(1)
    assert load(WORKFLOWS / "pr-report.yml")["jobs"]["report"]["env"]["WATERMARK_TITLE"] == title
