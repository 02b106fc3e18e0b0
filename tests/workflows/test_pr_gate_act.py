"""The pull-request gate, run for real: the baked project's ci.yml and mlgate's reusable
workflows under act (host mode, offline), third-party actions mapped to local stand-ins
(tests/actions/), `OWNER/mlgate@v1` mapped to this working tree.

One project is baked, installed and reproduced once per module; each scenario clones its
bare `origin`, commits a change on a branch, writes the pull_request event and runs act.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, bake, run, subprocess_env

# One worker runs the whole module (`--dist loadgroup`): one bake for every scenario.
pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("act-pr-gate")]

WORKFLOWS = ROOT / ".github" / "workflows"
STAND_INS = ROOT / "tests" / "actions"  # owner/name@sha -> tests/actions/<name>/
REPOSITORY = "acme/ml-project"  # github.repository in the act runs
AUTHOR = "contributor"  # who opens the pull requests
APPROVAL_LABEL = "gate-policy-approved"  # = APPROVAL_LABEL in the baked policy.py
WATERMARK_TITLE = yaml.safe_load((WORKFLOWS / "pr-report.yml").read_text())["env"]["WATERMARK_TITLE"]
STAGES = ("ingest", "validate", "split", "train", "evaluate")
# The default model is a logistic regression with regularization 1.0 (1/C). Measured on the
# demo data: this gradient boosting beats it on every gated metric (roc_auc +0.002, log_loss
# -0.004, balanced_accuracy +0.004); regularization 10000 makes log_loss worse by 0.033, beyond
# the gate's tolerance of 0.02 (1000 is not enough: +0.017, within every tolerance).
IMPROVED = {"kind": "gradient_boosting", "max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 8}
DEGRADED = {"kind": "linear", "regularization": 10000.0, "max_iter": 1000}


# act ------------------------------------------------------------------------------


def third_party_actions() -> set[str]:
    """Every `owner/repo@sha` step that mlgate's workflows use."""
    uses = set()
    for workflow in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            uses |= {step["uses"] for step in job.get("steps", []) if "uses" in step}
    return {use for use in uses if not use.startswith("./")}


def stand_in(uses: str) -> Path:
    """tests/actions/<name>/ for `owner/name@ref`."""
    return STAND_INS / uses.split("@")[0].split("/")[1]


def host_uv() -> Path:
    """The real uv binary (a pyenv shim would follow the project's .python-version)."""
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH"
    real = Path(uv).resolve()
    assert "/shims/" not in uv + str(real), f"{uv} is a shim: put the real uv first on PATH"
    return real


def act_command(
    workflow: Path,
    event: Path,
    record: Path,
    event_name: str = "pull_request",
    secrets: dict[str, str] | None = None,
    origin: str = "",
) -> list[str]:
    command = [str(Path(sys.executable).parent / "act"), event_name, "-W", str(workflow)]
    command += ["-e", str(event), "-P", "ubuntu-latest=-self-hosted", "-s", "GITHUB_TOKEN=fake-token"]
    for name, value in (secrets or {}).items():
        command += ["-s", f"{name}={value}"]
    for uses in sorted(third_party_actions()):
        command += ["--local-repository", f"{uses}={stand_in(uses)}"]
    command += ["--local-repository", f"OWNER/mlgate@v1={ROOT}"]
    for name, value in {
        "GITHUB_REPOSITORY": REPOSITORY,
        "STANDIN_UV": host_uv(),
        "STANDIN_ORIGIN": origin,  # where the checkout stand-in fetches a `ref` from
        "CML_RECORD_DIR": record / "cml",
        "ARTIFACT_DIR": record / "artifacts",
    }.items():
        command += ["--env", f"{name}={value}"]
    return command


def origin_of(clone: Path) -> str:
    return run(["git", "remote", "get-url", "origin"], cwd=clone).stdout.strip()


@dataclass
class Outcome:
    returncode: int
    output: str
    record: Path
    seconds: float  # from the start of act to its end
    comment_seconds: float | None  # from the start of act to the recorded comment

    @property
    def comment(self) -> str | None:
        path = self.record / "cml" / "report.md"
        return path.read_text() if path.exists() else None

    @property
    def cml_args(self) -> list[str]:
        return (self.record / "cml" / "args.txt").read_text().splitlines()

    @property
    def summary(self) -> str:
        """What act printed of the job summaries (GITHUB_STEP_SUMMARY)."""
        return self.output[self.output.find("Summary") :] if "Summary" in self.output else ""

    def tail(self, chars: int = 6000) -> str:
        return self.output[-chars:]


