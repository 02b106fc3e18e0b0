"""Delayed labels: the true outcome of a served row, joined to the prediction log by request id.

Labels come from `POST /feedback` (admin token) or `<package> feedback import FILE`, and are
appended to the labels store, `labels/` beside the log's folder (`logs/labels/` by default), one
file per writing process. A batch is all or nothing: an unknown request id, a row the request
did not have, a row already labelled (or twice in the batch), or a label the model could not
have answered (a class it does not know, a number that is not finite) refuses the whole batch,
each problem named, so a corrected file can be sent again without duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from .served_log import file_name, local_folder, log_files, newest_records, records_backwards, writer

if TYPE_CHECKING:
    from .config.serving import LogSettings
    from .paths import Paths

logger = logging.getLogger(__name__)
LABELS_PREFIX = "labels-"
MAX_ID = 128  # as the server accepts an X-Request-ID
REASONS = ("malformed", "unknown_request", "unknown_row", "duplicate", "wrong_label")


class FeedbackError(ValueError):
    """Labels that cannot be stored (each problem named), or a labels file that cannot be read."""


@dataclass(frozen=True)
class Label:
    request_id: str
    row: int
    label: object
    index: int = 0  # its position in the batch (0-based)


@dataclass(frozen=True)
class Problem:
    index: int  # the label's position in the batch (0-based)
    reason: str  # one of REASONS
    message: str


@dataclass(frozen=True)
class Served:
    """What the log says about one request: how many rows it had, and the classes it could answer."""

    rows: int
    classes: tuple[str, ...] | None  # None: a regression


def label_folder(log: LogSettings, paths: Paths) -> Path:
    return labels_beside(local_folder(log, paths))


def labels_beside(log_folder: Path) -> Path:
    """The labels store: `labels/` beside the prediction log's local folder."""
    return log_folder.parent / "labels"


def parse_items(items: object) -> tuple[list[Label], list[Problem]]:
    """`[{"request_id": ..., "label": ..., "row": 0}, ...]` as labels, and the items that are not one."""
    if not isinstance(items, list) or not items:
        return [], [Problem(0, "malformed", 'expected a list of {"request_id", "label", "row"} objects')]
    labels, problems = [], []
    for index, item in enumerate(items):
        label = parse_item(item, index)
        if isinstance(label, str):
            problems.append(Problem(index, "malformed", label))
        else:
            labels.append(label)
    return labels, problems


def parse_item(item: object, index: int = 0) -> Label | str:
    """One label, or what is wrong with it."""
    if not isinstance(item, dict) or set(item) - {"request_id", "label", "row"}:
        return 'expected an object with "request_id", "label" and (optional) "row", nothing else'
    request_id, row = item.get("request_id"), item.get("row", 0)
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID or not request_id.isprintable():
        return f"request_id: expected the text the server answered with (1 to {MAX_ID} characters)"
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        return "row: expected the row's position in its request (0 for the first), a whole number"
    if "label" not in item or item["label"] is None:
        return "label: missing"
    return Label(request_id, row, item["label"], index)


def label_problem(label: object, served: Served) -> str | None:
    """Why `label` could not be the true answer of that request's model, or None."""
    if served.classes is None:
        number = isinstance(label, int | float) and not isinstance(label, bool)
        if not number or not math.isfinite(float(label)):  # type: ignore[arg-type]
            return f"label {json.dumps(label)}: expected a finite number (the model is a regression)"
        return None
    text = label if isinstance(label, str) else str(label) if isinstance(label, int) else None
    if isinstance(label, bool) or text not in served.classes:
        return f"label {json.dumps(label)}: expected one of the model's classes: {', '.join(served.classes)}"
    return None


def check_labels(
    labels: list[Label], served: Mapping[str, Served], labelled: set[tuple[str, int]]
) -> list[Problem]:
    """Every problem of the batch; [] when all of it can be stored."""
    problems, seen = [], set(labelled)
    for label in labels:
        index = label.index
        request = served.get(label.request_id)
        key = (label.request_id, label.row)
        if request is None:
            problems.append(
                Problem(index, "unknown_request", f"request_id {label.request_id!r}: not in the log")
            )
        elif label.row >= request.rows:
            message = f"request_id {label.request_id!r}: row {label.row}, but it had {request.rows} row(s)"
            problems.append(Problem(index, "unknown_row", message))
        elif key in seen:
            message = f"request_id {label.request_id!r}, row {label.row}: already labelled"
            problems.append(Problem(index, "duplicate", message))
        elif (wrong := label_problem(label.label, request)) is not None:
            problems.append(Problem(index, "wrong_label", wrong))
        seen.add(key)
    return problems


