"""The model server (FastAPI): requests are checked against the same data contract
that training validates with, every prediction is logged, metrics are exposed."""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from .config import ServingSettings
from .schema import ColumnRule, Contract


@dataclass(frozen=True)
class Served:
    """A loaded model and what identifies it."""

    pipeline: object
    version: str
    info: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        return [str(name) for name in self.pipeline.feature_names_in_]


def _field(rule: ColumnRule) -> tuple[object, object]:
    kind = {"integer": int, "number": float, "boolean": bool, "text": str}.get(rule.type)
    if rule.type == "category":
        kind = Literal[tuple(rule.values)] if rule.values else str
    bounds = {key: value for key, value in (("ge", rule.min), ("le", rule.max)) if value is not None}
    if rule.nullable:
        return kind | None, Field(default=None, **bounds)
    return kind, Field(..., **bounds)


def request_model(contract: Contract, inputs: list[str]) -> type[BaseModel]:
    """One row of model inputs, generated from the contract: types, ranges, categories."""
    missing = [name for name in inputs if name not in contract.columns]
    if missing:
        raise ValueError(f"the model needs columns the contract does not describe: {', '.join(missing)}")
    fields = {name: _field(contract.columns[name]) for name in inputs}
    return create_model("Row", __config__=ConfigDict(extra="forbid"), **fields)


def load_local(path: Path) -> Served:
    """A model directory written by the train stage, identified by its MLflow run."""
    import yaml

    from .train import load_model

    metadata = (yaml.safe_load((path / "MLmodel").read_text()) or {}).get("metadata") or {}
    version = metadata.get("mlflow_run_id", "local")
    return Served(load_model(path), f"run-{version}", {"source": str(path), **metadata})


class PredictionLog:
    """JSON lines, appended under a lock: request id, time, version, inputs, outputs, latency."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        if self._handle is None:
            return
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()


def create_app(served: Served, contract: Contract, task: str, serving: ServingSettings, log: Path | None):
    from fastapi import FastAPI, Request
    from fastapi.exception_handlers import request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    row_model = request_model(contract, served.inputs)
    batch_model = create_model(
        "Batch",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row_model], Field(..., min_length=1, max_length=serving.max_batch_rows)),
    )
    registry = CollectorRegistry()
    requests = Counter(
        "predict_requests", "Prediction requests", ["model_version", "status"], registry=registry
    )
    latency = Histogram(
        "predict_latency_seconds",
        "Time to answer a prediction request",
        ["model_version"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
    predictions_log = PredictionLog(log)
    app = FastAPI(title="Model server", version="1")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and int(length) > serving.max_body_bytes:
            requests.labels(served.version, "413").inc()
            return JSONResponse(
                {"detail": f"request body over {serving.max_body_bytes} bytes"}, status_code=413
            )
        return await call_next(request)

    @app.post("/predict")
    def predict(body: row_model | batch_model) -> dict:  # type: ignore[valid-type]
        start = time.perf_counter()
        rows = body.rows if isinstance(body, batch_model) else [body]
        frame = pd.DataFrame([row.model_dump() for row in rows], columns=served.inputs)
        predictions = served.pipeline.predict(frame)
        answer = {"model_version": served.version, "predictions": predictions.tolist()}
        if task == "classification":
            classes = [str(c) for c in served.pipeline.classes_]
            probabilities = served.pipeline.predict_proba(frame)
            answer["probabilities"] = [dict(zip(classes, map(float, p), strict=True)) for p in probabilities]
        elapsed = time.perf_counter() - start
        requests.labels(served.version, "200").inc()
        latency.labels(served.version).observe(elapsed)
        predictions_log.write(
            {
                "request_id": str(uuid.uuid4()),
                "time": time.time(),
                "model_version": served.version,
                "inputs": [row.model_dump() for row in rows],
                "outputs": answer["predictions"],
                "latency_ms": round(elapsed * 1000, 3),
            }
        )
        return answer

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready", "model_version": served.version}

    @app.get("/version")
    def version() -> dict:
        return {"model_version": served.version, **served.info}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def count_bad_requests(request: Request, exc: RequestValidationError):
        requests.labels(served.version, "422").inc()
        return await request_validation_exception_handler(request, exc)

    return app
