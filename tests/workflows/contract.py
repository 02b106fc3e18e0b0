"""The contract between mlgate's reusable workflows and the projects that call them: each workflow
declares, in its header, the make targets and params.yaml keys it needs of the project. A helper
module: no tests here.

    #   make: install pull repro report
    #   params: gate
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from act_helpers import WORKFLOWS

DECLARED = re.compile(r"^#   (make|params): (.*)$", re.MULTILINE)
MAKE_CALL = re.compile(r"^\s*make ([a-z][a-z0-9-]*)", re.MULTILINE)  # a line that runs make
TARGET = re.compile(r"^([a-zA-Z][\w-]*):", re.MULTILINE)


@dataclass(frozen=True)
class Contract:
    targets: frozenset[str]
    params: frozenset[str]  # dotted keys of params.yaml


def declared(workflow_text: str) -> Contract:
    """The contract a workflow's header declares ("(none)" for nothing)."""
    found = {kind: set(value.split()) - {"(none)"} for kind, value in DECLARED.findall(workflow_text)}
    return Contract(frozenset(found.get("make", ())), frozenset(found.get("params", ())))


def called_targets(workflow_text: str) -> set[str]:
    """The make targets a workflow's steps run: each `make <target>` line, and the default of a
    `make-targets` input (a JSON list) whose entries a step runs as `make "$TARGET"`."""
    workflow = yaml.safe_load(workflow_text)
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", [])]
    targets = {target for text in runs for target in MAKE_CALL.findall(text)}
    inputs = (workflow.get(True) or workflow.get("on") or {}).get("workflow_call", {}).get("inputs") or {}
    if "make-targets" in inputs:
        targets |= set(json.loads(inputs["make-targets"]["default"]))
    return targets


def makefile_targets(project: Path) -> set[str]:
    """The targets the project's Makefile defines, as make itself reads them (its database, nothing
    run): a rule with a recipe or prerequisites; a name only listed in .PHONY is none."""
    database = subprocess.run(["make", "-qp"], cwd=project, capture_output=True, text=True, timeout=60).stdout
    targets = set()
    for entry in database.split("\n\n"):
        rule = TARGET.match(entry)
        if rule and ("#  recipe to execute" in entry or entry.split("\n", 1)[0].split(":", 1)[1].strip()):
            targets.add(rule.group(1))
    return targets


def params_keys(params: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a params.yaml mapping (sections and their entries, at any depth)."""
    keys = set()
    for name, value in params.items():
        keys.add(prefix + str(name))
        if isinstance(value, dict):
            keys |= params_keys(value, f"{prefix}{name}.")
    return keys


def contract_problems(name: str, contract: Contract, targets: set[str], keys: set[str]) -> list[str]:
    """What a project lacks of a workflow's contract, one line each."""
    missing_targets = sorted(contract.targets - targets)
    missing_keys = sorted(contract.params - keys)
    problems = [f"{name} runs `make {target}`, which the Makefile lacks" for target in missing_targets]
    problems += [f"{name} needs params.yaml's {key}, which is missing" for key in missing_keys]
    return problems


def reusable_workflows() -> list[Path]:
    """The workflows a baked project calls (ci.yml is mlgate's own CI)."""
    return sorted(path for path in WORKFLOWS.glob("*.yml") if path.name != "ci.yml")


def project_gaps(project: Path) -> list[str]:
    """What the project lacks of every reusable workflow's contract."""
    targets = makefile_targets(project)
    keys = params_keys(yaml.safe_load((project / "params.yaml").read_text()))
    return [
        problem
        for workflow in reusable_workflows()
        for problem in contract_problems(workflow.name, declared(workflow.read_text()), targets, keys)
    ]
