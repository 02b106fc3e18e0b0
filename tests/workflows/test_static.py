"""Static checks of mlgate's workflows and of the baked caller: actionlint, zizmor, the
security rules, the stand-ins' inputs, and callers' `with:` against the called workflows'
inputs. Each checker also has a test that feeds it the fault it is there to catch."""

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
STAND_INS = ROOT / "tests" / "actions"
BIN = Path(sys.executable).parent
PINNED_LINE = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*$")
INPUT_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "boolean": bool, "number": (int, float)}


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
    if isinstance(on, dict):
        return on
    return {name: None for name in ([on] if isinstance(on, str) else on or [])}


# Callers and called workflows -----------------------------------------------------------


def resolve_called(uses: str, caller: Path) -> Path:
    """`./.github/workflows/x.yml` (the caller's repository) or
    `owner/repo/.github/workflows/x.yml@ref` (resolved to this repository's file)."""
    if uses.startswith("./"):
        return caller.parents[2] / uses[2:]
    path = uses.split("@")[0].split("/", 2)[2]
    return ROOT / path


def caller_mismatches(caller: Path) -> list[str]:
    """Every `with:` key or value type that the called workflow's workflow_call inputs do not
    accept, and every required input left out."""
    problems = []
    for name, job in load(caller)["jobs"].items():
        if "uses" not in job:
            continue
        called = resolve_called(job["uses"], caller)
        if not called.exists():
            problems.append(f"{caller.name}: job {name}: {job['uses']} not found")
            continue
        inputs = (triggers(load(called)).get("workflow_call") or {}).get("inputs") or {}
        given = job.get("with") or {}
        for key, value in given.items():
            if key not in inputs:
                problems.append(f"{caller.name}: job {name}: unknown input {key!r}")
            elif isinstance(value, str) and value.strip().startswith("${{"):
                continue  # an expression: its type is known only at run time
            elif not isinstance(value, INPUT_TYPES[inputs[key]["type"]]) or (
                inputs[key]["type"] == "number" and isinstance(value, bool)
            ):
                problems.append(f"{caller.name}: job {name}: input {key!r} must be {inputs[key]['type']}")
        for key, spec in inputs.items():
            if spec.get("required") and "default" not in spec and key not in given:
                problems.append(f"{caller.name}: job {name}: required input {key!r} missing")
        secrets = (triggers(load(called)).get("workflow_call") or {}).get("secrets") or {}
        passed = job.get("secrets") or {}
        if isinstance(passed, dict):  # `secrets: inherit` is refused by the security rules
            problems += [
                f"{caller.name}: job {name}: unknown secret {key!r}" for key in passed if key not in secrets
            ]
            for key, spec in secrets.items():
                if (spec or {}).get("required") and key not in passed:
                    problems.append(f"{caller.name}: job {name}: required secret {key!r} missing")
    return problems


def test_callers_match_the_called_inputs(baked_workflows):
    callers = [
        path
        for path in all_workflows(baked_workflows)
        if any("uses" in job for job in load(path)["jobs"].values())
    ]
    assert [path.name for path in callers] == ["ci.yml", "deploy.yml", "monitor.yml"], (
        "the baked callers are checked"
    )
    assert [problem for path in callers for problem in caller_mismatches(path)] == []


def test_input_check_catches_a_bad_caller(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "called.yml").write_text(
        "on:\n  workflow_call:\n    inputs:\n"
        "      model: {type: string, required: true}\n"
        "      runs: {type: number, default: 1}\n"
        "    secrets:\n"
        "      TOKEN: {required: true}\n"
        "      URI: {required: false}\n"
    )
    caller = workflows / "ci.yml"
    caller.write_text(
        yaml.safe_dump(
            {
                "on": "pull_request",
                "jobs": {
                    "report": {
                        "uses": "OWNER/mlgate/.github/workflows/pr-report.yml@v1",
                        "with": {"comment": "yes", "base_ref": "main", "python-version": "${{ matrix.py }}"},
                    },
                    "local": {
                        "uses": "./.github/workflows/called.yml",
                        "with": {"runs": True},
                        "secrets": {"URI": "${{ secrets.URI }}", "URL": "${{ secrets.URL }}"},
                    },
                    "gone": {"uses": "OWNER/mlgate/.github/workflows/nope.yml@v1"},
                },
            },
            sort_keys=False,
        )
    )
    assert caller_mismatches(caller) == [
        "ci.yml: job report: input 'comment' must be boolean",
        "ci.yml: job report: unknown input 'base_ref'",
        "ci.yml: job local: input 'runs' must be number",
        "ci.yml: job local: required input 'model' missing",
        "ci.yml: job local: unknown secret 'URL'",
        "ci.yml: job local: required secret 'TOKEN' missing",
        "ci.yml: job gone: OWNER/mlgate/.github/workflows/nope.yml@v1 not found",
    ]


