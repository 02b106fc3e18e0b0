"""The FastAPI application: /predict, /explain, /health, /ready, /version, /metrics and /admin/reload.

`create_app` wires the parts; each group of routes is added by a function of its own.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from starlette.exceptions import HTTPException

from ..config.serving import ADMIN_TOKEN_ENV, ServingSettings, SplitSettings
from ..schema import Contract
from .access import Access
from .challenger import CHALLENGER, CHAMPION, Shadow, check_challenger, to_challenger
from .context import check_context
from .errors import ServeError
from .log import PredictionLog, log_record, refused_record
from .metrics import ServerMetrics
from .middleware import BodyDeadline, BodyTimeout, BodyTooLarge, PredictGuard, read_timeout
from .reload import Reloader, State
from .requests import Problem, body_model, request_model, response_model
from .sources import ModelSource, Served

logger = logging.getLogger(__name__)

INLINE_ROWS = 64  # larger batches (and the slow path) are predicted off the event loop
PREDICT_ERRORS: dict = {
    413: {"model": Problem, "description": "request body too large"},
    422: {"model": Problem, "description": "invalid input: each field named in `detail`"},
    500: {"model": Problem, "description": "the model failed on this input, or gave no finite answer"},
}
ADMIN_ERRORS: dict = {  # of every admin route that takes a body
    401: {"model": Problem, "description": "the admin token is missing or wrong"},
    403: {"model": Problem, "description": "no admin token is set and this is not a loopback call"},
    413: {"model": Problem, "description": "request body too large"},
}
EXPLAIN_ERRORS: dict = {
    **ADMIN_ERRORS,
    422: {"model": Problem, "description": "invalid input: each field named in `detail`"},
    500: {"model": Problem, "description": "the model could not be explained on this input"},
}
FEEDBACK_ERRORS: dict = {
    **ADMIN_ERRORS,
    422: {"model": Problem, "description": "nothing stored: each refused label named in `detail`"},
    503: {"model": Problem, "description": "the server writes no prediction log"},
}
# The inputs passed the contract, so this is the model's fault, not the client's: a 500 of its own.
NOT_FINITE = "the model's answer is not a finite number"
NOT_FINITE_REASON = "non_finite_output"


def create_app(
    served: Served,
    contract: Contract,
    serving: ServingSettings,
    log: Path | None = None,
    source: ModelSource | None = None,
    access: Access | None = None,
    challenger: Served | None = None,
    challenger_source: ModelSource | None = None,
):
    """The FastAPI app serving `served`; `source` (if given) is where reloads come from.

    `access` defaults to the tokens in the environment, on an address that is not loopback:
    without an admin token, nobody is an admin. `log` is the prediction log's folder (None: no log).
    `challenger` is scored in shadow (`serving.shadow`) or answers a split (`serving.split`);
    `challenger_source` is where it is reloaded from (and first loaded, once its alias exists).
    """
    from fastapi import FastAPI

    if challenger is not None:
        check_challenger(challenger, served)
    state = State(served, source, challenger, challenger_source)
    access = access if access is not None else Access.from_env(None)
    check_context(serving.log.context, served.inputs, access.log_key if log is not None else None)
    metrics = ServerMetrics()
    metrics.show(served)
    reloader = Reloader(state, contract, metrics)
    predictions_log = PredictionLog(log, serving.log, access.log_key, metrics.count_log_records)
    shadow = shadow_of(state, serving, predictions_log, metrics) if log is not None else None
    polled = source is not None or challenger_source is not None
    closing = [shadow.close] if shadow is not None else []  # the shadow's last records go to the log
    app = FastAPI(
        title="Model server",
        version="1",
        lifespan=lifespan_of(reloader, serving, polled, [*closing, predictions_log.close, metrics.close]),
        description="Predictions from the model, checked against the data contract (schema.yaml).",
    )
    app.state.serve = state

    limit = serving.max_body_bytes
    app.add_middleware(PredictGuard, limit=limit, path="/predict", record=recorder(metrics, state))
    app.add_middleware(BodyDeadline, seconds=read_timeout(serving))  # bounds every route's body
    row_model = request_model(contract, list(served.inputs), list(serving.log.context))
    add_predict_route(app, state, row_model, serving, metrics, predictions_log, access, shadow)
    add_explain_route(app, state, row_model, access, serving.max_body_bytes)
    add_feedback_route(app, access, log, metrics, serving)
    add_info_routes(app, state, metrics, access)
    add_admin_routes(app, state, reloader, access)
    add_error_handlers(app, refusals(state, predictions_log))
    return app


def shadow_of(
    state: State, serving: ServingSettings, predictions_log: PredictionLog, metrics: ServerMetrics
) -> Shadow | None:
    """The challenger's shadow scoring, in shadow mode with a challenger (or a source to load it from)."""
    if not serving.shadow or (state.challenger is None and state.challenger_source is None):
        return None
    limit = serving.log.queue_records
    return Shadow(
        lambda: state.challenger, predictions_log.write, limit, metrics.count_shadow, serving.shadow_share
    )