def run_act(clone: Path, event: Path, workflow: Path, record: Path, **act_options) -> Outcome:
    """Run act in the clone; notes when the recording cml received the comment.

    `act_options`: `event_name` (default pull_request) and `secrets` for `act_command`.
    """
    record.mkdir(parents=True, exist_ok=True)
    comment = record / "cml" / "report.md"
    log = record / "act.log"
    start = time.perf_counter()
    comment_seconds = None
    with log.open("w") as out:
        process = subprocess.Popen(
            act_command(workflow, event, record, origin=origin_of(clone), **act_options),
            cwd=clone,
            env=subprocess_env(),
            stdout=out,
            stderr=out,
        )
        while process.poll() is None:
            if comment_seconds is None and comment.exists():
                comment_seconds = time.perf_counter() - start
            time.sleep(0.2)
    seconds = time.perf_counter() - start
    if comment_seconds is None and comment.exists():
        comment_seconds = seconds
    return Outcome(process.returncode, log.read_text(errors="replace"), record, seconds, comment_seconds)


# The baked caller -----------------------------------------------------------------


def caller(clone: Path, target: Path, jobs: tuple[str, ...] = ("test", "report"), **test_inputs) -> Path:
    """The clone's own ci.yml, keeping only `jobs`; `test_inputs` are added to the test job's `with:`."""
    workflow = yaml.safe_load((clone / ".github" / "workflows" / "ci.yml").read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as the boolean True
    workflow["jobs"] = {name: job for name, job in workflow["jobs"].items() if name in jobs}
    if test_inputs:
        workflow["jobs"]["test"]["with"] |= test_inputs
    target.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return target


# The project and its pull requests ------------------------------------------------


@dataclass
class Origins:
    with_metrics: Path  # main: the bake commit, then the first `dvc repro` (dvc.lock, metrics)
    without_metrics: Path  # main: the bake commit only
    storage: Path  # the local DVC remote, holding main's outputs
    project: Path  # the baked project, installed and reproduced (the origins' source)


def prepare_origins(where: Path) -> Origins:
    """Bake the default project (DVC remote: a local folder), reproduce it, make two bare origins."""
    storage = where / "dvc-storage"
    project = bake(where, dvc_remote="local", dvc_remote_url=str(storage))
    bake_commit = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    for args in (["make", "install"], ["uv", "run", "dvc", "repro"], ["uv", "run", "dvc", "push"]):
        run(args, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    with_metrics, without_metrics = where / "origin.git", where / "origin-first.git"
    for origin in (with_metrics, without_metrics):
        run(["git", "clone", "-q", "--bare", str(project), str(origin)], cwd=where)
    run(["git", "update-ref", "refs/heads/main", bake_commit], cwd=without_metrics)
    return Origins(with_metrics, without_metrics, storage, project)


def open_pull_request(
    origin: Path, where: Path, change, fork: bool = False, base: str = "main", **event_fields
) -> tuple[Path, Path]:
    """Clone the origin, commit a change on a branch off `base`, and write the pull_request event
    (`event_fields` are merged into it: e.g. the action `labeled` with its label and sender)."""
    clone = where / "pr"
    run(["git", "clone", "-q", "--branch", base, str(origin), str(clone)], cwd=where)
    run(["git", "checkout", "-qb", "feature"], cwd=clone)
    change(clone)
    run(["git", "commit", "-qam", "The change under review"], cwd=clone)
    head_sha = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    base_sha = run(["git", "rev-parse", "--end-of-options", base], cwd=clone).stdout.strip()
    base_repo = {"full_name": REPOSITORY, "fork": False}
    head_repo = {"full_name": "someone/ml-project", "fork": True} if fork else base_repo
    event = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "user": {"login": AUTHOR},
            "labels": [],
            "head": {"ref": "feature", "sha": head_sha, "repo": head_repo},
            "base": {"ref": base, "sha": base_sha, "repo": base_repo},
        },
        "repository": base_repo,
        "sender": {"login": AUTHOR},
    }
    event |= event_fields
    event_path = where / "event.json"
    event_path.write_text(json.dumps(event))
    return clone, event_path


def set_model(model: dict[str, object]):
    """A change that replaces params.yaml's train.model block."""

    def change(clone: Path) -> None:
        params = clone / "params.yaml"
        text = params.read_text()
        start = text.index("\n  model:\n") + len("\n  model:\n")
        end = start
        while text.startswith("    ", end):
            end = text.index("\n", end) + 1
        block = "".join(f"    {key}: {value}\n" for key, value in model.items())
        params.write_text(text[:start] + block + text[end:])

    return change


