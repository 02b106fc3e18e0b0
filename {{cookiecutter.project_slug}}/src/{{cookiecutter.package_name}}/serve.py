"""The model server (FastAPI + uvicorn).

Requests are checked against the same data contract that training validates
with (`schema.yaml`), every prediction is logged, metrics are exposed, and the
model is swapped without a restart when its registry alias moves.

A *model source* is either a local MLflow model directory (`models/model`) or a
registry URI, `models:/<name>@<alias>` (or `models:/<name>/<version>`).

Access: the admin endpoint (`POST /admin/reload`) and the detail of `/version`
need the bearer token in `SERVE_ADMIN_TOKEN`; without one, only a server on a
loopback address answers them, and only to loopback clients (a server on any
other address refuses to start without it). Each logged prediction records
whether its request carried the admin token or `SERVE_TRUSTED_TOKEN`: the canary
replays trusted rows only, so anonymous callers cannot steer it.

Slow clients are cut off: a request's head and its body must each arrive within
`serving.body_timeout_seconds` (params.yaml): a stalled body gets
408, a stalled head is closed. Idle kept-alive connections close after
KEEP_ALIVE_SECONDS, and connections plus requests in progress are bounded by
MAX_CONCURRENCY (503 beyond). Tokens shorter than MIN_TOKEN_LENGTH are refused.

The hot path avoids pandas and scikit-learn's per-call checks (`fast_path.py`).
At every load the compiled path is compared with the pipeline itself on rows
drawn from the contract; if they differ, the server uses the pipeline.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, create_model
from starlette.exceptions import HTTPException

from .config import ADMIN_TOKEN_ENV, TRUSTED_TOKEN_ENV, Paths, ServingSettings, Settings
from .fast_path import compile_fast_path, fast_path_agrees, slow_predict
from .schema import ColumnRule, Contract

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 10
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_CONCURRENCY = 512  # connections plus requests in progress; beyond, new requests get 503
MIN_TOKEN_LENGTH = 16  # a shorter token could be guessed
INLINE_ROWS = 64  # larger batches (and the slow path) are predicted off the event loop
CHECK_ROWS = 64  # rows drawn from the contract to compare the fast path with the pipeline
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ServeError(ValueError):
    """The server cannot start or reload: no model, a bad source, a model that does not fit."""


# --- the request model, generated from the contract --------------------------------------------


def _field(rule: ColumnRule) -> tuple[object, object]:
    kind: object = {"integer": int, "number": float, "boolean": bool, "text": str}.get(rule.type, str)
    if rule.type == "category" and rule.values:
        kind = Literal[tuple(rule.values)]
    low, high = (rule.min, rule.max) if rule.type != "integer" else _int64_bounds(rule.min, rule.max)
    bounds = (("ge", low), ("le", high))
    constraints: dict[str, object] = {key: value for key, value in bounds if value is not None}
    if rule.type in ("integer", "number", "boolean"):
        # "5" is not a number and 1 is not a boolean: no silent coercion.
        constraints["strict"] = True
    if rule.type == "number":
        constraints["allow_inf_nan"] = False
    if rule.type == "integer":
        kind = Annotated[int, BeforeValidator(_whole_float_to_int)]  # 21.0 (pandas with gaps) is 21
    if rule.nullable:
        return kind | None, Field(default=None, **constraints)
    return kind, Field(..., **constraints)


def _whole_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _int64_bounds(low: float | None, high: float | None) -> tuple[int, int]:
    # An integer without a bound still has to fit the model's numbers.
    lowest, highest = -(2**63), 2**63 - 1
    return (
        lowest if low is None else max(lowest, math.ceil(low)),
        highest if high is None else min(highest, math.floor(high)),
    )


def request_model(contract: Contract, inputs: list[str]) -> type[BaseModel]:
    """One row of model inputs, generated from the contract: types, ranges, categories.

    Only the model's inputs are fields (not the target, not the sensitive features
    that the model does not use); any other key is refused.
    """
    missing = [name for name in inputs if name not in contract.columns]
    if missing:
        raise ServeError(f"the model needs columns the contract does not describe: {', '.join(missing)}")
    fields: dict[str, Any] = {name: _field(contract.columns[name]) for name in inputs}
    example = contract_rows(contract, inputs, 1)[0]
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    return create_model("PredictRow", __config__=config, **fields)


def body_model(row_model: type[BaseModel], max_rows: int) -> tuple[object, type[BaseModel]]:
    """The body of POST /predict, one row or `{"rows": [...]}`, and the batch model.

    An object whose `rows` is a list is a batch; any other object is one row. The
    discriminator keeps the error messages to the shape that was meant.
    """
    batch = create_model(
        "PredictBatch",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row_model], Field(..., min_length=1, max_length=max_rows)),
    )

    def shape(value: object) -> str:
        return "batch" if isinstance(value, dict) and isinstance(value.get("rows"), list) else "row"

    body = Annotated[
        Annotated[row_model, Tag("row")] | Annotated[batch, Tag("batch")],
        Discriminator(shape),
    ]
    return body, batch


class Problem(BaseModel):
    """Why a request was refused: `error` names the fields, `detail` has one entry per problem."""

    error: str
    detail: list[dict[str, Any]] = []


def response_model(classifier: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "model_version": (str, ...),
        "request_id": (str, ...),
        "predictions": (list[str | int | float | bool], ...),
    }
    if classifier:
        fields["probabilities"] = (list[dict[str, float]], ...)
    return create_model("Prediction", **fields)


def contract_rows(contract: Contract, inputs: Sequence[str], count: int, seed: int = 0) -> list[dict]:
    """Valid rows drawn from the contract: every category, both bounds, the middle, gaps where allowed."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = [{} for _ in range(count)]
    for name in inputs:
        rule = contract.columns[name]
        values = _column_values(rule, rng, count)
        for index, row in enumerate(rows):
            row[name] = values[index % len(values)]
    return rows