def lifespan_of(
    reloader: Reloader, serving: ServingSettings, polled: bool, closers: list[Callable[[], None]]
):
    """Poll the model sources while the app runs; on shutdown, call `closers` in order."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with polling(reloader, serving, enabled=polled):
            try:
                yield
            finally:
                for close in closers:
                    close()

    return lifespan


def recorder(metrics: ServerMetrics, state: State) -> Callable[[dict, int, float], None]:
    """Count a /predict request under the version that answered it (else the one served now)."""

    def record(scope: dict, status: int, elapsed: float) -> None:
        version = scope.get("model_version") or state.served.version
        metrics.record(version, status, elapsed, scope.get("error_reason"))

    return record


@contextlib.asynccontextmanager
async def polling(reloader: Reloader, serving: ServingSettings, enabled: bool):
    """Poll the model source every `serving.reload_seconds` while the app runs (0: never)."""
    import asyncio

    poller = asyncio.create_task(reloader.poll(serving)) if enabled and serving.reload_seconds > 0 else None
    try:
        yield
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


def not_counted(scope: dict, status: int, elapsed: float) -> None:
    """/explain is a debugging aid: its requests stay out of the prediction metrics."""


def add_predict_route(
    app,
    state: State,
    row_model: Any,
    serving: ServingSettings,
    metrics: ServerMetrics,
    predictions_log: PredictionLog,
    access: Access,
    shadow: Shadow | None,
) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response

    served = state.served
    body_type, batch_model = body_model(row_model, serving.max_batch_rows)
    context = frozenset(serving.log.context)
    split = serving.split if serving.split.alias else None

    @app.post("/predict", response_model=response_model(served.classes is not None), responses=PREDICT_ERRORS)
    async def predict(body: body_type, request: Request):  # type: ignore[valid-type]
        """One row (`{"column": value, ...}`) or a batch (`{"rows": [{...}, ...]}`)."""
        sent = [row.__dict__ for row in body_rows(body, batch_model)]
        rows = [without(row, context) for row in sent] if context else sent  # context never reaches the model
        request_id = checked_request_id(request.headers.get("x-request-id"))
        headers = {"x-request-id": request_id}
        current, arm = answering(state, split, sent, request_id)
        request.scope["model_version"] = current.version
        try:
            predictions, probabilities = await model_answers(current, rows)
        except Exception:
            logger.exception("prediction failed (request %s)", request_id)
            failed = {"error": "prediction failed", "detail": [], "request_id": request_id}
            return JSONResponse(failed, status_code=500, headers=headers)
        answer = prediction_answer(current, request_id, predictions, probabilities)
        started = request.scope["started"]
        trusted = access.is_trusted(request.headers.get("authorization"))
        try:
            content = json.dumps(answer, allow_nan=False)
        except ValueError:  # NaN or infinity: JSON cannot carry it, and nobody should act on it
            request.scope["error_reason"] = NOT_FINITE_REASON
            unanswered = {"request_id": request_id, "model_version": current.version}
            unanswered["error"] = NOT_FINITE_REASON
            predictions_log.write(log_record(unanswered, current.name, sent, started, trusted, arm))
            refused = {"error": NOT_FINITE, "detail": [], "request_id": request_id}
            return JSONResponse(refused, status_code=500, headers=headers)
        metrics.rows.labels(current.version).inc(len(rows))
        predictions_log.write(log_record(answer, current.name, sent, started, trusted, arm))
        if shadow is not None:
            shadow.submit(request_id, sent, trusted)
        return Response(content, media_type="application/json", headers=headers)


def answering(
    state: State, split: SplitSettings | None, rows: list[dict], request_id: str
) -> tuple[Served, str]:
    """The model that answers this request, and its arm ("" when no challenger runs)."""
    if state.challenger is None:
        return state.served, ""
    if to_challenger(split, rows, request_id):
        return state.challenger, CHALLENGER
    return state.served, CHAMPION


async def model_answers(current: Served, rows: list[dict]) -> tuple[list, list | None]:
    """Small batches on the compiled fast path, in the event loop; the rest in a worker thread."""
    from fastapi.concurrency import run_in_threadpool

    if len(rows) <= INLINE_ROWS and current.fast is not None:
        return current.predict(rows)
    return await run_in_threadpool(current.predict, rows)


def body_rows(body: Any, batch_model: Any) -> list:
    """A batch's rows, or a single row as a list (models made at run time: Any to the type checker)."""
    return body.rows if isinstance(body, batch_model) else [body]


