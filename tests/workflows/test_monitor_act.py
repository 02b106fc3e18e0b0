"""The production loop closing in GitHub, run for real: a real server of the reference project
ships its prediction log to a store (a file:// URL, read through fsspec as s3:// would be),
labels come back, one input has shifted; the baked monitor.yml (mlgate's reusable monitor.yml)
runs under act on a dispatch, pushes its gauges to a real Pushgateway, opens the issue and,
with monitor.retrain on, pushes the retrained project to a branch and opens the pull request.
Then the baked ci.yml's PR gate runs on that branch and must judge it. GitHub's API is the
recording `gh` of tests/stand-ins/.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from act_helpers import (
    REPOSITORY,
    WATERMARK_TITLE,
    answers_200,
    ci_caller,
    free_port,
    prepare_origins,
    pushgateway,
    reference_project,
    run_act,
    write_event,
)
from conftest import ROOT, run, subprocess_env

pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("act-monitor")]

STAND_IN_BIN = ROOT / "tests" / "stand-ins"
TRUSTED = "trusted-caller-token-0123456789"  # SERVE_TRUSTED_TOKEN: its rows may become training data
ROWS, BATCH, LABELLED = 300, 10, 100  # served (over monitor.min_rows), per request, with labels
READY_WITHIN = 60  # seconds for the server to answer /ready, and for its log to hold every request


@pytest.fixture(scope="module")
def origins(tmp_path_factory):
    return prepare_origins(tmp_path_factory.mktemp("monitor-origins"), reference_project(tmp_path_factory))


def contract(project: Path) -> dict:
    return yaml.safe_load((project / "schema.yaml").read_text())["columns"]


def traffic(project: Path, target: str, not_inputs: list[str]) -> tuple[list[dict], list[str], str]:
    """ROWS test rows as clients send them (without `not_inputs`), one bounded number input at its
    contract's maximum (an upstream change of units or defaults); their true labels, and the
    shifted input's name."""
    columns = contract(project)
    shifted = next(
        name
        for name, rule in columns.items()
        if name != target and rule["type"] in ("integer", "number") and "max" in rule
    )
    rows, labels = [], []
    with (project / "data" / "prepared" / "test.csv").open() as handle:
        for record in list(csv.DictReader(handle))[:ROWS]:
            labels.append(record.pop(target))
            for name in not_inputs:  # the sensitive features: a request that sends them is refused
                del record[name]
            row: dict[str, object] = {
                name: int(value) if columns[name]["type"] == "integer" else value
                for name, value in record.items()
            }
            rows.append({**row, shifted: columns[shifted]["max"]})
    return rows, labels, shifted


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TRUSTED}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def logged_ids(folder: Path) -> set[str]:
    ids = set()
    for path in folder.glob("predictions-*.jsonl"):
        for line in path.read_text().splitlines():
            if line.endswith("}"):
                ids.add(json.loads(line)["request_id"])
    return ids


def edit_params(project: Path, changes: dict[str, dict[str, object]]) -> None:
    """Set `section.key: value` lines of params.yaml in place (comments kept); each must exist once."""
    params = project / "params.yaml"
    lines = params.read_text().splitlines(keepends=True)
    for section, values in changes.items():
        start = (
            lines.index(f"{section}:\n")
            if f"{section}:\n" in lines
            else next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
        )
        for key, value in values.items():
            at = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(f"  {key}:"))
            lines[at] = f"  {key}: {json.dumps(value)}\n"
    params.write_text("".join(lines))


def nullable_sensitive_features(project: Path) -> None:
    """Mark the sensitive features nullable in schema.yaml: the log never holds them in clear, so the
    served rows come without them (the README's advice for training on served rows)."""
    schema = project / "schema.yaml"
    text = schema.read_text()
    for name in yaml.safe_load((project / "params.yaml").read_text())["data"]["sensitive_features"]:
        line = f"  {name}: {{type:"
        assert text.count(line) == 1, name
        text = text.replace(line, f"  {name}: {{nullable: true, type:")
    schema.write_text(text)


