"""A shipped prediction log's store (any fsspec URL): the files it holds, and bringing one here.

The files at the store are closed: they never change once shipped (a labels file only grows),
so a copy here of the same size is that file.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .served_log import log_files, opened_at

logger = logging.getLogger(__name__)


def connect(url: str) -> tuple[Any, str]:
    """The store's filesystem and the folder the URL names in it."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(url)
    return fs, base.rstrip("/")


def listed(fs: Any, folder: str) -> dict[str, int | None]:
    """Name -> size of each file in the store's folder (FileNotFoundError when there is none)."""
    return {posixpath.basename(str(e["name"]).rstrip("/")): e.get("size") for e in fs.ls(folder, detail=True)}


def bring(fs: Any, folder: str, name: str, size: int | None, here: Path) -> bool:
    """Copy the file `name` into `here` unless a copy of its size is there; True when copied.

    Written under a temporary name and renamed, so no reader ever sees half of it."""
    target = here / name
    if target.exists() and target.stat().st_size == size:
        return False
    here.mkdir(parents=True, exist_ok=True)
    partial = here / f".{name}.part"
    fs.get_file(posixpath.join(folder, name), str(partial))
    partial.replace(target)
    return True


def put(files: list[Path], url: str) -> None:
    """Copy the files into the store's folder `url`, whole, under their names."""
    fs, folder = connect(url)
    fs.makedirs(folder, exist_ok=True)
    for path in files:
        fs.put_file(str(path), f"{folder}/{path.name}")


def shipped_files(url: str, cache: Path) -> Iterator[Path]:
    """The prediction log's files at `url`, newest first, each brought into `cache` when first asked
    for; a copy whose file has expired at the store goes. A store that cannot be read ends the
    files (with a warning)."""
    try:
        fs, folder = connect(url)
        sizes = listed(fs, folder)
    except (OSError, ValueError) as err:
        logger.warning("prediction log: cannot read %s (%s)", url, err)
        return
    opened = {name: when for name in sizes if (when := opened_at(name)) is not None}
    for kept in log_files(cache):  # expired at the store (serving.log.retention_days): here too
        if kept.name not in opened:
            kept.unlink(missing_ok=True)
    for name in sorted(opened, key=lambda name: (opened[name], name), reverse=True):
        try:
            bring(fs, folder, name, sizes[name], cache)
        except OSError as err:
            logger.warning("prediction log: cannot copy %s from %s (%s)", name, url, err)
            return
        yield cache / name