def prediction_answer(
    current: Served, request_id: str, predictions: list, probabilities: list | None
) -> dict:
    answer: dict[str, Any] = {
        "model_version": current.version,
        "request_id": request_id,
        "predictions": predictions,
    }
    if probabilities is not None:
        classes = current.classes or ()
        answer["probabilities"] = [dict(zip(classes, p, strict=True)) for p in probabilities]
    return answer


def without(row: dict, names: frozenset[str]) -> dict:
    return {name: value for name, value in row.items() if name not in names}


def add_explain_route(app, state: State, row_model: Any, access: Access, max_body_bytes: int) -> None:
    """POST /explain: one row step by step (serving/explain.py), for admins only.

    It shows the model's internals (coefficients, each feature's weight), which make the model easy
    to copy, and SHAP on a forest costs far more than a prediction: the same rule as /admin/reload.
    """
    from fastapi import Depends, Header, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    app.add_middleware(PredictGuard, limit=max_body_bytes, path="/explain", record=not_counted)

    # A dependency: run before the body is validated, so a stranger learns nothing of the inputs.
    async def admin_only(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
        require_admin(access, authorization, request.client and request.client.host)

    @app.post("/explain", dependencies=[Depends(admin_only)], responses=EXPLAIN_ERRORS)
    async def explain_row(body: row_model) -> Response:
        """One row (`{"column": value, ...}`): each pipeline step's output, the scores and each
        feature's contribution (exact for linear models, SHAP for trees)."""
        from .explain import ExplainError, explain

        current = state.served
        try:
            explanation = await run_in_threadpool(explain, current.pipeline, body.__dict__, current.version)
            content = json.dumps(explanation.as_dict(), allow_nan=False)
        except ExplainError as err:
            return JSONResponse({"error": str(err), "detail": []}, status_code=500)
        except ValueError:  # NaN or infinity in a score: as /predict
            return JSONResponse({"error": NOT_FINITE, "detail": []}, status_code=500)
        return Response(content, media_type="application/json")


def add_feedback_route(
    app, access: Access, log: Path | None, metrics: ServerMetrics, serving: ServingSettings
):
    """POST /feedback: the true labels of served rows, for admins (feedback.py), all or nothing."""
    import threading

    from fastapi import Header, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from ..feedback import accept, labels_beside, parse_items, ship_labels, summary
    from ..served_log import remote, shipped_labels

    app.add_middleware(PredictGuard, limit=serving.max_body_bytes, path="/feedback", record=not_counted)
    one_at_a_time = threading.Lock()  # check, then append: two batches must not both pass as new

    @app.post("/feedback", responses=FEEDBACK_ERRORS)
    async def feedback(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        """`{"labels": [{"request_id": "...", "label": ..., "row": 0}, ...]}`: `row` is the row's
        position in its request (default 0); the label is a class of the model, or a number."""
        require_admin(access, authorization, request.client and request.client.host)
        if log is None:
            return JSONResponse(
                {"error": "no prediction log: the server runs with --no-log", "detail": []}, 503
            )
        items = labels_of(await request.body())
        if isinstance(items, list) and len(items) > serving.max_batch_rows:
            too_many = f"at most {serving.max_batch_rows} labels per call (serving.max_batch_rows)"
            return JSONResponse({"error": too_many, "detail": []}, status_code=422)
        labels, problems = parse_items(items)

        def checked_and_stored() -> list:
            with one_at_a_time:  # shipping too: a copy never overtakes a later, longer one
                found = accept(labels, log, labels_beside(log), "api", problems, remote(serving.log.uri))
                ship_to = shipped_labels(serving.log)
                if ship_to is not None and not found:
                    ship_labels(labels_beside(log), ship_to)  # a failure is logged; the next batch ships it
                return found

        problems = await run_in_threadpool(checked_and_stored)
        metrics.count_labels(0 if problems else len(labels), [problem.reason for problem in problems])
        if problems:
            detail = [dataclasses.asdict(problem) for problem in problems]
            return JSONResponse({"error": summary(problems), "detail": detail}, status_code=422)
        return JSONResponse({"accepted": len(labels)})


def labels_of(body: bytes) -> object:
    """The body's `labels` (anything else is left for parse_items to name)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("labels") if isinstance(parsed, dict) else None


def require_admin(access: Access, authorization: str | None, client: str | None) -> None:
    """401 without the admin token when one is set; 403 for a client not on loopback when none is."""
    if access.is_admin(authorization, client):
        return
    if access.admin_token:
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
    raise HTTPException(
        403, f"admin calls need {ADMIN_TOKEN_ENV} on the server (without it: loopback clients only)"
    )


def add_info_routes(app, state: State, metrics: ServerMetrics, access: Access) -> None:
    from fastapi import Header, Request
    from fastapi.responses import JSONResponse, Response

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
        brief = {"model_version": current.version, "loaded_at": state.loaded_at} | challenger_version(state)
        admin = access.is_admin(authorization, request.client and request.client.host)
        return {**brief, **current.info} if admin else brief

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus text format."""
        content, media_type = metrics.text()
        return Response(content, media_type=media_type)


def challenger_version(state: State) -> dict:
    return {"challenger_version": state.challenger.version} if state.challenger is not None else {}


def add_admin_routes(app, state: State, reloader: Reloader, access: Access) -> None:
    from fastapi import Header, Request

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
        require_admin(access, authorization, request.client and request.client.host)
        before = state.served.version
        try:
            changed = await reloader.reload()
            await reloader.reload_challenger()
        except ServeError as err:
            raise HTTPException(409, str(err)) from None
        answer = {"changed": changed, "model_version": state.served.version, "previous_version": before}
        return answer | challenger_version(state)


def refusals(state: State, predictions_log: PredictionLog) -> Callable[[Any, list[dict]], None]:
    """Log a /predict request the contract refused (its fields), so that `monitor` counts them."""

    def refused(request, detail: list[dict]) -> None:
        if request.url.path == "/predict":
            request_id = checked_request_id(request.headers.get("x-request-id"))
            fields = [str(item["field"]) for item in detail]
            started = request.scope.get("started", time.perf_counter())
            current = state.served
            predictions_log.write(refused_record(request_id, current.name, current.version, fields, started))

    return refused


def add_error_handlers(app, refused: Callable[[Any, list[dict]], None]) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

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
        detail = field_errors(exc.errors())
        refused(request, detail)
        fields = ", ".join(dict.fromkeys(item["field"] for item in detail))
        return JSONResponse({"error": f"invalid input: {fields}", "detail": detail}, status_code=422)


def field_errors(errors) -> list[dict]:
    """Each field named plainly: {"field": "age", "message": "...", ...} beside FastAPI's location."""
    detail = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "row", "batch")]
        detail.append(
            {
                "field": ".".join(location) or "body",
                "message": error.get("msg", "invalid"),
                "type": error.get("type", ""),
                "loc": list(error.get("loc", ())),
            }
        )
    return detail


def checked_request_id(given: str | None) -> str:
    if given and len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex
