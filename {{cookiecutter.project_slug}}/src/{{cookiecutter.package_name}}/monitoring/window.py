"""The served rows of a window of the prediction log, each with its answer and delayed label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..feedback import LABELS_PREFIX
from ..served_log import file_records, log_files, newest_records


@dataclass(frozen=True)
class ServedRow:
    request_id: str
    row: int
    model_version: str
    inputs: dict
    output: object  # None when the model gave no finite answer
    error: str  # "" when answered
    latency_ms: float
    probabilities: dict | None = None  # a classifier's, per class
    shadow: bool = False  # the challenger's answer in shadow: nobody received it


def epoch(text: object) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def window_records(folder: Path, since: float) -> list[dict]:
    """The log's records from `since` (epoch seconds) on, oldest first; older files are not read."""
    found = []
    for path in log_files(folder):
        if path.stat().st_mtime < since:
            continue
        for record in file_records(path):
            when = epoch(record.get("time"))
            if when is not None and when >= since:
                found.append((when, record))
    return [record for _, record in sorted(found, key=lambda item: item[0])]


def served_rows(records: list[dict]) -> list[ServedRow]:
    """One entry per row of each request (a batch of n rows is n rows)."""
    rows = []
    for record in records:
        inputs, logged = record.get("inputs"), record.get("outputs")
        if not isinstance(inputs, list):
            continue
        outputs = logged if isinstance(logged, list) else []
        probabilities = record.get("probabilities")
        per_row = probabilities if isinstance(probabilities, list) else []
        for index, row in enumerate(inputs):
            answered = index < len(outputs)
            rows.append(
                ServedRow(
                    request_id=str(record.get("request_id", "")),
                    row=index,
                    model_version=str(record.get("model_version", "")),
                    inputs=row if isinstance(row, dict) else {},
                    output=outputs[index] if answered else None,
                    error=str(record.get("error", "")),
                    latency_ms=float(record.get("latency_ms") or 0.0),
                    probabilities=per_row[index]
                    if index < len(per_row) and isinstance(per_row[index], dict)
                    else None,
                    shadow=record.get("shadow") is True,
                )
            )
    return rows


def stored_labels(folder: Path) -> dict[tuple[str, int], object]:
    """(request id, row) -> the delayed label, from the labels store."""
    labels: dict[tuple[str, int], object] = {}
    for record in newest_records(folder, LABELS_PREFIX):
        key = (record.get("request_id"), record.get("row"))
        if isinstance(key[0], str) and isinstance(key[1], int):
            labels.setdefault((key[0], key[1]), record.get("label"))
    return labels
