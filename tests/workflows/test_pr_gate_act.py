"""The pull-request gate, run for real: the baked project's ci.yml and mlgate's reusable
workflows under act (host mode, offline), third-party actions mapped to local stand-ins."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, bake, run, subprocess_env

pytestmark = [pytest.mark.act, pytest.mark.slow]

STAND_INS = {
    "actions/checkout": "checkout",
    "astral-sh/setup-uv": "setup-uv",
    "iterative/setup-cml": "setup-cml",
    "actions/upload-artifact": "upload-artifact",
}
IMPROVED_MODEL = """    kind: gradient_boosting
    max_iter: 100
    learning_rate: 0.05
    max_leaf_nodes: 8"""
DEGRADED_MODEL = """    kind: linear
    regularization: 100000.0
    max_iter: 1000"""


def pinned_actions() -> set[str]:
    """Every `owner/repo@sha` that mlgate's workflows use."""
    uses = set()
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            uses |= {step["uses"] for step in job.get("steps", []) if "uses" in step}
    return uses


def act_command(workflow: Path, event: Path, record: Path) -> list[str]:
    act = str(Path(sys.executable).parent / "act")
    command = [act, "pull_request", "-W", str(workflow), "-e", str(event)]
    command += ["-P", "ubuntu-latest=-self-hosted", "-s", "GITHUB_TOKEN=fake-token"]
    for uses in sorted(pinned_actions()):
        command += [
            "--local-repository",
            f"{uses}={ROOT / 'tests' / 'actions' / STAND_INS[uses.split('@')[0]]}",
        ]
    command += ["--local-repository", f"OWNER/mlgate@v1={ROOT}"]
    uv_dir = Path(shutil.which("uv")).parent
    command += ["--env", f"STANDIN_UV_DIR={uv_dir}", "--env", f"CML_RECORD_DIR={record / 'cml'}"]
    command += ["--env", f"ARTIFACT_DIR={record / 'artifacts'}"]
    return command


@dataclass
class Outcome:
    returncode: int
    output: str
    record: Path

    @property
    def comment(self) -> str | None:
        path = self.record / "cml" / "report.md"
        return path.read_text() if path.exists() else None

    @property
    def cml_args(self) -> list[str]:
        return (self.record / "cml" / "args.txt").read_text().splitlines()


def report_only(workflow: Path, target: Path) -> Path:
    """The baked caller without its test job: the scenarios exercise the report job."""
    caller = yaml.safe_load(workflow.read_text())
    caller["on"] = caller.pop(True)  # YAML 1.1 reads the key `on` as the boolean True
    caller["jobs"].pop("test")
    caller["jobs"]["report"].pop("needs")
    target.write_text(yaml.safe_dump(caller, sort_keys=False))
    return target


def open_pull_request(origin: Path, where: Path, change, fork: bool = False) -> tuple[Path, Path]:
    """Clone the origin, commit a change on a branch, and write the pull_request event."""
    clone = where / "pr"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=where)
    run(["git", "checkout", "-qb", "feature"], cwd=clone)
    change(clone)
    run(["git", "commit", "-qam", "The change under review"], cwd=clone)
    repo = {"full_name": "acme/ml-project", "fork": False}
    event = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {
                "ref": "feature",
                "repo": {**repo, "full_name": "someone/ml-project", "fork": True} if fork else repo,
            },
            "base": {"ref": "main", "repo": repo},
        },
        "repository": repo,
    }
    event_path = where / "event.json"
    event_path.write_text(json.dumps(event))
    return clone, event_path


def run_act(clone: Path, event: Path, record: Path, full: bool = False) -> Outcome:
    workflow = clone / ".github" / "workflows" / "ci.yml"
    if not full:
        workflow = report_only(workflow, record / "report-only.yml")
    result = subprocess.run(
        act_command(workflow, event, record), cwd=clone, env=subprocess_env(), capture_output=True, text=True
    )
    return Outcome(result.returncode, result.stdout + result.stderr, record)


