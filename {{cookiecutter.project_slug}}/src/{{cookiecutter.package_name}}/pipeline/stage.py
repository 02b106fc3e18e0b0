"""What every stage shares when it runs as a command: settings, paths, one `error:` line on failure."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..paths import Paths


class StageFailed(Exception):
    """A stage refused its input; the message says why."""


def run_stage(body: Callable[[Paths], None], root: Path | None = None) -> int:
    """Run one stage in the project at `root` (default: here, as for dvc repro); its exit code.

    `body` reads the stage's own view of params.yaml (its `StageSettings`, its sections only):
    the check stage, which runs first, has validated the whole file.
    """
    paths = Paths((root or Path.cwd()).resolve())
    try:
        body(paths)
    except (StageFailed, ValueError) as err:  # every refusal of bad settings or data is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def write_json(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def relative(path: Path, paths: Paths) -> str:
    """A path as dvc.yaml names it (relative to the project root), for messages."""
    return str(path.relative_to(paths.root))
