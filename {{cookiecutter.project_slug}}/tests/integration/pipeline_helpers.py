"""What the pipeline tests share: copying the project without its local state, and running in the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "{{ cookiecutter.package_name }}"
BIN = Path(sys.executable).parent  # dvc and the project's command live beside this Python
# Local state and outputs that the copy must make for itself.
NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "mlruns",
    "mlartifacts",
    "mlflow.db",
    ".mlgate",  # the record of the registry used: a copy starts without one
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "logs",
    "metrics.json",
    "plots",
    "reports",
)
NOT_COPIED_PATHS = ("data/raw", "data/prepared", "models", ".dvc/cache", ".dvc/tmp")


def ignore(root: Path):
    def ignored(directory: str, names: list[str]) -> set[str]:
        skipped = set(NOT_COPIED(directory, names))
        here = Path(directory).relative_to(root)
        skipped.update(name for name in names if (here / name).as_posix() in NOT_COPIED_PATHS)
        return skipped

    return ignored


def environment(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "mlgate tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "mlgate tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
    }


def explain(result: subprocess.CompletedProcess) -> str:
    return f"`{' '.join(result.args)}` exited {result.returncode}\n{result.stdout}\n{result.stderr}"


def run(project: Path, *command: str) -> subprocess.CompletedProcess:
    """A command in the copy, with its own MLflow store; the project's dvc and command first."""
    return subprocess.run(
        [str(BIN / command[0]) if (BIN / command[0]).exists() else command[0], *command[1:]],
        cwd=project,
        env=environment(project),
        capture_output=True,
        text=True,
        timeout=900,
    )
