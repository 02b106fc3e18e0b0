"""What the act scenarios share: running act with the stand-ins, the reference project and its origins,
pull-request events, changes to a clone, and reading the report. A helper module: no tests here.

The reference project is baked, installed, reproduced and pushed to its DVC remote once per test
run, by whichever worker needs it first (a file lock keeps the others waiting); each module
then makes bare git origins of its own from it, so a scenario that pushes to main never
changes what another module's scenarios clone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from conftest import ROOT, bake, run, subprocess_env

WORKFLOWS = ROOT / ".github" / "workflows"
STAND_INS = ROOT / "tests" / "actions"  # owner/name@sha -> tests/actions/<name>/
REPOSITORY = "acme/ml-project"  # github.repository in the act runs
AUTHOR = "contributor"  # who opens the pull requests
APPROVAL_LABEL = "gate-policy-approved"  # = APPROVAL_LABEL in the baked gate/policy.py
WATERMARK_TITLE = yaml.safe_load((WORKFLOWS / "pr-report.yml").read_text())["env"]["WATERMARK_TITLE"]
STAGES = ("ingest", "validate", "split", "tune", "train", "evaluate", "backtest")
# The default model is a logistic regression with regularization 1.0 (1/C). Measured on the
# demo data: this gradient boosting beats it on every gated metric (roc_auc +0.002, log_loss
# -0.004, balanced_accuracy +0.004); regularization 10000 makes log_loss worse by 0.033, beyond
# the gate's tolerance of 0.02 (1000 is not enough: +0.017, within every tolerance).
IMPROVED = {"kind": "gradient_boosting", "max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 8}
# A retrained champion, as a deploy usually brings: close enough to pass the canary. (The demo's
# balanced labels sit where many probabilities lie, so another model kind, IMPROVED, flips more
# labels than canary.min_agreement allows.)
RETUNED = {"kind": "linear", "regularization": 0.5, "max_iter": 1000}
DEGRADED = {"kind": "linear", "regularization": 10000.0, "max_iter": 1000}


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
    runner_env: dict[str, object] | None = None,
    runners: tuple[str, ...] = ("ubuntu-latest",),
) -> list[str]:
    """act's command line; `runner_env` adds to (or replaces) the variables every step sees; a job
    whose `runs-on` has no label of `runners` is skipped, as GitHub leaves it waiting."""
    command = [str(Path(sys.executable).parent / "act"), event_name, "-W", str(workflow), "-e", str(event)]
    for label in runners:
        command += ["-P", f"{label}=-self-hosted"]
    command += ["-s", "GITHUB_TOKEN=fake-token"]
    for name, value in (secrets or {}).items():
        command += ["-s", f"{name}={value}"]
    for uses in sorted(third_party_actions()):
        command += ["--local-repository", f"{uses}={stand_in(uses)}"]
    command += ["--local-repository", f"OWNER/mlgate@v1={ROOT}"]
    variables: dict[str, object] = {
        "GITHUB_REPOSITORY": REPOSITORY,
        "STANDIN_UV": host_uv(),
        "STANDIN_ORIGIN": origin,  # where the checkout stand-in fetches a `ref` from
        "CML_RECORD_DIR": record / "cml",
        "ARTIFACT_DIR": record / "artifacts",
    } | (runner_env or {})
    for name, setting in variables.items():
        command += ["--env", f"{name}={setting}"]
    return command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def pushgateway(folder: Path) -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway) on 127.0.0.1 while in the block: its address."""
    binary = shutil.which("prometheus-pushgateway")
    assert binary, (
        "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway; .ci/run does)"
    )
    port = free_port()
    command = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={folder / 'gateway.data'}",
    ]
    with (folder / "pushgateway.log").open("w") as sink:
        gateway = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers_200(f"{url}/-/ready"):
            assert gateway.poll() is None and time.monotonic() < deadline, (
                folder / "pushgateway.log"
            ).read_text()
            time.sleep(0.2)
        yield url
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)


# The S3 store's keys, given to the workflows as secrets (moto's server accepts any).
S3_SECRETS = {"AWS_ACCESS_KEY_ID": "tests", "AWS_SECRET_ACCESS_KEY": "tests-secret"}
S3_BUCKET = "mlgate-dvc"