def _column_values(rule: ColumnRule, rng: np.random.Generator, count: int) -> list:
    low = rule.min if rule.min is not None else (rule.max - 100 if rule.max is not None else -100.0)
    high = rule.max if rule.max is not None else low + 200
    if rule.type == "category":
        values: list = list(rule.values or ["a", "b"])
    elif rule.type == "boolean":
        values = [True, False]
    elif rule.type == "text":
        values = ["a", "text never seen in training", ""]
    elif rule.type == "integer":
        low, high = math.ceil(low), math.floor(high)
        values = [low, high, (low + high) // 2, *map(int, rng.integers(low, high + 1, count))]
    else:
        values = [float(low), float(high), (low + high) / 2, *map(float, rng.uniform(low, high, count))]
    if rule.nullable:
        values.insert(1, None)
    return values


# --- the model served ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A loaded model: the pipeline, its compiled fast path, and what identifies it."""

    pipeline: Any
    version: str
    info: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""  # changes when the source holds another model
    fast: Callable[[list[dict]], tuple[list, list | None]] | None = None
    inputs: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None  # None for a regressor

    def predict(self, rows: list[dict]) -> tuple[list, list | None]:
        """Predictions (JSON-ready) and, for a classifier, class probabilities per row."""
        if self.fast is not None:
            return self.fast(rows)
        return slow_predict(self.pipeline, list(self.inputs), rows)


def serve_model(
    pipeline: Any, contract: Contract, version: str, info: dict | None = None, fingerprint: str = ""
) -> Served:
    """Wrap a fitted pipeline for serving: compile the fast path and check it against the pipeline."""
    from sklearn.base import is_classifier

    inputs = tuple(str(name) for name in pipeline.feature_names_in_)
    request_model(contract, list(inputs))  # the contract must describe every input
    fast = compile_fast_path(pipeline)
    if fast is not None and not fast_path_agrees(fast, pipeline, contract_rows(contract, inputs, CHECK_ROWS)):
        logger.warning("the compiled fast path disagrees with the pipeline: serving with the pipeline")
        fast = None
    classes = tuple(str(label) for label in pipeline.classes_) if is_classifier(pipeline) else None
    info = {**(info or {}), "fast_path": "yes" if fast else "no"}
    return Served(pipeline, version, info, fingerprint, fast, inputs, classes)


# --- model sources: a local directory or the registry ---------------------------------------------


class LocalSource:
    """An MLflow model directory written by the train stage."""

    def __init__(self, path: Path, project: Path | None = None) -> None:
        self.path = path
        self.project = project  # the project this model belongs to: its git commit and data hash

    def __str__(self) -> str:
        return str(self.path)

    def fingerprint(self) -> str:
        try:
            stat = (self.path / "model.skops").stat()
        except FileNotFoundError:
            raise ServeError(f"{self.path}: no model.skops here (run the train stage first)") from None
        return f"{stat.st_mtime_ns}:{stat.st_size}"

    def load(self, contract: Contract) -> Served:
        import yaml

        from .train import load_model

        fingerprint = self.fingerprint()
        metadata = (yaml.safe_load((self.path / "MLmodel").read_text()) or {}).get("metadata") or {}
        run_id = metadata.get("mlflow_run_id")
        if run_id:
            version = f"run-{run_id}"
        else:
            version = "sha-" + hashlib.sha256((self.path / "model.skops").read_bytes()).hexdigest()[:12]
        info = {"source": str(self.path)}
        if self.project is not None:
            info |= project_identity(self.project)
        info |= {key: str(value) for key, value in metadata.items()}
        return serve_model(load_model(self.path), contract, version, info, fingerprint)


class RegistrySource:
    """A registered model version in MLflow, by alias (followed when it moves) or by number."""

    def __init__(self, name: str, tracking_uri: str, alias: str | None = None, version: str | None = None):
        self.name, self.tracking_uri, self.alias, self.version = name, tracking_uri, alias, version

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    def _client(self):
        from .tracking import open_store

        return open_store(self.tracking_uri, self.name)

    def _resolve(self):
        from mlflow.exceptions import MlflowException

        from .tracking import ABSENT, store_errors

        client = self._client()
        with store_errors(self.tracking_uri):  # a broken store: one line naming it
            try:
                if self.alias:
                    return client.get_model_version_by_alias(self.name, self.alias)
                return client.get_model_version(self.name, str(self.version))
            except MlflowException as err:
                if err.error_code not in ABSENT:
                    raise
                where = f"not in the registry at {self.tracking_uri}"
                raise ServeError(f"{self}: {where} ({err.error_code})") from err

    def fingerprint(self) -> str:
        return str(self._resolve().version)

    def load(self, contract: Contract) -> Served:
        from .tracking import download_version
        from .train import load_model

        found = self._resolve()
        target = tempfile.mkdtemp(prefix="serve-model-")
        try:
            client, version = self._client(), str(found.version)
            local = download_version(client, self.tracking_uri, self.name, version, Path(target))
            pipeline = load_model(local)  # read whole into memory: the folder can go
        finally:
            shutil.rmtree(target, ignore_errors=True)
        tags = {key: str(value) for key, value in (found.tags or {}).items()}
        info = {
            "source": str(self),
            "registered_model": self.name,
            "registry_version": str(found.version),
            "mlflow_run_id": str(found.run_id or ""),
            **tags,
        }
        if self.alias:
            info["alias"] = self.alias
        return serve_model(pipeline, contract, str(found.version), info, str(found.version))


ModelSource = LocalSource | RegistrySource


def project_identity(root: Path) -> dict[str, str]:
    """The git commit and the data hash (from dvc.lock) of the project the model came from."""
    import yaml

    commit = os.environ.get("GIT_COMMIT", "")
    if not commit:
        with contextlib.suppress(OSError):
            result = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
            )
            commit = result.stdout.strip() if result.returncode == 0 else ""
    data = "unknown"
    with contextlib.suppress(OSError, yaml.YAMLError, AttributeError, IndexError, TypeError):
        lock = yaml.safe_load((root / "dvc.lock").read_text())
        data = str(lock["stages"]["ingest"]["outs"][0]["md5"])
    return {"git_commit": commit or "unknown", "data_md5": data}