def loosen_the_gate(clone: Path) -> None:
    """The pull request's own params.yaml: every gate tolerance and bound made harmless."""
    params = clone / "params.yaml"
    text = re.sub(r"tolerance: [0-9.]+\}", "tolerance: 1.0}", params.read_text())
    text = re.sub(r"slice_tolerance: [0-9.]+", "slice_tolerance: 1.0", text)
    params.write_text(text)


def gate_code_always_passes(clone: Path) -> None:
    """The pull request's own gate code and Makefile say "passed", whatever the metrics."""
    report = clone / "src" / "ml_project" / "report.py"
    text = report.read_text()
    text = text.replace(
        '    """Regressions beyond tolerance', '    return Verdict(passed=True)\n    """Regressions beyond', 1
    )
    report.write_text(text)
    makefile = clone / "Makefile"
    text = re.sub(r"(?m)^(report:.*\n)(\t.*\n)+", "\\1\t@echo 'report: gate passed'\n", makefile.read_text())
    makefile.write_text(text)


def degraded_and_self_approved(clone: Path) -> None:
    set_model(DEGRADED)(clone)
    loosen_the_gate(clone)
    gate_code_always_passes(clone)


def degraded_with_a_looser_policy(clone: Path) -> None:
    set_model(DEGRADED)(clone)
    loosen_the_gate(clone)


def broken_pipeline(clone: Path) -> None:
    """A params.yaml the pipeline refuses: training cannot run."""
    set_model({"kind": "linear", "regularization": -1.0, "max_iter": 1000})(clone)


def edit_readme(clone: Path) -> None:
    with (clone / "README.md").open("a") as handle:
        handle.write("\nA note for readers; nothing about the model changes.\n")


def table_after(comment: str, heading: str) -> list[dict[str, str]]:
    """The first GFM table after `heading` in the report, one dict (header -> cell) per row."""
    if heading not in comment:
        return []
    lines = comment.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    header, _, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def deltas(comment: str) -> dict[str, str]:
    """The "Metrics" table of the report: metric -> delta."""
    return {row["metric"]: row["delta"] for row in table_after(comment, "### Metrics")}


@pytest.fixture(scope="module")
def origins(tmp_path_factory) -> Origins:
    return prepare_origins(tmp_path_factory.mktemp("gate-project"))


def scenario(
    origin: Path,
    where: Path,
    change,
    jobs=("report",),
    fork=False,
    event_fields=None,
    base="main",
    **test_inputs,
) -> Outcome:
    clone, event = open_pull_request(origin, where, change, fork=fork, base=base, **(event_fields or {}))
    workflow = caller(clone, where / "caller.yml", jobs=jobs, **test_inputs)
    outcome = run_act(clone, event, workflow, where / "record")
    print(f"act: {outcome.seconds:.1f} s, comment after {outcome.comment_seconds} s")
    return outcome


# Scenarios --------------------------------------------------------------------------


def test_improving_pr_passes_with_positive_deltas(origins, tmp_path):
    """The whole baked ci.yml (the test job with a marker selection, and the report)."""
    change = set_model(IMPROVED)
    outcome = scenario(
        origins.with_metrics, tmp_path, change, jobs=("test", "report"), **{"pytest-markers": "unit"}
    )
    assert outcome.returncode == 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None, outcome.tail()
    assert "✅ Model gate passed" in comment
    delta = deltas(comment)
    assert delta["model.roc_auc"].startswith("+"), delta
    assert delta["model.balanced_accuracy"].startswith("+"), delta
    assert delta["model.log_loss"].startswith("-"), delta  # lower is better
    assert "### What failed" not in comment
    *args, markdown = outcome.cml_args
    assert args == [
        "comment",
        "update",
        f"--repo=https://github.com/{REPOSITORY}",
        "--target=pr",
        f"--watermark-title={WATERMARK_TITLE}",
        "--publish=false",
    ]
    assert markdown.endswith("/pr-report/pr-report.md"), "the report job's artifact, downloaded"
    assert (outcome.record / "cml" / "token.txt").exists(), "the token reaches cml through env:"
    junit = (outcome.record / "artifacts" / "junit" / "junit.xml").read_text()
    assert 'name="pytest"' in junit and "tests.unit." in junit and "tests.integration." not in junit


