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
    """Copy the window's files of `url`/predictions and `url`/labels into `folders` (by part name).

    A file is written under a temporary name and renamed, so the monitor never reads half of one.
    """
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as err:
        raise FetchError(f"monitor.log_uri {url!r}: {err}") from err
    copied = present = 0
    for part, prefix in PARTS:
        remote = posixpath.join(base.rstrip("/"), part)
        try:
            sizes = {
                posixpath.basename(str(e["name"]).rstrip("/")): e.get("size")
                for e in fs.ls(remote, detail=True)
            }
        except FileNotFoundError:
            if part == "predictions":
                raise FetchError(f"no prediction log at {url.rstrip('/')}/{part}") from None
            continue  # no labels yet
        except OSError as err:
            raise FetchError(f"{url.rstrip('/')}/{part}: {err}") from err
        folder = folders[part]
        folder.mkdir(parents=True, exist_ok=True)
        for name in in_window(list(sizes), prefix, since, max_file_seconds):
            target = folder / name
            if target.exists() and target.stat().st_size == sizes[name]:
                present += 1
                continue
            partial = folder / f".{name}.part"
            fs.get_file(posixpath.join(remote, name), str(partial))
            partial.replace(target)
            copied += 1
    return Fetched(copied, present)