def parse_source(text: str, settings: Settings, paths: Paths) -> ModelSource:
    """`models:/name@alias`, `models:/name/3`, or a model directory."""
    from .tracking import absolute_uri

    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    if text.startswith("models:/"):
        match = REGISTRY_URI.match(text)
        if match is None:
            raise ServeError(f"{text}: expected models:/<name>@<alias> or models:/<name>/<version>")
        return RegistrySource(match["name"], uri, alias=match["alias"], version=match["version"])
    path = Path(text)
    return LocalSource(path, paths.root if path.resolve() == paths.model.resolve() else None)


def default_source(settings: Settings, paths: Paths) -> ModelSource:
    """`models:/<registered_model>@<serving.alias>` when the registry has it, else models/model."""
    from .tracking import absolute_uri, local_store_present

    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    local = LocalSource(paths.model, paths.root)
    if not local_store_present(uri):
        return local  # no tracking store here (a container, a fresh clone): do not create one
    registry = RegistrySource(settings.mlflow.registered_model, uri, alias=settings.serving.alias)
    try:
        registry.fingerprint()
    except ServeError:
        return local
    return registry


# --- the prediction log ---------------------------------------------------------------------------


class PredictionLog:
    """JSON lines, written by a background thread in batches so the request path only enqueues."""

    _STOP = object()

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a", encoding="utf-8")
            self._thread = threading.Thread(target=self._write, name="prediction-log", daemon=True)
            self._thread.start()

    def write(self, record: dict) -> None:
        if self._thread is not None:
            self._queue.put(record)

    def _write(self) -> None:
        stop = False
        while not stop:
            records = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(records) < 1000:
                    records.append(self._queue.get_nowait())
            if records[-1] is self._STOP:
                records.pop()
                stop = True
            lines = []
            for record in records:
                record["time"] = datetime.fromtimestamp(record["time"], UTC).isoformat()
                lines.append(json.dumps(record, default=str) + "\n")
            try:
                self._handle.writelines(lines)
                self._handle.flush()
            except (OSError, ValueError):
                logger.exception("could not write %d prediction log record(s)", len(lines))
        self._handle.close()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join(timeout)