def serve_and_label(origin: Path, reference: Path, where: Path, store: Path) -> str:
    """Serve the reference model from a clone whose log ships to `store`/predictions; send the shifted
    traffic, import the true labels of the first LABELLED rows (they ship to `store`/labels), and
    stop the server (its file ships). The shifted input's name."""
    clone = where / "server"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=where)
    params = clone / "params.yaml"
    text = params.read_text()
    assert text.count("    uri: logs/predictions") == 1
    params.write_text(text.replace("    uri: logs/predictions", f"    uri: file://{store}/predictions"))
    data = yaml.safe_load(text)["data"]
    rows, truth, shifted = traffic(reference, data["target"], data["sensitive_features"])
    tool = str(reference / ".venv" / "bin" / "ml_project")
    port = free_port()
    env = {
        **subprocess_env(),
        "SERVE_TRUSTED_TOKEN": TRUSTED,
        "MLFLOW_TRACKING_URI": f"sqlite:///{where}/m.db",
    }
    command = [tool, "--root", str(clone), "serve", "--model", str(reference / "models" / "model")]
    with (where / "server.log").open("w") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN
        while not answers_200(f"{url}/ready"):
            assert server.poll() is None and time.monotonic() < deadline, (where / "server.log").read_text()
            time.sleep(0.5)
        ids = [
            post(f"{url}/predict", {"rows": rows[i : i + BATCH]})["request_id"] for i in range(0, ROWS, BATCH)
        ]
        spool = clone / "logs" / "predictions"
        while not set(ids) <= logged_ids(spool):
            assert time.monotonic() < deadline, "the server's log never held every request"
            time.sleep(0.5)
        labels = [
            {"request_id": ids[n // BATCH], "row": n % BATCH, "label": truth[n]} for n in range(LABELLED)
        ]
        (where / "labels.jsonl").write_text("".join(json.dumps(label) + "\n" for label in labels))
        run([tool, "--root", str(clone), "feedback", "import", str(where / "labels.jsonl")], cwd=clone)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert len(list((store / "predictions").glob("predictions-*.jsonl"))) == 1, "the closed file shipped"
    assert len(list((store / "labels").glob("labels-*.jsonl"))) == 1, "the labels shipped beside it"
    return shifted


def gh_calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in (record / "gh" / "calls.jsonl").read_text().splitlines()]


def pushed_alert(gateway: str) -> dict[str, float]:
    """The monitor_alert series the gateway holds: series -> value."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return {
        series: float(value)
        for series, _, value in (line.rpartition(" ") for line in lines)
        if series.startswith("monitor_alert{")
    }


def test_an_alert_opens_the_issue_and_a_retraining_pull_request_that_the_gate_judges(origins, tmp_path):
    store = tmp_path / "log-store"
    shifted = serve_and_label(origins.with_metrics, origins.project, tmp_path, store)

    # Main turns the loop on: the log's store, retraining on an alert, and the feedback as data.
    main = tmp_path / "main"
    run(["git", "clone", "-q", str(origins.with_metrics), str(main)], cwd=tmp_path)
    changes: dict[str, dict[str, object]] = {
        "monitor": {"log_uri": f"file://{store}", "retrain": True},
        "data": {"include_feedback": True},
    }
    edit_params(main, changes)
    nullable_sensitive_features(main)
    run(["git", "commit", "-qam", "Monitor the shipped log; retrain on alerts"], cwd=main)
    run(["git", "push", "-q", "origin", "main"], cwd=main)
    event = write_event(
        tmp_path, {"ref": "refs/heads/main", "inputs": {"hours": ""}, "repository": {"full_name": REPOSITORY}}
    )

    record = tmp_path / "record"
    runner_env = {"PATH": f"{STAND_IN_BIN}:{os.environ['PATH']}", "GH_RECORD_DIR": record / "gh"}
    with pushgateway(tmp_path) as gateway:
        outcome = run_act(
            main,
            event,
            main / ".github" / "workflows" / "monitor.yml",
            record,
            event_name="workflow_dispatch",
            secrets={"MONITOR_PR_TOKEN": "app-token-for-pull-requests", "PUSHGATEWAY_URL": gateway},
            runner_env=runner_env,
        )
        gauges = pushed_alert(gateway)
    print(f"act monitor: {outcome.seconds:.1f} s")
    assert outcome.returncode == 0, outcome.tail()
    assert "## Monitor: ALERT" in outcome.summary, outcome.tail()
    assert gauges == {'monitor_alert{instance="",job="model_monitor",model="ml-project"}': 1.0}, (
        outcome.tail()
    )

    calls = gh_calls(record)
    assert all(call["token"] for call in calls)
    [issue] = [call for call in calls if call["args"][:2] == ["issue", "create"]]
    assert issue["args"][issue["args"].index("--label") + 1] == "model-monitor"
    assert issue["body"].startswith("## Monitor: ALERT") and f"drift: {shifted}" in issue["body"], issue[
        "body"
    ]
    [pull] = [call for call in calls if call["args"][:2] == ["pr", "create"]]
    branch = pull["args"][pull["args"].index("--head") + 1]
    assert pull["args"][pull["args"].index("--base") + 1] == "main" and branch.startswith("monitor/retrain-")
    assert "## Monitor: ALERT" in pull["body"]

    # The branch holds the labelled served rows as training data, and the pipeline's new results.
    changed = run(["git", "diff", "--name-only", "main", branch], cwd=origins.with_metrics).stdout.split()
    assert {"data/feedback/labelled.csv", "dvc.lock", "metrics.json"} <= set(changed), changed
    rows = run(["git", "show", f"{branch}:data/feedback/labelled.csv"], cwd=origins.with_metrics).stdout
    assert len(rows.splitlines()) == 1 + LABELLED

    # The PR gate judges the retrained branch against main.
    clone = tmp_path / "pr"
    run(["git", "clone", "-q", "--branch", branch, str(origins.with_metrics), str(clone)], cwd=tmp_path)
    head = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    base = run(["git", "rev-parse", "origin/main"], cwd=clone).stdout.strip()
    repo = {"full_name": REPOSITORY, "fork": False}
    pr_event = {
        "action": "opened",
        "number": 8,
        "pull_request": {
            "number": 8,
            "user": {"login": "monitor-app[bot]"},
            "labels": [],
            "head": {"ref": branch, "sha": head, "repo": repo},
            "base": {"ref": "main", "sha": base, "repo": repo},
        },
        "repository": repo,
        "sender": {"login": "monitor-app[bot]"},
    }
    (tmp_path / "pr-event").mkdir()
    gate = run_act(
        clone,
        write_event(tmp_path / "pr-event", pr_event),
        ci_caller(clone, tmp_path / "ci-caller.yml", jobs=("report",)),
        tmp_path / "gate-record",
    )
    print(f"act pr gate on the retraining branch: {gate.seconds:.1f} s")
    comment = gate.comment
    assert comment is not None and WATERMARK_TITLE in comment, gate.tail()
    assert "Model gate passed" in comment or "Model gate failed" in comment, comment
