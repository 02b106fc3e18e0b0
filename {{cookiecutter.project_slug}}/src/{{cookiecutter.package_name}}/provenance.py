"""Where a model came from: the git commit, and what dvc.lock recorded (the data hash, stage inputs)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

RAW_DATA = "data/raw/data.csv"  # = Paths.raw, as dvc.lock names it
MODEL_DIR = "models/model"  # = Paths.model


class LockError(ValueError):
    """dvc.lock is there but cannot be read."""


def git_commit(root: Path) -> str:
    """HEAD of the project's repository; $GIT_COMMIT where there is no .git (a container); else 'unknown'."""
    try:
        head = _git(root, "rev-parse", "HEAD").strip()
    except RuntimeError:
        head = ""
    return head or os.environ.get("GIT_COMMIT") or "unknown"


def uncommitted(root: Path, outputs: Iterable[Path] = ()) -> list[str] | None:
    """What in the project's folder differs from HEAD (changed, staged, deleted, or new and not
    ignored), relative to `root`, leaving out `outputs` (files or folders); None outside git."""
    try:
        prefix = _git(root, "rev-parse", "--show-prefix").strip()
        status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    except RuntimeError:
        return None
    skipped = [path.relative_to(root).as_posix() for path in outputs]
    changed = [path.removeprefix(prefix) for path in status_paths(status)]
    return [path for path in changed if not any(path == out or path.startswith(f"{out}/") for out in skipped)]


def status_paths(status: str) -> list[str]:
    """The paths of `git status --porcelain=v1 -z` (a rename's new path; its old one follows it)."""
    records = status.split("\0")
    paths, index = [], 0
    while index < len(records):
        record = records[index]
        index += 1
        if len(record) > 3:
            paths.append(record[3:])
            if record[0] in "RC":
                index += 1  # the path it was renamed or copied from
    return paths


def _git(root: Path, *args: str, timeout: float = 10) -> str:
    """git's output in `root`; RuntimeError when git is missing, slow or fails."""
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeError(str(err)) from None
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return result.stdout


def read_lock(path: Path) -> dict:
    """dvc.lock as data; {} when there is none (nothing reproduced yet)."""
    import yaml

    try:
        lock = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise LockError(f"{path.name}: not valid YAML: run `dvc repro` to write it again") from None
    return lock if isinstance(lock, dict) else {}


def stage_md5(lock: dict, stage: str, kind: str, path: str) -> str | None:
    """The md5 dvc.lock records for `path` among the stage's deps or outs (`kind`)."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    entries = ((stages or {}).get(stage) or {}).get(kind) or []
    return next(
        (str(entry["md5"]) for entry in entries if entry.get("path") == path and entry.get("md5")), None
    )


def data_hash(lock: dict) -> str:
    """The md5 of data/raw/data.csv, as the ingest stage recorded it in dvc.lock."""
    return stage_md5(lock, "ingest", "outs", RAW_DATA) or "unknown"


def evaluated_other_model(lock: dict) -> bool:
    """dvc.lock says the evaluate stage last ran on another models/model than the train stage wrote."""
    trained = stage_md5(lock, "train", "outs", MODEL_DIR)
    evaluated = stage_md5(lock, "evaluate", "deps", MODEL_DIR)
    return trained is not None and evaluated is not None and trained != evaluated


def identity(root: Path, lock_path: Path) -> dict[str, str]:
    """The git commit and the data hash of the project at `root` (for /version and registry tags)."""
    try:
        data = data_hash(read_lock(lock_path))
    except LockError:
        data = "unknown"
    return {"git_commit": git_commit(root), "data_md5": data}
