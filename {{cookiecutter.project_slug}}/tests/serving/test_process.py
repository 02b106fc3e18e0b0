"""The server as a process: `<package> serve` starts on a loopback port, answers, and
stops cleanly on SIGTERM (exit code 0, in bounded time, requests in flight answered),
as a container runtime expects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from serving_helpers import PACKAGE, STOP_WITHIN, start_server, stop

from {{ cookiecutter.package_name }}.artifacts import save_model
from {{ cookiecutter.package_name }}.deploy.servers import free_port, request, started
from {{ cookiecutter.package_name }}.served_log import newest_records

pytestmark = pytest.mark.serving


def test_server_starts_answers_and_stops_on_sigterm(root, model_dir, rows, tmp_path):
    server = start_server(root, model_dir, tmp_path / "server.log")
    statuses: list[int] = []

    def client() -> None:
        # Batches back to back until the server stops listening: each is answered or refused,
        # never cut off mid-answer.
        while True:
            try:
                statuses.append(request(server.url, "POST", "/predict", {"rows": rows})[0])
            except OSError:
                return

    try:
        _, version = request(server.url, "GET", "/version")
        assert version["model_version"] == "run-abc"
        assert version["fast_path"] == "yes"
        status, body = request(server.url, "POST", "/predict", rows[0])
        assert status == 200 and len(body["predictions"]) == 1
        status, body = request(server.url, "POST", "/predict", {**rows[0], "surprise": 1})
        assert status == 422 and "surprise" in body["error"]
        threads = [threading.Thread(target=client) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
    finally:
        started = time.monotonic()
        code = stop(server)
    stopped = time.monotonic() - started
    for thread in threads:
        thread.join(10)
    output = server.output.read_text()
    assert code == 0, output
    assert stopped < STOP_WITHIN
    assert "Traceback" not in output, output
    assert statuses and set(statuses) == {200}
    assert "serve: model run-abc" in output


def test_a_missing_model_is_a_clear_error_not_a_traceback(root, tmp_path):
    command = [sys.executable, "-m", PACKAGE, "--root", str(root), "serve", "--model", str(tmp_path / "none")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "no model.skops" in result.stderr
    assert "Traceback" not in result.stderr


def request_text(url: str, path: str) -> str:
    with urllib.request.urlopen(url + path, timeout=10) as answer:
        return answer.read().decode()


def requests_counted(metrics: str) -> float:
    """predict_requests_total with status 200, over every model version, from /metrics' text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("predict_requests_total{") and 'status="200"' in line
    )


def test_worker_processes_share_their_counts_in_multiprocess_mode(root, model_dir, rows, tmp_path):
    """Several server processes behind one address: each one's /metrics must count them all, or a
    scrape sees one worker's share. Without the shared folder (the fault), each counts its own."""
    for shared in (True, False):
        folder = tmp_path / f"metrics-{shared}"
        folder.mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)} if shared else {}
        servers = [
            start_server(root, model_dir, tmp_path / f"server-{shared}-{n}.log", env=env) for n in (1, 2)
        ]
        try:
            for server, sent in zip(servers, (3, 2), strict=True):
                for _ in range(sent):
                    assert request(server.url, "POST", "/predict", rows[0])[0] == 200
            texts = [request_text(server.url, "/metrics") for server in servers]
        finally:
            for server in servers:
                stop(server)
        counted = [requests_counted(text) for text in texts]
        assert counted == ([5.0, 5.0] if shared else [3.0, 2.0]), counted
        if shared:
            assert 'model_info{fast_path="yes",model_version="run-abc"' in texts[0]


def scratch_project(root: Path, folder: Path, **serving: object) -> Path:
    """A project folder of params.yaml (serving: as given, its log under the folder) and the
    contract, for a server whose log and model a test may change."""
    folder.mkdir()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["serving"] |= serving
    params["serving"]["log"] = {**params["serving"].get("log", {}), "uri": "logs/predictions"}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(root / "schema.yaml", folder / "schema.yaml")
    return folder


def every_worker_started(log: Path, workers: int, within: float = 60.0) -> None:
    """Until each worker has loaded its model (its `serve: model` line, printed as it starts to
    listen); a worker started late would see none of the requests the kernel spreads."""
    deadline = time.monotonic() + within
    while log.read_text().count("serve: model ") < workers:
        assert time.monotonic() < deadline, (
            f"not {workers} workers after {within:g} s:\n{log.read_text()[-2000:]}"
        )
        time.sleep(0.2)
    time.sleep(0.5)  # from that line to listening


FOLLOW_WITHIN = 30.0  # seconds for every worker to serve a rewritten model (they look every second)


def test_workers_share_the_address_the_counts_and_the_log_and_all_follow_a_new_model(
    root, model, shuffled_model, rows, tmp_path
):
    """`serve --workers 2`: one address, two processes. Any one's /metrics counts both; each writes
    its own log file and no request is lost; a rewritten model reaches both; SIGTERM stops both."""
    project = scratch_project(root, tmp_path / "project", reload_seconds=1)
    path = project / "models" / "model"
    save_model(model, path, metadata={"mlflow_run_id": "first"})
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    server = started(project, ["--model", str(path), "--workers", "2"], env, tmp_path / "server.log")
    every_worker_started(tmp_path / "server.log", 2)  # /ready answered by one; the other may still load
    sent = 0
    try:
        for _ in range(30):  # each on a connection of its own: the kernel spreads them
            assert request(server.url, "POST", "/predict", rows[0])[0] == 200
            sent += 1
        assert {requests_counted(request_text(server.url, "/metrics")) for _ in range(6)} == {30.0}
        save_model(shuffled_model, path, metadata={"mlflow_run_id": "second"})
        changed, deadline = time.monotonic(), time.monotonic() + FOLLOW_WITHIN
        while True:
            versions = set()
            for _ in range(20):
                status, answer = request(server.url, "POST", "/predict", rows[0])
                assert status == 200
                versions.add(answer["model_version"])
                sent += 1
            if versions == {"run-second"}:
                break
            assert time.monotonic() < deadline, f"still {versions} after {FOLLOW_WITHIN:g} s"
            time.sleep(0.5)
        print(f"both workers serve the new model {time.monotonic() - changed:.1f} s after it was written")
    finally:
        code = stop(server)
    assert code == 0, server.tail()
    files = list((project / "logs" / "predictions").glob("*.jsonl"))
    assert len(files) == 2, files  # one per worker
    assert len(list(newest_records(project / "logs" / "predictions"))) == sent


def test_workers_that_cannot_start_are_one_line_and_stop_together(root, tmp_path):
    project = scratch_project(root, tmp_path / "project")
    command = [sys.executable, "-m", PACKAGE, "--root", str(project), "serve", "--workers", "2"]
    command += ["--model", str(tmp_path / "none"), "--port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no model.skops" in result.stderr and "a worker stopped" in result.stderr
    assert "Traceback" not in result.stderr
