"""Health, readiness, version and metrics; the prediction log; a failing model;
reloading a model without dropping requests."""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT, answering_nan

from {{ cookiecutter.package_name }}.artifacts import save_model
from {{ cookiecutter.package_name }}.pipeline.train import fit
from {{ cookiecutter.package_name }}.served_log import log_files, newest_records
from {{ cookiecutter.package_name }}.serving.app import NOT_FINITE

pytestmark = pytest.mark.serving


def test_health_ready_and_version(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "model_version": "test-1"}
    version = client.get("/version").json()
    assert version["model_version"] == "test-1"
    assert version["git_commit"] == "abc"
    assert version["fast_path"] == "yes"


def test_metrics_count_requests_errors_and_latency_by_model_version(client, rows):
    client.post("/predict", json=rows[0])
    client.post("/predict", json={})
    client.post("/predict", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"})
    text = client.get("/metrics").text
    for line in (
        'predict_requests_total{model_version="test-1",status="200"}',
        'predict_requests_total{model_version="test-1",status="422"}',
        'predict_requests_total{model_version="test-1",status="413"}',
        'predict_errors_total{model_version="test-1",reason="invalid_input"}',
        'predict_errors_total{model_version="test-1",reason="body_too_large"}',
        'predict_latency_seconds_bucket{le="0.005",model_version="test-1"}',
        'model_info{fast_path="yes",model_version="test-1",source=""} 1.0',
    ):
        assert line in text, line


def test_every_prediction_is_logged(app_for, served, rows, tmp_path):
    log = tmp_path / "logs" / "predictions"
    with TestClient(app_for(served, log)) as client:
        first = client.post("/predict", json=rows[0], headers={"X-Request-ID": "req-1"}).json()
        client.post("/predict", json={"rows": rows[:3]})
        client.post("/predict", json={})  # refused: logged as such, with the fields it lacked
        client.get("/health")  # not a prediction: not logged
        deadline = time.monotonic() + 10  # written in the background, soon
        while 'prediction_log_records_total{result="written"} 3.0' not in client.get("/metrics").text:
            assert time.monotonic() < deadline, "the three records were not counted as written"
            time.sleep(0.05)
    records = list(reversed(list(newest_records(log))))  # the app stopped: all written
    assert len(log_files(log)) == 1
    assert [len(record["inputs"]) for record in records] == [1, 3, 0]
    assert [record.get("error") for record in records] == [None, None, "invalid_input"]
    assert records[2]["fields"] and records[2]["outputs"] is None
    assert records[0]["request_id"] == first["request_id"] == "req-1"
    assert records[0]["inputs"] == [rows[0]]
    assert records[0]["outputs"] == first["predictions"]
    assert records[0]["model_version"] == "test-1"
    assert records[0]["model_name"] == ""  # a model served without a source
    assert records[0]["time"].endswith("+00:00")
    assert 0 < records[0]["latency_ms"] < 10_000
    assert records[0].get("probabilities") == first.get("probabilities")  # a classifier's, per class


def test_a_failing_model_is_a_500_and_the_server_keeps_answering(app_for, served, rows):
    def fail(batch):
        raise RuntimeError("the model broke")

    broken = dataclasses.replace(served, fast=fail)
    with TestClient(app_for(broken), raise_server_exceptions=False) as client:
        answer = client.post("/predict", json=rows[0])
        assert answer.status_code == 500
        assert answer.json()["error"] == "prediction failed"
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
        assert client.get("/health").status_code == 200
        assert 'reason="prediction_failed"' in client.get("/metrics").text


def test_a_model_answering_nan_is_a_500_of_its_own_not_a_client_error(app_for, served, rows, tmp_path):
    broken = answering_nan(served)
    log = tmp_path / "logs" / "predictions"
    with TestClient(app_for(broken, log)) as client:
        answer = client.post("/predict", json=rows[0], headers={"X-Request-ID": "nan-1"})
        assert answer.status_code == 500
        assert answer.json() == {"error": NOT_FINITE, "detail": [], "request_id": "nan-1"}
        text = client.get("/metrics").text
        assert 'predict_errors_total{model_version="test-1",reason="non_finite_output"} 1.0' in text
        assert 'reason="invalid_input"' not in text
    [record] = newest_records(log)
    assert record["error"] == "non_finite_output" and record["outputs"] is None
    assert record["request_id"] == "nan-1" and record["inputs"] == [rows[0]]


def test_reload_swaps_the_model_when_the_directory_changes(app_for, local_model, model, contract, rows):
    source = local_model
    with TestClient(app_for(source.load(contract), source=source), client=LOOPBACK_CLIENT) as client:
        assert client.post("/admin/reload").json()["changed"] is False  # nothing new yet
        assert client.post("/predict", json=rows[0]).json()["model_version"] == "run-first"
        save_model(model, source.path, metadata={"mlflow_run_id": "second"})
        answer = client.post("/admin/reload").json()
        assert answer == {"changed": True, "model_version": "run-second", "previous_version": "run-first"}
        assert client.post("/predict", json=rows[0]).json()["model_version"] == "run-second"
        assert client.get("/version").json()["mlflow_run_id"] == "second"
        assert 'model_reloads_total{result="swapped"} 1.0' in client.get("/metrics").text


def test_the_server_polls_its_source(app_for, local_model, model, contract, rows):
    source = local_model
    app = app_for(source.load(contract), source=source, reload_seconds=0.2)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        save_model(model, source.path, metadata={"mlflow_run_id": "polled"})
        deadline = time.monotonic() + 20
        while client.get("/version").json()["model_version"] != "run-polled":
            assert time.monotonic() < deadline, "the new model was not picked up"
            assert client.post("/predict", json=rows[0]).status_code == 200  # served all along
            time.sleep(0.1)


def test_reload_refuses_a_model_with_other_inputs(app_for, local_model, model, contract, train_set, settings):
    source = local_model
    if len(model.feature_names_in_) < 2:
        pytest.skip("the model has one input")
    smaller = fit(train_set.drop(columns=[model.feature_names_in_[-1]]), settings)
    with TestClient(app_for(source.load(contract), source=source), client=LOOPBACK_CLIENT) as client:
        save_model(smaller, source.path, metadata={"mlflow_run_id": "fewer"})
        answer = client.post("/admin/reload")
        assert answer.status_code == 409
        assert "restart the server" in answer.json()["detail"]
        assert client.get("/version").json()["model_version"] == "run-first"


def test_reload_of_a_missing_model_keeps_the_current_one(app_for, local_model, contract, rows):
    source = local_model
    with TestClient(app_for(source.load(contract), source=source), client=LOOPBACK_CLIENT) as client:
        shutil.rmtree(source.path)
        assert client.post("/admin/reload").status_code == 409
        assert client.post("/predict", json=rows[0]).json()["model_version"] == "run-first"


def test_reload_needs_a_source(app_for, served):
    with TestClient(app_for(served), client=LOOPBACK_CLIENT) as client:
        answer = client.post("/admin/reload")
        assert answer.status_code == 409 and "without a model source" in answer.json()["detail"]