def served_requests(log: Path, wanted: Iterable[str], shipped: Iterable[Path] = ()) -> dict[str, Served]:
    """The wanted request ids as the log has them, read from the newest record back until all are
    found: this machine's files first, then the `shipped` ones (newest first, fetched as needed)."""
    missing, found = set(wanted), dict[str, Served]()
    if not missing:
        return found
    records = chain(newest_records(log), (record for path in shipped for record in records_backwards(path)))
    for record in records:
        request_id = record.get("request_id")
        if request_id in missing and isinstance(record.get("inputs"), list):
            found[request_id] = Served(len(record["inputs"]), logged_classes(record))
            missing.discard(request_id)
            if not missing:
                break
    return found


def logged_classes(record: dict) -> tuple[str, ...] | None:
    probabilities = record.get("probabilities")
    if isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], dict):
        return tuple(str(name) for name in probabilities[0])
    return None


def labelled_rows(folder: Path) -> set[tuple[str, int]]:
    """(request id, row) of every label stored."""
    stored = set()
    for record in newest_records(folder, LABELS_PREFIX):
        if isinstance(record.get("request_id"), str) and isinstance(record.get("row"), int):
            stored.add((record["request_id"], record["row"]))
    return stored


def store_labels(folder: Path, labels: list[Label], source: str) -> Path:
    """Append the labels to this process's file of the store, in one write."""
    folder.mkdir(parents=True, exist_ok=True)
    host, pid = socket.gethostname(), os.getpid()
    existing = [path for path in log_files(folder, LABELS_PREFIX) if writer(host, pid) in path.name]
    path = existing[0] if existing else folder / file_name(time.time(), host, pid, 1, LABELS_PREFIX)
    now = datetime.now(UTC).isoformat()
    lines = [
        json.dumps(
            {
                "request_id": item.request_id,
                "row": item.row,
                "label": item.label,
                "time": now,
                "source": source,
            }
        )
        + "\n"
        for item in labels
    ]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
    return path


def accept(
    labels: list[Label],
    log: Path,
    store: Path,
    source: str,
    problems: list[Problem] | None = None,
    shipped_to: str | None = None,
) -> list[Problem]:
    """Check the batch against the log (and its store, when shipped) and the labels store; store it
    only when nothing is wrong."""
    found = check(labels, log, store, shipped_to)
    problems = sorted([*(problems or []), *found], key=lambda problem: problem.index)
    if not problems:
        store_labels(store, labels, source)
    return problems


def ship_labels(store: Path, url: str) -> bool:
    """Copy this process's labels file of the store to `url`, whole: it only grows, so a copy after a
    failed one catches up. False, with a warning, when the URL cannot be written (kept here)."""
    from .log_store import put

    me = writer(socket.gethostname(), os.getpid())
    try:
        put([path for path in log_files(store, LABELS_PREFIX) if me in path.name], url)
    except Exception as err:  # any store's error: kept here, shipped with the next batch
        logger.warning("labels: not shipped to %s (%s); kept in %s", url, err, store)
        return False
    return True


def check(labels: list[Label], log: Path, store: Path, shipped_to: str | None = None) -> list[Problem]:
    """The batch's problems; with a shipped log (`shipped_to`), requests whose file has left this
    machine are looked up at the store, each file copied once into logs/shipped/ beside the log."""
    from .log_store import shipped_files

    shipped = shipped_files(shipped_to, log.parent / "shipped") if shipped_to is not None else ()
    served = served_requests(log, {label.request_id for label in labels}, shipped)
    return check_labels(labels, served, labelled_rows(store))


def read_items(path: Path) -> list[object]:
    """A labels file: CSV with a header (request_id, label, optional row) or JSON lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FeedbackError(f"{path}: cannot read ({err})") from None
    if path.suffix == ".csv":
        return csv_items(text, path)
    if path.suffix in (".jsonl", ".json"):
        return jsonl_items(text, path)
    raise FeedbackError(f"{path}: expected a .csv or .jsonl file")


def csv_items(text: str, path: Path) -> list[object]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"request_id", "label"} <= set(reader.fieldnames):
        raise FeedbackError(f"{path}: the header must name request_id and label (and, optionally, row)")
    return [
        {key: cell(key, value) for key, value in row.items() if value not in (None, "")} for row in reader
    ]


def cell(key: str, value: str) -> object:
    """A CSV cell as JSON would give it: numbers as numbers (a label "1.5", a row "2"), else text."""
    if key == "request_id":
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float) and not isinstance(parsed, bool) else value


def jsonl_items(text: str, path: Path) -> list[object]:
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError:
                raise FeedbackError(f"{path}: line {number} is not JSON") from None
    return items


def summary(problems: list[Problem], shown: int = 5) -> str:
    """The problems on one line: how many, then the first few."""
    first = "; ".join(f"#{problem.index + 1}: {problem.message}" for problem in problems[:shown])
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} label(s) refused, nothing stored: {first}{more}"
