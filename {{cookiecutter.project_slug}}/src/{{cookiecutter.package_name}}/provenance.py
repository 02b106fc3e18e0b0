"""Where a model came from: the git commit, and what dvc.lock recorded (the data hash, stage inputs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RAW_DATA = "data/raw/data.csv"  # = Paths.raw, as dvc.lock names it
MODEL_DIR = "models/model"  # = Paths.model


class LockError(ValueError):
    """dvc.lock is there but cannot be read."""


def git_commit(root: Path) -> str:
    """HEAD of the project's repository; $GIT_COMMIT where there is no .git (a container); else 'unknown'."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is not None and result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    return os.environ.get("GIT_COMMIT") or "unknown"


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