def set_model(block: str):
    def change(clone: Path) -> None:
        params = (clone / "params.yaml").read_text()
        start = params.index("    kind:")
        end = params.index("\n\n", start)
        (clone / "params.yaml").write_text(params[:start] + block + params[end:])

    return change


def edit_readme(clone: Path) -> None:
    with (clone / "README.md").open("a") as handle:
        handle.write("\nA note for readers; nothing about the model changes.\n")


@pytest.fixture(scope="module")
def origin_with_metrics(tmp_path_factory) -> Path:
    """A project whose main has a reproduced pipeline, its outputs in a local DVC remote."""
    where = tmp_path_factory.mktemp("main-with-metrics")
    project = bake(where, dvc_remote="local", dvc_remote_url=str(where / "dvc-storage"))
    run(["make", "install"], cwd=project)
    run(["uv", "run", "dvc", "repro"], cwd=project)
    run(["uv", "run", "dvc", "push"], cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    run(["git", "clone", "-q", "--bare", str(project), str(where / "origin.git")], cwd=where)
    return where / "origin.git"


@pytest.fixture(scope="module")
def origin_without_metrics(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("main-without-metrics")
    project = bake(where)
    run(["git", "clone", "-q", "--bare", str(project), str(where / "origin.git")], cwd=where)
    return where / "origin.git"


def test_improving_pr_passes_with_positive_deltas(origin_with_metrics, tmp_path):
    clone, event = open_pull_request(origin_with_metrics, tmp_path, set_model(IMPROVED_MODEL))
    outcome = run_act(clone, event, tmp_path, full=True)
    assert outcome.returncode == 0, outcome.output[-4000:]
    comment = outcome.comment
    assert comment is not None and "✅ Model gate passed" in comment
    assert "| model.roc_auc | 0.7164 | 0.7187 | +0.002" in comment
    assert "| model.log_loss | 0.4264 | 0.4229 | -0.003" in comment
    assert "--watermark-title=mlgate model report" in outcome.cml_args
    assert (tmp_path / "artifacts" / "junit" / "junit.xml").exists(), "the test job keeps its JUnit XML"


def test_degrading_pr_fails_and_names_the_metric(origin_with_metrics, tmp_path):
    clone, event = open_pull_request(origin_with_metrics, tmp_path, set_model(DEGRADED_MODEL))
    outcome = run_act(clone, event, tmp_path)
    assert outcome.returncode != 0
    comment = outcome.comment
    assert comment is not None, "the report is posted before the job fails"
    assert "❌ Model gate failed" in comment
    assert "| regression | log_loss | 0.4264 | 0.463 |" in comment
    assert "The model gate failed" in outcome.output


def test_first_pr_has_no_baseline_and_passes(origin_without_metrics, tmp_path):
    clone, event = open_pull_request(origin_without_metrics, tmp_path, set_model(IMPROVED_MODEL))
    outcome = run_act(clone, event, tmp_path)
    assert outcome.returncode == 0, outcome.output[-4000:]
    assert "No baseline yet" in outcome.comment


def test_docs_only_pr_reproduces_nothing(origin_with_metrics, tmp_path):
    clone, event = open_pull_request(origin_with_metrics, tmp_path, edit_readme)
    outcome = run_act(clone, event, tmp_path)
    assert outcome.returncode == 0, outcome.output[-4000:]
    assert "Running stage" not in outcome.output
    assert "No changes to the model" in outcome.comment


def test_fork_pr_writes_the_summary_but_no_comment(origin_with_metrics, tmp_path):
    clone, event = open_pull_request(origin_with_metrics, tmp_path, edit_readme, fork=True)
    outcome = run_act(clone, event, tmp_path)
    assert outcome.returncode == 0, outcome.output[-4000:]
    assert outcome.comment is None
    assert not (tmp_path / "cml").exists(), "no comment may be attempted from a fork"
    assert "No changes to the model" in outcome.output, "the job summary carries the report"
