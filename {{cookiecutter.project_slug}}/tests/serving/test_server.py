"""The model server: its request contract, every bad-input class, and its process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.serve import Served, create_app, request_model
from {{ cookiecutter.package_name }}.train import save_model

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def served(model) -> Served:
    return Served(model, "test-1", {"git_commit": "abc"})


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve") / "predictions.jsonl"


@pytest.fixture(scope="module")
def client(served, contract, settings, log_path) -> TestClient:
    return TestClient(create_app(served, contract, settings.task, settings.serving, log_path))


@pytest.fixture(scope="module")
def rows(served, test_set) -> list[dict]:
    return json.loads(test_set[served.inputs].head(3).to_json(orient="records"))


def column_of(contract, served, kind: str, bounded: bool = False) -> str:
    for name in served.inputs:
        rule = contract.columns[name]
        if rule.type in kind.split("|") and (not bounded or rule.max is not None):
            return name
    pytest.skip(f"the model has no {kind} input{' with a maximum' if bounded else ''} in the contract")


def test_one_row_gets_a_prediction_and_the_model_version(client, rows, settings):
    answer = client.post("/predict", json=rows[0])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "test-1"
    assert len(body["predictions"]) == 1
    if settings.task == "classification":
        assert sum(body["probabilities"][0].values()) == pytest.approx(1.0)


def test_a_batch_gets_one_prediction_per_row(client, rows, served, test_set):
    answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    expected = served.pipeline.predict(test_set[served.inputs].head(3))
    assert answer.json()["predictions"] == expected.tolist()


def test_missing_column_is_422_naming_it(client, rows, served):
    name = served.inputs[0]
    answer = client.post("/predict", json={k: v for k, v in rows[0].items() if k != name})
    assert answer.status_code == 422
    assert name in answer.text


def test_wrong_type_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "integer|number")
    answer = client.post("/predict", json={**rows[0], name: "not a number"})
    assert answer.status_code == 422
    assert name in answer.text


def test_out_of_range_value_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "integer|number", bounded=True)
    answer = client.post("/predict", json={**rows[0], name: contract.columns[name].max + 1000})
    assert answer.status_code == 422
    assert name in answer.text


def test_unknown_category_is_422_naming_the_field(client, rows, contract, served):
    name = column_of(contract, served, "category")
    answer = client.post("/predict", json={**rows[0], name: "no-such-category"})
    assert answer.status_code == 422
    assert name in answer.text


def test_unexpected_column_and_empty_batch_are_422(client, rows):
    assert client.post("/predict", json={**rows[0], "surprise": 1}).status_code == 422
    assert client.post("/predict", json={"rows": []}).status_code == 422


def test_oversized_body_is_413(client, rows, settings):
    padding = "x" * settings.serving.max_body_bytes
    answer = client.post("/predict", content=json.dumps({**rows[0], "pad": padding}))
    assert answer.status_code == 413


def test_request_model_refuses_inputs_the_contract_does_not_describe(contract):
    with pytest.raises(ValueError, match="does not describe: nope"):
        request_model(contract, ["nope"])


def test_health_ready_version_and_metrics(client, rows):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["model_version"] == "test-1"
    assert client.get("/version").json() == {"model_version": "test-1", "git_commit": "abc"}
    client.post("/predict", json=rows[0])
    client.post("/predict", json={})
    metrics = client.get("/metrics").text
    assert 'predict_requests_total{model_version="test-1",status="200"}' in metrics
    assert 'predict_requests_total{model_version="test-1",status="422"}' in metrics
    assert "predict_latency_seconds_bucket" in metrics


def test_every_prediction_is_logged(client, rows, log_path):
    before = log_path.read_text().count("\n") if log_path.exists() else 0
    client.post("/predict", json={"rows": rows[:2]})
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(records) == before + 1
    assert {"request_id", "time", "model_version", "inputs", "outputs", "latency_ms"} <= set(records[-1])
    assert len(records[-1]["inputs"]) == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_process_starts_answers_and_stops_on_sigterm(model, root, tmp_path, rows):
    save_model(model, tmp_path / "model", metadata={"mlflow_run_id": "abc"})
    port = free_port()
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--root", str(root), "serve"]
    command += ["--model", str(tmp_path / "model"), "--port", str(port), "--no-log"]
    server = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                    assert json.load(answer)["model_version"] == "run-abc"
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not become ready within 60 s"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps(rows[0]).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert len(json.load(answer)["predictions"]) == 1
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=15) in (0, -signal.SIGTERM)
        assert b"Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