def make_bucket(endpoint: str, bucket: str) -> None:
    """Create `bucket` on the S3-compatible server at `endpoint` (moto's takes unsigned requests)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=10)


@contextlib.contextmanager
def s3_store(python: Path, folder: Path) -> Iterator[str]:
    """An S3-compatible server (moto's, from the baked project's environment `python`) on
    127.0.0.1 with the bucket S3_BUCKET, while in the block: its endpoint."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with (folder / "s3.log").open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=subprocess_env())
    try:
        deadline = time.monotonic() + 60
        while not answers_200(f"{endpoint}/moto-api/"):
            assert server.poll() is None and time.monotonic() < deadline, (folder / "s3.log").read_text()
            time.sleep(0.2)
        make_bucket(endpoint, S3_BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextlib.contextmanager
def team_server(project: Path, folder: Path) -> Iterator[dict[str, str]]:
    """A team's tracking server (PostgreSQL store, artifacts proxied to an S3 bucket) started by
    the installed baked project's own test helper, tests/team_server.py, while in the block: its
    url, s3_endpoint and bucket."""
    log = folder / "team-server.log"
    with log.open("w") as errors:
        server = subprocess.Popen(
            [str(project / ".venv" / "bin" / "python"), "tests/team_server.py"],
            cwd=project,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert server.stdout is not None
    ready = server.stdout.readline()  # one JSON line once all three answer; nothing if it failed
    try:
        assert ready, f"the team server did not start:\n{log.read_text()[-3000:]}"
        yield json.loads(ready)
    finally:
        server.send_signal(signal.SIGTERM)  # it stops its servers and PostgreSQL, then exits
        server.wait(timeout=60)


def stored_keys(endpoint: str, bucket: str) -> list[str]:
    """The keys in a bucket of the S3-compatible server at `endpoint` (unsigned requests)."""
    listing = f"{endpoint}/{bucket}?list-type=2&max-keys=1000"
    with urllib.request.urlopen(listing, timeout=10) as answer:
        tree = ElementTree.parse(answer)
    return [key.text or "" for key in tree.iter() if key.tag.endswith("}Key")]


def stored_models(team: dict[str, str]) -> list[str]:
    """The keys of the models (model.skops) the team server's bucket holds."""
    return [key for key in stored_keys(team["s3_endpoint"], team["bucket"]) if key.endswith("/model.skops")]


def s3_environment(endpoint: str) -> dict[str, str]:
    return {**subprocess_env(), **S3_SECRETS, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


def s3_bake(where: Path) -> Path:
    """The default project baked with dvc_remote=s3 (its remote s3://S3_BUCKET/<where's name>),
    installed, nothing reproduced yet."""
    project = bake(where, dvc_remote="s3", dvc_remote_url=f"s3://{S3_BUCKET}/{where.name}")
    run(["make", "install"], cwd=project)
    return project


def s3_origin(
    project: Path, endpoint: str, also_cached: tuple[dict, ...] = (), run_cache: bool = True
) -> Path:
    """A bare origin of an `s3_bake` project beside it: main reproduced, its outputs and run-cache
    pushed to the S3 store at `endpoint` and its results committed; then the runs of `also_cached`
    models (as a developer's `make repro` then `make push` leaves them), their results not
    committed. run_cache=False: `dvc push` alone, no run-cache (as before `make push` sent it)."""
    push = ["make", "push"] if run_cache else ["uv", "run", "dvc", "push"]
    environment = s3_environment(endpoint)
    run(["uv", "run", "dvc", "repro"], cwd=project, env=environment)
    run(push, cwd=project, env=environment)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    for model in also_cached:
        set_model(model)(project)
        run(["uv", "run", "dvc", "repro"], cwd=project, env=environment)
        run(push, cwd=project, env=environment)
        run(["git", "checkout", "--", "."], cwd=project)
    origin = project.parent / "s3-origin.git"
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], cwd=project.parent)
    return origin


def write_event(where: Path, event: dict) -> Path:
    path = where / "event.json"
    path.write_text(json.dumps(event))
    return path


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


# act (v0.2.89) can crash at its start when two jobs fetch the same --local-repository at once
# (`concurrent map writes` in its repository cache); nothing of the workflow has run by then.
ACT_RACE = "fatal error: concurrent map writes"


def run_act(clone: Path, event: Path, workflow: Path, record: Path, **act_options) -> Outcome:
    """Run act in the clone, once more if act itself crashed on its repository-cache race; notes
    when the recording cml received the comment.

    `act_options`: `event_name` (default pull_request), `secrets`, `runner_env` and `runners` for
    `act_command`.
    """
    outcome = run_act_once(clone, event, workflow, record, **act_options)
    if outcome.returncode != 0 and crashed_before_any_step(outcome.output):
        (record / "act.log").rename(record / "act-crashed.log")
        outcome = run_act_once(clone, event, workflow, record, **act_options)
    return outcome


def crashed_before_any_step(output: str) -> bool:
    return ACT_RACE in output and "⭐ Run " not in output.split(ACT_RACE)[0]


def run_act_once(clone: Path, event: Path, workflow: Path, record: Path, **act_options) -> Outcome:
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


def ci_caller(clone: Path, target: Path, jobs: tuple[str, ...] = ("test", "report"), **test_inputs) -> Path:
    """The clone's own ci.yml, keeping only `jobs`; `test_inputs` are added to the test job's `with:`."""
    workflow = yaml.safe_load((clone / ".github" / "workflows" / "ci.yml").read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as the boolean True
    workflow["jobs"] = {name: job for name, job in workflow["jobs"].items() if name in jobs}
    if test_inputs:
        workflow["jobs"]["test"]["with"] |= test_inputs
    target.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return target


@dataclass
class Origins:
    with_metrics: Path  # main: the bake commit, then the first `dvc repro` (dvc.lock, metrics)
    without_metrics: Path  # main: the bake commit only
    storage: Path  # the local DVC remote, holding main's outputs
    project: Path  # the baked project, installed and reproduced (the origins' source)


@dataclass(frozen=True)
class Reference:
    project: Path
    storage: Path
    bake_commit: str  # before `dvc repro`; HEAD is the commit with its results


def build_reference(where: Path) -> Reference:
    """Bake the default project (DVC remote: a local folder), install, reproduce, push (with the
    run-cache), commit."""
    storage = where / "dvc-storage"
    project = bake(where, dvc_remote="local", dvc_remote_url=str(storage))
    bake_commit = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    for args in (["make", "install"], ["uv", "run", "dvc", "repro"], ["make", "push"]):
        run(args, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    return Reference(project, storage, bake_commit)


def reference_project(factory: pytest.TempPathFactory) -> Reference:
    """The one reference project of this test run, built by the first worker that asks for it.

    The workers of one run share the parent of their base temporary folders; the lock keeps
    the others waiting while the first builds it. Never changed afterwards: scenarios clone.
    A run without workers has its own base folder (its parent holds earlier runs' folders).
    """
    shared = factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else factory.getbasetemp()
    folder, done = shared / "act-reference", shared / "act-reference.json"
    with (shared / "act-reference.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            reference = build_reference(folder)
            done.write_text(json.dumps({key: str(value) for key, value in vars(reference).items()}))
    recorded = json.loads(done.read_text())
    return Reference(Path(recorded["project"]), Path(recorded["storage"]), recorded["bake_commit"])


def prepare_origins(where: Path, reference: Reference) -> Origins:
    """Two bare origins of the reference project: main with its results, and main as baked."""
    with_metrics, without_metrics = where / "origin.git", where / "origin-first.git"
    for origin in (with_metrics, without_metrics):
        run(["git", "clone", "-q", "--bare", str(reference.project), str(origin)], cwd=where)
    run(["git", "update-ref", "refs/heads/main", reference.bake_commit], cwd=without_metrics)
    return Origins(with_metrics, without_metrics, reference.storage, reference.project)


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


# Deploys ---------------------------------------------------------------------------


def registered_model(project: Path) -> str:
    return yaml.safe_load((project / "params.yaml").read_text())["mlflow"]["registered_model"]


def aliases(project: Path, uri: str) -> dict[str, str]:
    """alias -> version of the project's registered model on the tracking server ({} if none)."""
    script = (
        "import json, sys; from mlflow import MlflowClient; from mlflow.exceptions import MlflowException\n"
        "try: model = MlflowClient(sys.argv[1]).get_registered_model(sys.argv[2])\n"
        "except MlflowException: print('{}'); raise SystemExit\n"
        "print(json.dumps(model.aliases))"
    )
    python = str(project / ".venv" / "bin" / "python")
    answer = run([python, "-c", script, uri, registered_model(project)], cwd=project)
    return json.loads(answer.stdout)


def push_to_main(origin: Path, where: Path, change) -> tuple[Path, Path]:
    """Clone the origin, commit a change on main (as a merge lands), write the push event."""
    where.mkdir(parents=True, exist_ok=True)
    clone = where / "main"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=where)
    before = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    change(clone)
    run(["git", "commit", "-qam", "A merged change to the model"], cwd=clone)
    after = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    run(["git", "push", "-q", "origin", "main"], cwd=clone)
    event = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }
    return clone, write_event(where, event)


def deploy_caller(clone: Path, target: Path, jobs: tuple[str, ...], **test_inputs) -> Path:
    """The clone's own deploy.yml, keeping only `jobs` (a kept job's `needs` on a dropped one goes)."""
    workflow = yaml.safe_load((clone / ".github" / "workflows" / "deploy.yml").read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as the boolean True
    workflow["jobs"] = {name: job for name, job in workflow["jobs"].items() if name in jobs}
    for job in workflow["jobs"].values():
        if job.get("needs") and job["needs"] not in jobs:
            del job["needs"]
    if test_inputs:
        workflow["jobs"]["test"]["with"] |= test_inputs
    target.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return target


def deploy(origin: Path, where: Path, change, jobs, secrets: dict[str, str], **test_inputs) -> Outcome:
    clone, event = push_to_main(origin, where, change)
    workflow = deploy_caller(clone, where / "deploy-caller.yml", jobs, **test_inputs)
    outcome = run_act(clone, event, workflow, where / "record", event_name="push", secrets=secrets)
    print(f"act push: {outcome.seconds:.1f} s")
    return outcome
