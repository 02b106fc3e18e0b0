"""The feedback partition: served rows with their delayed labels, as rows of the training data.

`feedback export` joins the prediction log to the labels store and appends each labelled row
not exported before to `data/feedback/labelled.csv`: the inputs as the client sent them, the
context fields the log kept in clear (a hashed or dropped field is left empty: the log does not
hold its value), and the label as the target. Only answered requests that came with a trusted
token count: anyone who can reach the server could otherwise choose rows the next model learns
from. The rows must pass the data contract (schema.yaml), as the source data must; if any
fails, nothing is written. `ingest` adds the partition to the raw data when
`data.include_feedback` is true.

Where the partition is kept follows the rule for the project's data: in git while the project
has no DVC remote that CI can reach (none, or a folder of this machine), DVC-tracked when it has
one (`make retrain` then pushes it there, for the pull request's checks to pull).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .data import ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from .schema import Contract


TEXT = ("category", "date", "text")  # contract types held as text
GIT_MAX_BYTES = 50_000_000  # a data file beyond this belongs on a DVC remote, not in git


class FeedbackDataError(ValueError):
    """The labelled rows do not fit the training data (one line, nothing written)."""


def labelled_rows(
    records: Iterable[dict], labels: Mapping[tuple[str, int], object], target: str, kept: Iterable[str]
) -> list[dict]:
    """Each labelled row of the trusted, answered, served (not shadow) requests, once, oldest first:
    its id, its inputs, its context fields kept in clear, and the label as `target`."""
    clear, rows, seen = set(kept), [], set()
    for record in records:
        request_id, inputs = record.get("request_id"), record.get("inputs")
        if record.get("trusted") is not True or record.get("shadow") is True or "error" in record:
            continue
        if not isinstance(request_id, str) or not isinstance(inputs, list):
            continue
        logged = record.get("context")
        context = logged if isinstance(logged, list) else []
        for index, row in enumerate(inputs):
            key = (request_id, index)
            if key in seen or key not in labels or not isinstance(row, dict):
                continue
            seen.add(key)
            extra = context[index] if index < len(context) and isinstance(context[index], dict) else {}
            kept_context = {name: value for name, value in extra.items() if name in clear}
            rows.append({"request_id": request_id, "row": index, **row, **kept_context, target: labels[key]})
    return rows


def new_rows(rows: list[dict], exported: set[tuple[str, int]]) -> list[dict]:
    return [row for row in rows if (row["request_id"], row["row"]) not in exported]


def as_training_frame(rows: list[dict], contract: Contract) -> pd.DataFrame:
    """The rows with the contract's columns in its order (a column the log lacks is empty)."""
    import pandas as pd

    frame = pd.DataFrame(rows).reindex(columns=[*ROW_ID, *contract.columns])
    for name, rule in contract.columns.items():
        if rule.type in TEXT and frame[name].isna().all():
            frame[name] = frame[name].astype(str)  # empty text, not empty numbers (pandas keeps NaN)
    return frame


def checked(frame: pd.DataFrame, contract: Contract, where: str) -> None:
    """FeedbackDataError naming each failing column unless the rows, ids left out, pass the contract."""
    from .schema import validate_frame

    failures = validate_frame(frame.drop(columns=list(ROW_ID)), contract)
    if failures:
        broken = "; ".join(f"{f.column}: {f.check} ({f.rows} rows)" for f in failures)
        raise FeedbackDataError(
            f"{where}: labelled rows break the data contract (schema.yaml): {broken}; a column the "
            "log does not hold in clear (not an input, nor a context field kept in clear; a sensitive "
            "feature never is) stays empty: mark it nullable in schema.yaml to train on such rows"
        )


def exported_ids(path: Path) -> set[tuple[str, int]]:
    """The served rows the partition already holds."""
    import pandas as pd

    if not path.exists():
        return set()
    ids = pd.read_csv(path, usecols=list(ROW_ID), dtype={"request_id": str})
    return {(str(request_id), int(row)) for request_id, row in ids.itertuples(index=False)}


def append(path: Path, frame: pd.DataFrame) -> None:
    """Add the rows to the partition in one step: a copy is written, then moved over the file."""
    import pandas as pd

    if path.exists():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.to_csv(partial, index=False)
    partial.replace(path)


def stored(path: Path, root: Path) -> str:
    """Keep the partition by the data rule: DVC-tracked when the default remote is storage CI can
    reach, else in git. What was done, as a note for the command's line ("" when plain git)."""
    remote = default_remote_url(root)
    if kept_on_remote(remote):
        tracked = track_with_dvc(path, root)
        shown = tracked.relative_to(root) if tracked.is_relative_to(root) else tracked
        return f" (DVC-tracked: {shown}; `dvc push` sends it to {remote})"
    if path.stat().st_size > GIT_MAX_BYTES:
        return f" (over {GIT_MAX_BYTES // 1_000_000} MB for git: add a DVC remote CI can reach)"
    return ""


def kept_on_remote(remote_url: str | None) -> bool:
    """True when the DVC remote is storage CI can reach (s3://, gs://, ssh://, ...): data goes
    there. A folder of this machine (a path, or file://), or none: data stays in git."""
    return bool(remote_url) and "://" in str(remote_url) and not str(remote_url).startswith("file://")


def default_remote_url(root: Path) -> str | None:
    """The URL of the project's default DVC remote; None without one (or without DVC)."""
    name = _dvc(root, "remote", "default")
    if name.returncode != 0 or not name.stdout.strip():
        return None
    url = _dvc(root, "config", f"remote.{name.stdout.strip()}.url")
    return url.stdout.strip() or None if url.returncode == 0 else None


def track_with_dvc(path: Path, root: Path) -> Path:
    """`dvc add` the partition (its .dvc file goes to git, the data to the cache); its .dvc file.
    FeedbackDataError when DVC refuses (e.g. git still tracks the file: `git rm --cached` it)."""
    added = _dvc(root, "add", "--quiet", str(path))
    if added.returncode != 0:
        reason = (added.stderr.strip().splitlines() or ["dvc add failed"])[-1]
        raise FeedbackDataError(f"{path.name}: not DVC-tracked ({reason}); the rows are appended")
    return path.with_name(path.name + ".dvc")


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """DVC in a process of its own: importing it sets up its logging on this process's streams."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
