"""The prediction log: one JSON line per answered request, written off the request path."""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import contextlib
import json
import logging
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)


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
