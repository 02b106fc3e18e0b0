"""The prediction log's files: how they are named, which are whose, and reading their newest records.

Each server process writes its own file (`predictions-<start>-<host>-<pid>-<n>.jsonl`), so
several workers, or several machines shipping to one URL, never write into the same file.
"""

from __future__ import annotations

import calendar
import json
import os
import posixpath
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config.serving import LogSettings
    from .paths import Paths

PREFIX, SUFFIX = "predictions-", ".jsonl"
INVALID_INPUT = "invalid_input"  # a record's `error`: the contract refused the request (no rows)
STAMP = "%Y%m%dT%H%M%SZ"
READ_BLOCK = 1 << 16
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9.-]+")


def remote(uri: str) -> str | None:
    """The fsspec URL that closed files are shipped to (s3://, gs://, file://, ...), or None for a folder."""
    return uri.rstrip("/") if "://" in uri else None


def labels_url(log_url: str) -> str:
    """Where labels are shipped beside a shipped log: <store>/labels for <store>/predictions, as
    logs/labels/ sits beside logs/predictions/ (inside the log's URL when it names no folder)."""
    scheme, _, path = log_url.rstrip("/").partition("://")
    if "/" not in path.lstrip("/"):  # s3://bucket: the bucket itself
        return f"{scheme}://{path}/labels"
    return f"{scheme}://{posixpath.dirname(path)}/labels"


def shipped_labels(log: LogSettings) -> str | None:
    """The URL labels are shipped to, when the log is shipped; else None."""
    url = remote(log.uri)
    return labels_url(url) if url is not None else None


def local_folder(log: LogSettings, paths: Paths) -> Path:
    """Where this machine's servers write their open files: the folder `serving.log.uri` names, or
    logs/predictions/ when files are shipped to a URL (those not shipped yet wait there)."""
    return paths.prediction_spool if remote(log.uri) is not None else paths.root / log.uri


def shown(folder: Path, root: Path) -> str:
    """A folder as messages name it: relative to the project when inside it."""
    return str(folder.relative_to(root)) if folder.is_relative_to(root) else str(folder)


def file_name(opened: float, host: str, pid: int, sequence: int, prefix: str = PREFIX) -> str:
    """A log file's name: when it was opened (UTC, to the second), by which host and process."""
    stamp = time.strftime(STAMP, time.gmtime(opened))
    return f"{prefix}{stamp}{writer(host, pid)}{sequence}{SUFFIX}"


def writer(host: str, pid: int) -> str:
    """The part of a file's name that says which process wrote it."""
    return f"-{UNSAFE_IN_NAME.sub('_', host)[:64] or 'host'}-{pid}-"


def opened_at(name: str, prefix: str = PREFIX) -> float | None:
    """When the file named `name` was opened (seconds since the epoch), or None for another file."""
    if not (name.startswith(prefix) and name.endswith(SUFFIX)):
        return None
    try:
        return float(calendar.timegm(time.strptime(name[len(prefix) :][:16], STAMP)))
    except ValueError:
        return None


def log_files(folder: Path, prefix: str = PREFIX) -> list[Path]:
    """The log's files in `folder` (or those of the labels, by their prefix), newest write first."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if opened_at(path.name, prefix) is not None and path.is_file()]
    return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name), reverse=True)


def newest_records(folder: Path, prefix: str = PREFIX) -> Iterator[dict]:
    """Every complete record of the log, newest first; a line being written is skipped.

    Each file is read backwards from its end, so asking for the last few costs only their tail.
    """
    for path in log_files(folder, prefix):
        yield from records_backwards(path)


def file_records(path: Path) -> Iterator[dict]:
    """A file's complete records, in the order written (a line being written is skipped)."""
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:  # deleted by retention since it was listed
        return
    for line in lines:
        record = _record(line)
        if record is not None:
            yield record


def records_backwards(path: Path) -> Iterator[dict]:
    """A file's complete records, newest first, read from its end."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # deleted by retention since it was listed
        return
    with handle:
        end = handle.seek(0, os.SEEK_END)
        carry = b""
        while end > 0:
            start = max(0, end - READ_BLOCK)
            handle.seek(start)
            lines = (handle.read(end - start) + carry).split(b"\n")
            carry = lines.pop(0) if start > 0 else b""  # may be cut: completed by the next block
            end = start
            for line in reversed(lines):
                record = _record(line)
                if record is not None:
                    yield record
        if carry:
            record = _record(carry)
            if record is not None:
                yield record


def _record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