# --- who may do what ------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; any other name or address is not (it may resolve anywhere)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; never true for an empty token."""
    scheme, _, given = (authorization or "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(_bytes(given.strip()), _bytes(token))


def _bytes(text: str) -> bytes:
    return text.encode(errors="surrogateescape")  # any header or environment text, byte for byte


@dataclass(frozen=True)
class Access:
    """The tokens the server knows and whether it listens on loopback only."""

    admin_token: str = ""
    trusted_token: str = ""
    loopback: bool = False  # bound to a loopback address: without an admin token, loopback clients are admins

    @classmethod
    def from_env(cls, host: str | None, env: Mapping[str, str] = os.environ) -> "Access":
        admin, trusted = (env.get(name, "").strip() for name in (ADMIN_TOKEN_ENV, TRUSTED_TOKEN_ENV))
        return cls(admin, trusted, is_loopback(host))

    def is_admin(self, authorization: str | None, client: str | None) -> bool:
        if self.admin_token:
            return bearer_matches(authorization, self.admin_token)
        return self.loopback and is_loopback(client)

    def is_trusted(self, authorization: str | None) -> bool:
        """A request from a trusted source (trusted or admin token): the canary may replay its rows."""
        return any(bearer_matches(authorization, token) for token in (self.trusted_token, self.admin_token))


def check_access(host: str, access: Access) -> None:
    """Refuse a guessable token, and an admin token missing where anyone could call the server."""
    for name, token in ((ADMIN_TOKEN_ENV, access.admin_token), (TRUSTED_TOKEN_ENV, access.trusted_token)):
        if token and len(token) < MIN_TOKEN_LENGTH:
            raise ServeError(
                f"{name} has {len(token)} characters: use at least {MIN_TOKEN_LENGTH} "
                "(e.g. `openssl rand -hex 32`)"
            )
    if not access.admin_token and not is_loopback(host):
        raise ServeError(
            f"serving on {host} (not a loopback address) needs an admin token: "
            f"set {ADMIN_TOKEN_ENV}, or serve on 127.0.0.1"
        )


# --- the application ------------------------------------------------------------------------------


class State:
    """What the app serves now; swapped as a whole by a reload."""

    def __init__(self, served: Served, source: ModelSource | None) -> None:
        self.served = served
        self.source = source
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.refused = ""  # fingerprint of a model refused for its inputs: not loaded again
        self.reload_lock = asyncio.Lock()


def create_app(
    served: Served,
    contract: Contract,
    serving: ServingSettings,
    log: Path | None = None,
    source: ModelSource | None = None,
    access: Access | None = None,
):
    """The FastAPI app serving `served`; `source` (if given) is where reloads come from.

    `access` defaults to the tokens in the environment, on an address that is not loopback:
    without an admin token, nobody is an admin.
    """
    from fastapi import FastAPI, Header, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )

    state = State(served, source)
    access = access if access is not None else Access.from_env(None)
    row_model = request_model(contract, list(served.inputs))
    body_type, batch_model = body_model(row_model, serving.max_batch_rows)
    registry = CollectorRegistry()
    requests = Counter(
        "predict_requests", "Prediction requests by outcome", ["model_version", "status"], registry=registry
    )
    errors = Counter(
        "predict_errors", "Failed prediction requests", ["model_version", "reason"], registry=registry
    )
    latency = Histogram(
        "predict_latency_seconds",
        "Time from request to response, in the server",
        ["model_version"],
        registry=registry,
        buckets=LATENCY_BUCKETS,
    )
    predicted_rows = Counter("predict_rows", "Rows predicted", ["model_version"], registry=registry)
    model_info = Gauge(
        "model_info", "The model served (1)", ["model_version", "source", "fast_path"], registry=registry
    )
    reloads = Counter("model_reloads", "Model reload attempts by result", ["result"], registry=registry)
    predictions_log = PredictionLog(log)
    reasons = {413: "body_too_large", 422: "invalid_input", 500: "prediction_failed"}

    def show(current: Served) -> None:
        model_info.clear()
        model_info.labels(current.version, current.info.get("source", ""), current.info["fast_path"]).set(1)

    show(served)

    async def reload_model() -> bool:
        """Load the source again if it changed; swap only a model that takes the same inputs."""
        if state.source is None:
            raise ServeError("this server was started without a model source to reload from")
        async with state.reload_lock:
            current = state.served
            try:
                fingerprint = await asyncio.to_thread(state.source.fingerprint)
                if fingerprint == current.fingerprint:
                    return False
                if fingerprint == state.refused:
                    raise ServeError(f"{state.source}: that model was refused before: restart to serve it")
                new = await asyncio.to_thread(state.source.load, contract)
                if new.inputs != current.inputs or (new.classes is None) != (current.classes is None):
                    state.refused = fingerprint
                    raise ServeError(
                        f"model {new.version} takes other inputs than {current.version} "
                        f"({', '.join(new.inputs)}): restart the server to serve it"
                    )
            except Exception as err:
                reloads.labels("failed").inc()
                if isinstance(err, ServeError):
                    raise
                # A half-written directory, an unreadable file, a failed download: keep the current model.
                raise ServeError(f"could not load the model from {state.source}: {err}") from err
            state.served = new  # one assignment: each request uses the model it started with
            state.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
            show(new)
            reloads.labels("swapped").inc()
            logger.warning("serving model %s (was %s)", new.version, current.version)
            return True

    async def poll() -> None:
        while True:
            await asyncio.sleep(serving.reload_seconds)
            try:
                await reload_model()
            except ServeError as err:  # keep serving the current model
                logger.warning("model reload failed: %s", err)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        poller = None
        if source is not None and serving.reload_seconds > 0:
            poller = asyncio.create_task(poll())
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            predictions_log.close()

    app = FastAPI(
        title="Model server",
        version="1",
        lifespan=lifespan,
        description="Predictions from the model, checked against the data contract (schema.yaml).",
    )
    app.state.serve = state

    def record(scope: dict, status: int, elapsed: float) -> None:
        version = scope.get("model_version") or state.served.version
        requests.labels(version, str(status)).inc()
        if status >= 400:
            errors.labels(version, reasons.get(status, str(status))).inc()
        latency.labels(version).observe(elapsed)

    app.add_middleware(PredictGuard, limit=serving.max_body_bytes, path="/predict", record=record)
    app.add_middleware(BodyDeadline, seconds=read_timeout(serving))  # outermost: it bounds every body

    def is_admin(authorization: str | None, request: Request) -> bool:
        return access.is_admin(authorization, request.client and request.client.host)

    @app.post(
        "/predict",
        response_model=response_model(served.classes is not None),
        responses={
            413: {"model": Problem, "description": "request body too large"},
            422: {"model": Problem, "description": "invalid input: each field named in `detail`"},
            500: {"model": Problem, "description": "the model failed on this input"},
        },
    )
    async def predict(body: body_type, request: Request):  # type: ignore[valid-type]
        """One row (`{"column": value, ...}`) or a batch (`{"rows": [{...}, ...]}`)."""
        current = state.served
        request.scope["model_version"] = current.version
        rows = [row.__dict__ for row in (body.rows if isinstance(body, batch_model) else [body])]
        request_id = _request_id(request.headers.get("x-request-id"))
        try:
            if len(rows) <= INLINE_ROWS and current.fast is not None:
                predictions, probabilities = current.predict(rows)
            else:
                predictions, probabilities = await run_in_threadpool(current.predict, rows)
        except Exception:
            logger.exception("prediction failed (request %s)", request_id)
            return JSONResponse(
                {"error": "prediction failed", "detail": [], "request_id": request_id},
                status_code=500,
                headers={"x-request-id": request_id},
            )
        answer: dict[str, Any] = {
            "model_version": current.version,
            "request_id": request_id,
            "predictions": predictions,
        }
        if probabilities is not None:
            classes = current.classes or ()
            answer["probabilities"] = [dict(zip(classes, p, strict=True)) for p in probabilities]
        try:
            content = json.dumps(answer, allow_nan=False)
        except ValueError:  # NaN or infinity: JSON cannot carry it, and nobody should act on it
            return JSONResponse(
                {
                    "error": "invalid input: the model's answer is not a finite number "
                    "(are the inputs far outside the training data?)",
                    "detail": [],
                },
                status_code=422,
                headers={"x-request-id": request_id},
            )
        predicted_rows.labels(current.version).inc(len(rows))
        predictions_log.write(
            {
                "request_id": request_id,
                "time": time.time(),
                "model_version": current.version,
                "inputs": rows,
                "outputs": predictions,
                **({"probabilities": probabilities} if probabilities is not None else {}),
                "latency_ms": round((time.perf_counter() - request.scope["started"]) * 1000, 3),
                "trusted": access.is_trusted(request.headers.get("authorization")),
            }
        )
        return Response(content, media_type="application/json", headers={"x-request-id": request_id})

    @app.get("/health")
    async def health() -> dict:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "no model loaded"}})
    async def ready() -> JSONResponse:
        """A model is loaded and answers."""
        current = state.served
        if current is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": current.version})

    @app.get("/version")
    async def version(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
        """The model version served; for an admin also its source, git commit, data hash and run."""
        current = state.served
        brief = {"model_version": current.version, "loaded_at": state.loaded_at}
        return {**brief, **current.info} if is_admin(authorization, request) else brief

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/admin/reload",
        responses={
            401: {"description": "the admin token is missing or wrong"},
            403: {"description": "no admin token is set and this is not a loopback call"},
            409: {"description": "refused"},
        },
    )
    async def admin_reload(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
        """Load the model source again now (the server also polls it every `serving.reload_seconds`)."""
        if not is_admin(authorization, request):
            if access.admin_token:
                raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
            raise HTTPException(
                403, f"admin calls need {ADMIN_TOKEN_ENV} on the server (without it: loopback clients only)"
            )
        before = state.served.version
        try:
            changed = await reload_model()
        except ServeError as err:
            raise HTTPException(409, str(err)) from None
        return {"changed": changed, "model_version": state.served.version, "previous_version": before}

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"error": exc.detail, "detail": []}, status_code=413)

    @app.exception_handler(BodyTimeout)
    async def too_slow(request: Request, exc: BodyTimeout) -> JSONResponse:
        # The rest of the body may still come: close rather than read it as the next request.
        closing = {"Connection": "close"}
        return JSONResponse({"error": exc.detail, "detail": []}, status_code=408, headers=closing)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each field plainly: {"field": "age", "message": "...", "input": ...} beside FastAPI's detail.
        detail = []
        for error in exc.errors():
            location = [str(part) for part in error.get("loc", ()) if part not in ("body", "row", "batch")]
            detail.append(
                {
                    "field": ".".join(location) or "body",
                    "message": error.get("msg", "invalid"),
                    "type": error.get("type", ""),
                    "loc": list(error.get("loc", ())),
                }
            )
        fields = ", ".join(dict.fromkeys(item["field"] for item in detail))
        return JSONResponse({"error": f"invalid input: {fields}", "detail": detail}, status_code=422)

    return app