# actionlint and zizmor ---------------------------------------------------------------


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "actionlint"), *map(str, paths)], capture_output=True, text=True)


def zizmor(path: Path) -> list[dict]:
    result = subprocess.run(
        # The auditor persona: every audit, pedantic ones included; only informational notes may stay.
        [
            str(BIN / "zizmor"),
            "--offline",
            "--persona",
            "auditor",
            "--min-severity",
            "low",
            "--format",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, *range(10, 15)), result.stderr  # 1x: findings
    return json.loads(result.stdout)


def test_actionlint_is_clean(baked_workflows):
    result = actionlint(*all_workflows(baked_workflows))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = actionlint(broken)
    assert result.returncode != 0 and "nope" in result.stdout


def test_zizmor_auditor_finds_nothing_above_informational(baked_workflows):
    assert zizmor(WORKFLOWS) == []
    assert zizmor(baked_workflows) == []  # with the baked .github/zizmor.yml policy


def test_zizmor_catches_an_injection(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    assert {finding["ident"] for finding in zizmor(bad)} >= {"template-injection"}


# The security rules of ARCHITECTURE.md ----------------------------------------------------


# `make target NAME=value`: make expands a command-line value (`$(shell ...)` runs) before the
# Makefile can take it literally; values reach make through the environment instead.
MAKE_ASSIGNMENT = re.compile(r"\bmake\b[^\n;|&]*\s[A-Za-z_][A-Za-z0-9_]*=")


# What a job that can write may write. Such a job runs none of the project's code (no make, uv,
# Python or DVC): what it checks out is only applied, committed or pushed.
WRITABLE = {"pull-requests", "issues", "contents"}
PROJECT_CODE = re.compile(r"(^|[\s;&|(])(make|uv|uvx|python3?|pip|dvc|pytest)(\s|$)", re.MULTILINE)


def runs_project_code(step: dict) -> bool:
    return bool(PROJECT_CODE.search(step.get("run", "")))


def security_problems(path: Path) -> list[str]:
    """Breaches of the workflow security rules in one workflow file."""
    workflow, name, problems = load(path), path.name, []
    if workflow.get("permissions") != {}:
        problems.append(f"{name}: top-level permissions must be {{}}")
    if "pull_request_target" in triggers(workflow):
        problems.append(f"{name}: pull_request_target")
    for line in path.read_text().splitlines():
        if re.match(r"^\s*(- )?uses: (?!\./)", line) and not line.strip().startswith("uses: " + "{{"):
            is_workflow = ".github/workflows/" in line
            if not is_workflow and not PINNED_LINE.match(line):
                problems.append(f"{name}: not pinned as `owner/repo@<full sha> # vX.Y.Z`: {line.strip()}")
    for job_name, job in workflow["jobs"].items():
        where = f"{name}: job {job_name}"
        if any("secrets." in str(value) for value in (job.get("env") or {}).values()):
            problems.append(f"{where}: secrets in the job's env (give them to the steps that use them)")
        permissions = job.get("permissions")
        if permissions is None:
            problems.append(f"{where}: no permissions of its own")
        if job.get("secrets") == "inherit":
            problems.append(f"{where}: secrets: inherit")
        written = {scope for scope, level in (permissions or {}).items() if level == "write"}
        writes = permissions == "write-all" or bool(written)
        if permissions == "write-all" or (written - WRITABLE and "uses" not in job):
            problems.append(f"{where}: writes more than pull requests, issues and contents")
        if writes and "uses" not in job and any(runs_project_code(step) for step in job.get("steps", [])):
            problems.append(f"{where}: runs the project's code with a token that can write")
        for step in job.get("steps", []):
            uses = step.get("uses", "")
            if "${{" in step.get("run", ""):
                problems.append(f"{where}: expression inside run:")
            if MAKE_ASSIGNMENT.search(step.get("run", "")):
                problems.append(f"{where}: a value on make's command line (make expands it: use env:)")
            keeps = (step.get("with") or {}).get("persist-credentials") is not False
            if uses.startswith("actions/checkout@") and keeps:
                problems.append(f"{where}: checkout keeps the credentials")
    return problems


def test_security_rules(baked_workflows):
    assert [problem for path in all_workflows(baked_workflows) for problem in security_problems(path)] == []


def test_only_the_comment_issue_and_pull_request_jobs_may_write():
    """The report's comment and the score's update of it, the monitor's issue and its retraining
    pull request; none of them runs a project's code."""
    writers = {
        (path.name, job_name)
        for path in WORKFLOWS.glob("*.yml")
        for job_name, job in load(path)["jobs"].items()
        if "write" in (job.get("permissions") or {}).values()
    }
    assert writers == {
        ("pr-report.yml", "comment"),
        ("test-score.yml", "comment"),
        ("monitor.yml", "issue"),
        ("monitor.yml", "pull-request"),
    }
    for name, job in writers:
        steps = load(WORKFLOWS / name)["jobs"][job]["steps"]
        assert not any(runs_project_code(step) for step in steps), (name, job)
        checkouts = [step for step in steps if "checkout" in step.get("uses", "")]
        assert (name, len(checkouts)) in {(name, 0), ("monitor.yml", 1)}, (
            "only the retraining branch is checked out"
        )


def test_security_check_catches_each_breach(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        """on: [pull_request_target]
jobs:
  a:
    runs-on: ubuntu-latest
    secrets: inherit
    env:
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - uses: actions/checkout@v7
      - run: echo ${{ github.head_ref }}
      - run: make rollback VERSION="$VERSION"
  b:
    runs-on: ubuntu-latest
    permissions:
      contents: write
      pull-requests: write
      actions: write
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - run: git apply change.patch && make repro
"""
    )
    assert security_problems(bad) == [
        "bad.yml: top-level permissions must be {}",
        "bad.yml: pull_request_target",
        "bad.yml: not pinned as `owner/repo@<full sha> # vX.Y.Z`: - uses: actions/checkout@v7",
        "bad.yml: job a: secrets in the job's env (give them to the steps that use them)",
        "bad.yml: job a: no permissions of its own",
        "bad.yml: job a: secrets: inherit",
        "bad.yml: job a: checkout keeps the credentials",
        "bad.yml: job a: expression inside run:",
        "bad.yml: job a: a value on make's command line (make expands it: use env:)",
        "bad.yml: job b: writes more than pull requests, issues and contents",
        "bad.yml: job b: runs the project's code with a token that can write",
    ]


# The stand-ins that act runs instead of third-party actions -------------------------------


def stand_in_mismatches(workflows: list[Path]) -> list[str]:
    """Third-party actions without a stand-in (tests/actions/<name>/ for owner/name), and `with:`
    keys that their stand-in does not declare (its inputs are the real action's, checked by hand)."""
    problems = []
    for path in workflows:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                action = step.get("uses", "./").split("@")[0]
                if action.startswith("./"):
                    continue
                stand_in = STAND_INS / action.split("/")[1] / "action.yml"
                if not stand_in.exists():
                    problems.append(f"{path.name}: {action} has no stand-in")
                    continue
                declared = load(stand_in).get("inputs") or {}
                problems += [
                    f"{path.name}: {action} input {key!r} unknown to its stand-in"
                    for key in step.get("with") or {}
                    if key not in declared
                ]
    return problems


def test_every_action_has_a_faithful_stand_in():
    assert stand_in_mismatches(sorted(WORKFLOWS.glob("*.yml"))) == []


def test_stand_in_check_catches_a_missing_one(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "jobs:\n  x:\n    steps:\n"
        "      - uses: actions/setup-node@0000000000000000000000000000000000000000\n"
        "      - uses: astral-sh/setup-uv@20cfd1bf945f4377ade1205e4dbc17946fc9a30d\n"
        "        with: {enable-cache: true, pyhton-version: '3.12'}\n"
    )
    assert stand_in_mismatches([bad]) == [
        "bad.yml: actions/setup-node has no stand-in",
        "bad.yml: astral-sh/setup-uv input 'pyhton-version' unknown to its stand-in",
    ]


BAKED_PACKAGE = ROOT / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"


def test_report_watermark_matches_the_workflow():
    template = BAKED_PACKAGE / "gate" / "render.py"
    found = re.search(r'^WATERMARK_TITLE = "(.+)"', template.read_text(), re.MULTILINE)
    assert found, template
    title = found.group(1)
    for name in ("pr-report.yml", "test-score.yml"):  # the score updates the report's comment
        assert load(WORKFLOWS / name)["env"]["WATERMARK_TITLE"] == title, name


def test_the_report_comment_never_waits_for_the_tests_and_the_score_follows_both(baked_workflows):
    jobs = load(baked_workflows / "ci.yml")["jobs"]
    assert "needs" not in jobs["report"] and "needs" not in jobs["test"]
    assert sorted(jobs["score"]["needs"]) == ["report", "test"]


def uploaded_results(workflow: dict) -> list[str]:
    """The files the pr-report workflow hands from the pull request's job to the judge."""
    for step in workflow["jobs"]["reproduce"]["steps"]:
        if (step.get("with") or {}).get("name") == "pr-results":
            prefix = "${{ inputs.working-directory }}/"
            return [
                line.strip().removeprefix(prefix)
                for line in step["with"]["path"].splitlines()
                if line.strip()
            ]
    return []


def test_the_judge_gets_exactly_the_files_the_report_reads():
    template = BAKED_PACKAGE / "gate" / "compare.py"
    text = template.read_text()
    names = dict(re.findall(r'^([A-Z_]+) = "([^"]+)"', text, re.MULTILINE))
    found = re.search(r"^RESULT_FILES = \((.+?)\)", text, re.MULTILINE | re.DOTALL)
    assert found, template
    listed = found.group(1)
    expected = [
        item.strip().strip('"') if item.strip().startswith('"') else names[item.strip()]
        for item in listed.split(",")
        if item.strip()
    ]
    assert uploaded_results(load(WORKFLOWS / "pr-report.yml")) == expected


def test_the_judge_never_runs_the_pull_requests_code():
    """The judge job checks out the base branch, and nothing it runs comes from the PR's tree;
    so does the job that scores the tests."""
    for name, job in (("pr-report.yml", "judge"), ("test-score.yml", "score")):
        judge = load(WORKFLOWS / name)["jobs"][job]
        checkout = next(
            step for step in judge["steps"] if step.get("uses", "").startswith("actions/checkout@")
        )
        assert checkout["with"]["ref"] == "${{ inputs.base-ref || github.base_ref }}", name
        assert judge["steps"].index(checkout) == 0, name
    reproduce = load(WORKFLOWS / "pr-report.yml")["jobs"]["reproduce"]
    assert not any("report" in step.get("run", "") for step in reproduce["steps"])


def required_check_problems(ruleset: dict, ci: dict, workflows: Path) -> list[str]:
    """Each check the baked ruleset requires, `<ci.yml job> / <job of the called workflow>`, must
    be one GitHub will report: a required check that never reports blocks every merge, and one
    that names a job which does not gate lets anything through."""
    problems = []
    for rule in ruleset["rules"]:
        for check in rule.get("parameters", {}).get("required_status_checks", []):
            caller, _, called = check["context"].partition(" / ")
            uses = ci["jobs"].get(caller, {}).get("uses", "")
            jobs = load(workflows / Path(uses.split("@")[0]).name)["jobs"] if uses else {}
            if called not in {job.get("name", job_id) for job_id, job in jobs.items()}:
                problems.append(check["context"])
    return problems


def test_the_baked_ruleset_requires_checks_the_workflows_report(baked_workflows):
    ruleset = json.loads((baked_workflows.parent / "rulesets" / "main.json").read_text())
    ci = load(baked_workflows / "ci.yml")
    assert required_check_problems(ruleset, ci, WORKFLOWS) == []
    renamed = json.loads(json.dumps(ruleset).replace("report / gate", "report / verdict"))
    assert required_check_problems(renamed, ci, WORKFLOWS) == ["report / verdict"]