def test_degrading_pr_fails_after_the_comment_and_names_the_metric(origins, tmp_path):
    outcome = scenario(origins.with_metrics, tmp_path, set_model(DEGRADED))
    assert outcome.returncode != 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None, "the report is posted before the gate fails"
    assert "❌ Model gate failed" in comment
    failed = {(row["check"], row["metric"]): row for row in table_after(comment, "### What failed")}
    assert ("regression", "log_loss") in failed, failed
    assert failed["regression", "log_loss"]["delta"] == deltas(comment)["model.log_loss"]
    assert deltas(comment)["model.log_loss"].startswith("+")
    posted = outcome.output.index("Success - Main Post or update the report comment")
    assert posted < outcome.output.index("::error::Model gate: fail"), "the gate fails after the comment"
    assert "Error: Job 'gate' failed" in outcome.output, outcome.tail()


def test_first_pr_without_a_baseline_passes(origins, tmp_path):
    outcome = scenario(origins.without_metrics, tmp_path, edit_readme)
    assert outcome.returncode == 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None and "✅ Model gate passed" in comment
    assert "No baseline yet" in comment
    assert all(f"Running stage '{stage}'" in outcome.output for stage in STAGES)


def test_docs_only_pr_reproduces_nothing(origins, tmp_path):
    outcome = scenario(origins.with_metrics, tmp_path, edit_readme)
    assert outcome.returncode == 0, outcome.tail()
    assert "Running stage" not in outcome.output, "make pull restored every output"
    assert all(f"Stage '{stage}' didn't change, skipping" in outcome.output for stage in STAGES)
    assert "No changes to the model" in outcome.comment


def test_fork_pr_writes_the_summary_but_no_comment(origins, tmp_path):
    outcome = scenario(origins.with_metrics, tmp_path, edit_readme, fork=True)
    assert outcome.returncode == 0, outcome.tail()
    assert not (outcome.record / "cml").exists(), "no comment may be attempted from a fork"
    assert "setup-cml" not in outcome.output and "cml comment" not in outcome.output
    assert "No changes to the model" in outcome.summary, "the job summary carries the report"


def test_a_pr_that_rewrites_its_own_gate_and_policy_still_fails(origins, tmp_path):
    """Worse metrics, tolerances raised to 1.0, and its own gate code and Makefile always passing:
    the base's code judges, with the base's policy, and the change is shown in the verdict."""
    outcome = scenario(origins.with_metrics, tmp_path, degraded_and_self_approved)
    assert outcome.returncode != 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None and "❌ Model gate failed" in comment, outcome.tail()
    assert ("regression", "log_loss") in {
        (row["check"], row["metric"]) for row in table_after(comment, "### What failed")
    }
    assert "This pull request changes the gate's policy" in comment and "Not applied" in comment
    changed = {row["policy key"]: row["this PR"] for row in table_after(comment, "changes the gate's policy")}
    assert changed["gate.metrics.log_loss.tolerance"] == "1", changed
    assert "Error: Job 'gate' failed" in outcome.output


def test_a_policy_change_applies_when_someone_else_approves_it(origins, tmp_path):
    """The run that adding the approval label starts judges with the pull request's own policy."""
    approval = {"action": "labeled", "label": {"name": APPROVAL_LABEL}, "sender": {"login": "maintainer"}}
    outcome = scenario(origins.with_metrics, tmp_path, degraded_with_a_looser_policy, event_fields=approval)
    assert outcome.returncode == 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None and "✅ Model gate passed" in comment, outcome.tail()
    assert "Applied: approved by `maintainer`" in comment


def test_a_failed_pipeline_replaces_the_comment_and_fails(origins, tmp_path):
    outcome = scenario(origins.with_metrics, tmp_path, broken_pipeline)
    assert outcome.returncode != 0, outcome.tail()
    comment = outcome.comment
    assert comment is not None, "a failure report replaces any earlier verdict"
    assert "The pipeline failed on this pull request" in comment and "✅" not in comment
    assert "::error::Model gate: fail" in outcome.output or "::error::Model gate: error" in outcome.output


def test_a_base_branch_name_never_reaches_a_shell(origins, tmp_path):
    """git accepts `$(...)` and backticks in branch names; the gate refuses such a base in one line."""
    marker = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    base = f"main$(touch${{IFS}}{marker})`touch${{IFS}}{marker}`"
    origin = tmp_path / "origin.git"
    shutil.copytree(origins.with_metrics, origin)
    run(["git", "branch", "--end-of-options", base, "main"], cwd=origin)
    (tmp_path / "pr-run").mkdir()
    outcome = scenario(origin, tmp_path / "pr-run", edit_readme, base=base)
    assert not marker.exists(), "the branch name ran as shell"
    assert outcome.returncode != 0, outcome.tail()
    assert "is not a ref the gate takes" in outcome.output, outcome.tail()
    comment = outcome.comment
    assert comment is not None and "could not be computed" in comment
