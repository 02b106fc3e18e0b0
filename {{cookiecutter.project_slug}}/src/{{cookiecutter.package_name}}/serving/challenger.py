"""A second model beside the one served: in shadow (scored off the request path, answers nobody)
or in a split (answers a share of the requests, sticky by a key).

Both ways log the challenger's answers with its version, so that `canary --from-log` can
judge it on real traffic and `monitor` can report each version's online quality.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable

from ..config.serving import SplitSettings
from .errors import ServeError
from .sources import Served

logger = logging.getLogger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"  # a logged record's `arm`
NON_FINITE, FAILED = "non_finite_output", "prediction_failed"  # a shadow record's `error`
Count = Callable[[str, int], None]  # (scored | dropped | failed, how many)


def check_challenger(challenger: Served, served: Served) -> None:
    """A challenger is scored on the served model's requests: it must take no other inputs, and
    answer the same kind of question (classes, or a number)."""
    missing = [name for name in challenger.inputs if name not in served.inputs]
    if missing:
        raise ServeError(
            f"challenger {challenger.version} takes inputs the requests of {served.version} do not carry: "
            f"{', '.join(missing)}"
        )
    if (challenger.classes is None) != (served.classes is None):
        kind = "a regressor" if challenger.classes is None else "a classifier"
        raise ServeError(f"challenger {challenger.version} is {kind}, unlike {served.version}")


def in_challenger_arm(key: str, share: float) -> bool:
    """The same key always lands in the same arm; over many keys, `share` of them in the challenger's."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def split_key(rows: list[dict], split: SplitSettings, request_id: str) -> str:
    """What routes a request: its first row's value of `split.key` (sticky), else its request id."""
    if split.key and rows and rows[0].get(split.key) is not None:
        return json.dumps(rows[0][split.key])
    return request_id


def to_challenger(split: SplitSettings | None, rows: list[dict], request_id: str) -> bool:
    """Whether a split (None: no split) sends this request to the challenger."""
    return split is not None and in_challenger_arm(split_key(rows, split, request_id), split.share)


def shadow_record(request_id: str, challenger: Served, rows: list[dict], trusted: bool) -> dict:
    """The challenger's answer to rows the served model answered: its record in the log."""
    record: dict = {
        "request_id": request_id,
        "time": time.time(),
        "model_name": challenger.name,
        "model_version": challenger.version,
        "inputs": rows,
        "outputs": None,
        "trusted": trusted,
        "arm": CHALLENGER,
        "shadow": True,
    }
    started = time.perf_counter()
    try:
        predictions, probabilities = challenger.predict(rows)
        json.dumps([predictions, probabilities], allow_nan=False)
    except ValueError:
        record["error"] = NON_FINITE
    except Exception:
        logger.exception("the shadow model failed (request %s)", request_id)
        record["error"] = FAILED
    else:
        record["outputs"] = predictions
        if probabilities is not None and challenger.classes is not None:
            classes = challenger.classes
            record["probabilities"] = [dict(zip(classes, p, strict=True)) for p in probabilities]
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return record


class Shadow:
    """A bounded queue of answered requests, and a thread scoring the challenger on each.

    The request path only queues (when the queue is full the request is not shadowed, and that
    is counted): the challenger never slows or fails an answer. With `share` under 1, only the
    requests whose id falls in that share are scored (always the same ones for the same ids).
    """

    _STOP = object()

    def __init__(
        self,
        challenger: Callable[[], Served | None],
        write: Callable[[dict], None],
        limit: int,
        count: Count,
        share: float = 1.0,
    ) -> None:
        self._challenger, self._write, self._limit, self._count = challenger, write, limit, count
        self._share = share
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._score, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, request_id: str, rows: list[dict], trusted: bool) -> None:
        """Score `rows` (as sent: context fields are logged by the log's rules) with the challenger."""
        if self._share < 1 and not in_challenger_arm(request_id, self._share):
            return
        if self._queue.qsize() >= self._limit:
            self._count("dropped", 1)
            return
        self._queue.put((request_id, rows, trusted))

    def _score(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            challenger = self._challenger()
            if challenger is None:
                continue
            request_id, rows, trusted = item
            record = shadow_record(request_id, challenger, rows, trusted)
            self._count("failed" if "error" in record else "scored", 1)
            self._write(record)

    def close(self, timeout: float = 5.0) -> None:
        """Score what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join(timeout)
