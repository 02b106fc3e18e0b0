"""The runtime dependencies as locked: what `train` depends on besides its code and data.

`check` writes them to requirements/runtime.txt: uv.lock exported without the dev group, one
pinned line per package the model runs with. The file keeps the same bytes unless one of
those packages changes, so DVC re-runs `train` on a bump of scikit-learn or pandas (and the
pull request's report shows what it did to the model) but not on a bump of ruff or pytest.
A dependency update bot's pull request changes uv.lock and nothing else; that is enough.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .stage import StageFailed

# No hashes, headers or "via" notes: lines that change with a dev package or uv itself.
EXPORT = (
    "export",
    "--frozen",
    "--no-dev",
    "--no-hashes",
    "--no-emit-project",
    "--no-header",
    "--no-annotate",
)
TIMEOUT_SECONDS = 60


def uv_program() -> str:
    """The uv that runs this (uv run sets UV), else the one on PATH."""
    program = os.environ.get("UV") or shutil.which("uv")
    if not program:
        raise StageFailed(
            "uv is not on PATH: it exports uv.lock's runtime packages (install uv, then make repro)"
        )
    return program


def runtime_requirements(root: Path) -> str:
    """uv.lock's runtime packages, pinned, one per line (with their platform markers)."""
    if not (root / "uv.lock").is_file():
        raise StageFailed("uv.lock: not found: run `make install` (it locks the dependencies) first")
    try:
        result = subprocess.run(
            [uv_program(), *EXPORT], cwd=root, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise StageFailed(f"uv.lock: uv export did not finish within {TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        said = " ".join(result.stderr.split())[:300] or f"exit code {result.returncode}"
        raise StageFailed(f"uv.lock: uv export failed: {said}")
    return result.stdout
