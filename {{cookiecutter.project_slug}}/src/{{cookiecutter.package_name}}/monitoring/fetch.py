"""Bringing a window of a shipped prediction log, and its labels, to this machine for `monitor`.

`monitor.log_uri` names a folder laid out as `logs/` is here: `predictions/` (where the servers
ship their closed files: `serving.log.uri` = <log_uri>/predictions) and `labels/`. Only files
that can hold records of the window are copied: a file is closed at most
`serving.log.max_file_seconds` after it was opened, so one opened earlier than that before the
window's start holds nothing in it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from ..feedback import LABELS_PREFIX
from ..log_store import bring, connect, listed
from ..served_log import PREFIX, opened_at

PARTS = (("predictions", PREFIX), ("labels", LABELS_PREFIX))  # folder at the URL, file name prefix


class FetchError(RuntimeError):
    """The log's URL cannot be read."""


@dataclass(frozen=True)
class Fetched:
    copied: int  # files copied
    present: int  # files of the window already here, as large as at the URL


def in_window(names: list[str], prefix: str, since: float, max_file_seconds: float) -> list[str]:
    """The names of the log's files (by `prefix`) that can hold records from `since` on."""
    earliest = since - max_file_seconds
    opened = {name: opened_at(name, prefix) for name in names}
    return sorted(name for name, when in opened.items() if when is not None and when >= earliest)


def fetch(url: str, folders: dict[str, Path], since: float, max_file_seconds: float) -> Fetched:
    """Copy the window's files of `url`/predictions and `url`/labels into `folders` (by part name)."""
    try:
        fs, base = connect(url)
    except (ValueError, ImportError) as err:
        raise FetchError(f"monitor.log_uri {url!r}: {err}") from err
    copied = present = 0
    for part, prefix in PARTS:
        folder = posixpath.join(base, part)
        try:
            sizes = listed(fs, folder)
        except FileNotFoundError:
            if part == "predictions":
                raise FetchError(f"no prediction log at {url.rstrip('/')}/{part}") from None
            continue  # no labels yet
        except OSError as err:
            raise FetchError(f"{url.rstrip('/')}/{part}: {err}") from err
        for name in in_window(list(sizes), prefix, since, max_file_seconds):
            if bring(fs, folder, name, sizes[name], folders[part]):
                copied += 1
            else:
                present += 1
    return Fetched(copied, present)
