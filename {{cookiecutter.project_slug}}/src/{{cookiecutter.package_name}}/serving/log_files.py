"""The prediction log's files for one server process: rotated by size and age, shipped, expired.

This process writes only its own file (named by `served_log.file_name`), so any number of
workers can share a folder. A file is closed when it passes `serving.log.max_file_bytes` or
`max_file_seconds`; when `serving.log.uri` is a URL the closed file is copied there (fsspec) and
removed here, and a file that could not be copied waits for the next close. Closed files older
than `retention_days` are deleted, here and at the URL.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..config.serving import LogSettings
from ..served_log import file_name, opened_at, remote, writer

logger = logging.getLogger(__name__)

# A file untouched this long past its life has no live writer (it would have been closed).
ORPHAN_GRACE_SECONDS = 120


class LogFiles:
    def __init__(self, folder: Path, settings: LogSettings, clock: Callable[[], float] = time.time) -> None:
        self.folder, self.settings, self.clock = folder, settings, clock
        self.url = remote(settings.uri)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.sequence = 0
        self.path: Path | None = None
        self._handle: BinaryIO | None = None
        self._opened = 0.0
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append to the open file, first closing it if it is full or old and opening the next."""
        now = self.clock()
        if self._handle is not None and self._due(now):
            self.close()
        if self._handle is None:
            self._open(now)
        assert self._handle is not None
        self._handle.write(data)
        self._handle.flush()
        self._size += len(data)

    def close_if_due(self) -> None:
        if self._handle is not None and self._due(self.clock()):
            self.close()

    def close(self) -> None:
        """Close the open file (if any), ship what is closed, delete what has expired."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.url is not None:
            self._ship()
        self._expire()

    def _due(self, now: float) -> bool:
        full = self._size >= self.settings.max_file_bytes
        return full or now - self._opened >= self.settings.max_file_seconds

    def _open(self, now: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sequence += 1
        self.path = self.folder / file_name(now, self.host, self.pid, self.sequence)
        self._handle = self.path.open("ab")
        self._opened, self._size = now, self._handle.tell()

    def _closed_here(self) -> list[Path]:
        """This folder's log files no process writes any more: this one's closed files, and orphans."""
        orphaned = self.clock() - self.settings.max_file_seconds - ORPHAN_GRACE_SECONDS
        mine = writer(self.host, self.pid)
        closed = []
        for path in sorted(self.folder.glob("predictions-*.jsonl")):
            if path == self.path and self._handle is not None:
                continue
            try:
                idle_since = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if mine in path.name or idle_since < orphaned:
                closed.append(path)
        return closed

    def _ship(self) -> None:
        from ..log_store import put

        assert self.url is not None
        for path in self._closed_here():
            try:
                put([path], self.url)
            except Exception as err:  # any store's error: the files wait here for the next close
                logger.warning(
                    "prediction log: not shipped to %s (%s); kept in %s", self.url, err, self.folder
                )
                return
            path.unlink(missing_ok=True)

    def _expire(self) -> None:
        oldest = self.clock() - self.settings.retention_days * 86400
        for path in self._closed_here():
            if (opened_at(path.name) or oldest) < oldest:
                path.unlink(missing_ok=True)
        if self.url is not None:
            self._expire_remote(oldest)

    def _expire_remote(self, oldest: float) -> None:
        from ..log_store import connect, listed

        assert self.url is not None
        try:
            fs, folder = connect(self.url)
            for name in listed(fs, folder):
                if (opened_at(name) or oldest) < oldest:
                    fs.rm_file(f"{folder}/{name}")
        except Exception as err:  # any store's error: expired files are deleted at a later close
            logger.warning("prediction log: could not expire old files at %s (%s)", self.url, err)