def _request_id(given: str | None) -> str:
    if given and len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


class PredictGuard:
    """ASGI middleware for one path: refuse bodies over the limit (413), time and count requests."""

    def __init__(self, app, limit: int, path: str, record: Callable[[dict, int, float], None]) -> None:
        self.app, self.limit, self.path, self.record = app, limit, path, record

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        started = scope["started"] = time.perf_counter()
        status = [500]

        async def reply(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(reply)
            self.record(scope, 413, time.perf_counter() - started)
            return
        seen = 0

        async def limited():
            # A body without a length (chunked) is counted as it arrives.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, reply)
        self.record(scope, status[0], time.perf_counter() - started)

    async def _too_large(self, send) -> None:
        body = json.dumps({"error": f"request body over {self.limit} bytes", "detail": []}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyDeadline:
    """ASGI middleware: the whole request body must arrive within `seconds` of its head, else 408.

    Only reading the body is bounded; waiting for a disconnect after it is not.
    """

    def __init__(self, app, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        done = False

        async def timed():
            nonlocal done
            if done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.seconds) from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


class BodyTimeout(HTTPException):
    """The body did not arrive in time (an HTTPException, so FastAPI passes it on, as BodyTooLarge)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s")


class BodyTooLarge(HTTPException):
    """Raised while reading a body without a length that grows over the limit.

    An HTTPException, so that FastAPI passes it on instead of calling it a parse error (400).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


# --- running it ---------------------------------------------------------------------------------


def read_timeout(serving: ServingSettings) -> float:
    """Seconds for a request's head, and then its body, to arrive."""
    return float(serving.body_timeout_seconds)


def run(settings: Settings, paths: Paths, model: str | None, host: str, port: int, log: bool) -> None:
    """Load the model from its source, then serve until SIGTERM or SIGINT (exit 0 after a clean stop).

    Refused (before anything loads) on an address that is not loopback without an admin token.
    """
    from .schema import load_contract

    access = Access.from_env(host)
    check_access(host, access)
    source = parse_source(model, settings, paths) if model else default_source(settings, paths)
    contract = load_contract(paths.contract)
    served = source.load(contract)
    log_path = paths.root / "logs" / "predictions.jsonl" if log else None
    app = create_app(served, contract, settings.serving, log_path, source, access)
    config = server_config(app, host, port, settings.serving)
    print(f"serve: model {served.version} from {source} on http://{host}:{port}", flush=True)
    _server(config).run()


def server_config(app, host: str, port: int, serving: ServingSettings):
    """uvicorn's settings: quiet, bounded in connections and in the time a slow client is given."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONCURRENCY,
        http=head_timeout_protocol(read_timeout(serving)),
    )


def head_timeout_protocol(seconds: float) -> type:
    """uvicorn's HTTP protocol, closing a connection whose next request head is not in within `seconds`.

    uvicorn times out only a kept-alive connection that sends nothing; one that is opened and
    stays silent, or trickles its head byte by byte, would be held forever.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class Protocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_head(None)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head(self.cycle)

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self, previous) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(seconds, self._head_overdue, previous)

        def _head_overdue(self, previous) -> None:
            # No request begun since `previous` (None: since the connection opened) was answered.
            waiting = self.cycle is previous and (previous is None or previous.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return Protocol


def _server(config):
    """uvicorn's server, but SIGTERM or SIGINT is a clean stop with exit code 0, not a re-raised signal."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield  # signals reach the main thread only (a server run by a test in a thread)
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server(config)
