"""The prediction log: one JSON line per answered request, written off the request path.

The request path only puts a record on a bounded queue (when it is full the record is
dropped and counted: a slow disk never slows or fails a response). A background thread
writes the records in batches to this process's own file (`log_files.py`), with context
fields kept, hashed or dropped (`context.py`).
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from ..config.serving import ContextRule, LogSettings
from ..served_log import INVALID_INPUT
from .context import logged_context
from .log_files import LogFiles

logger = logging.getLogger(__name__)

BATCH_RECORDS = 1000  # written with one call
# After each write the writer waits this long, so that under load a write carries many records
# (one system call and one wake-up per record would cost the server a tenth of its throughput).
BATCH_SECONDS = 0.05
Count = Callable[[str, int], None]  # (written | dropped | failed, how many)


def not_counted(result: str, records: int) -> None:
    """For a log whose records nobody counts (tests, tools)."""


class PredictionLog:
    """A bounded queue, and a thread that writes what is on it; `folder=None` logs nothing."""

    _STOP = object()

    def __init__(
        self, folder: Path | None, settings: LogSettings, key: str = "", count: Count = not_counted
    ) -> None:
        self.folder, self.settings, self._count = folder, settings, count
        self._rules: Mapping[str, ContextRule] = settings.context
        self._key = key.encode()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if folder is not None:
            self._files = LogFiles(folder, settings)
            self._thread = threading.Thread(target=self._write, name="prediction-log", daemon=True)
            self._thread.start()

    def write(self, record: dict) -> None:
        """Queue one record (its `time` in epoch seconds, its `inputs` the rows as sent, context too)."""
        if self._thread is None:
            return
        if self._queue.qsize() >= self.settings.queue_records:
            self._count("dropped", 1)
            return
        self._queue.put(record)

    def _write(self) -> None:
        # Wake up now and then while idle, so an old file is still closed (and shipped) on time.
        idle = min(60.0, self.settings.max_file_seconds / 2)
        while True:
            try:
                records = [self._queue.get(timeout=idle)]
            except queue.Empty:
                self._closing(self._files.close_if_due)
                continue
            with contextlib.suppress(queue.Empty):
                while len(records) < BATCH_RECORDS:
                    records.append(self._queue.get_nowait())
            stop = records[-1] is self._STOP
            if stop:
                records.pop()
            self._lines(records)
            if stop:
                self._closing(self._files.close)
                return
            time.sleep(BATCH_SECONDS)

    def _lines(self, records: list[dict]) -> None:
        if not records:
            return
        import orjson  # this thread shares the interpreter lock with requests: json held it too long

        try:
            self._files.write(b"".join(self.line(record, orjson.dumps) for record in records))
        except (OSError, ValueError, TypeError):
            logger.exception("could not write %d prediction log record(s)", len(records))
            self._count("failed", len(records))
            return
        self._count("written", len(records))

    def _closing(self, close: Callable[[], None]) -> None:
        try:
            close()
        except OSError:
            logger.exception("could not close the prediction log's file")

    def line(self, record: dict, dumps: Callable[..., bytes]) -> bytes:
        return record_line(record, self._rules, self._key, dumps)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, close the file (and ship it), then stop."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join(timeout)


def record_line(
    record: dict, rules: Mapping[str, ContextRule], key: bytes, dumps: Callable[..., bytes]
) -> bytes:
    """A record as its JSON line (`dumps`: orjson's, NaN as null): the time as ISO 8601 (UTC),
    the context split from the inputs, kept, hashed or dropped by `rules`."""
    record = {**record, "time": datetime.fromtimestamp(record["time"], UTC).isoformat()}
    if rules:
        rows = record["inputs"]
        record["inputs"] = [{k: v for k, v in row.items() if k not in rules} for row in rows]
        record["context"] = [logged_context(row, rules, key) for row in rows]
    return dumps(record, default=str) + b"\n"


class DirectLog:
    """The prediction log for a tool that has no request path to keep fast (`predict`): each
    write goes to the file at once, none is dropped; `close` closes the file (and ships it)."""

    def __init__(self, folder: Path, settings: LogSettings, key: str = "") -> None:
        self._files, self._rules, self._key = LogFiles(folder, settings), settings.context, key.encode()

    def write(self, records: list[dict]) -> None:
        import orjson

        self._files.write(
            b"".join(record_line(record, self._rules, self._key, orjson.dumps) for record in records)
        )

    def close(self) -> None:
        self._files.close()


MAX_FIELDS, MAX_FIELD = 20, 64  # a refused request's field names, as logged (a client may send any)


def refused_record(request_id: str, model_name: str, version: str, fields: list[str], started: float) -> dict:
    """The log's record of a request the contract refused (422): which fields, not their values."""
    named = list(dict.fromkeys(field[:MAX_FIELD] for field in fields))[:MAX_FIELDS]
    return {
        "request_id": request_id,
        "time": time.time(),
        "model_name": model_name,
        "model_version": version,
        "inputs": [],
        "outputs": None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "trusted": False,
        "error": INVALID_INPUT,
        "fields": named,
    }


def log_record(
    answer: dict, model_name: str, rows: list[dict], started: float, trusted: bool, arm: str = ""
) -> dict:
    """The prediction log's record for one answered request (made on the request path: cheap);
    `arm` says which of two models answered (champion or challenger), when a second one runs."""
    record = {
        "request_id": answer["request_id"],
        "time": time.time(),
        "model_name": model_name,
        "model_version": answer["model_version"],
        "inputs": rows,
        "outputs": answer.get("predictions"),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "trusted": trusted,
    }
    if "probabilities" in answer:
        record["probabilities"] = answer["probabilities"]
    if "error" in answer:
        record["error"] = answer["error"]
    if arm:
        record["arm"] = arm
    return record
