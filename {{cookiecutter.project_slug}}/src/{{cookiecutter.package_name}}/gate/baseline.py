"""What the gate compares with: the base branch's committed results, or the base reproduced.

A base without a committed metrics.json (a bake that skipped its first run, a branch whose
results were never committed), or whose committed results are not what its own code, params
and data give (`dvc status` in a checkout of the base finds a change), would have the pull
request judged on thresholds only, or against numbers its code does not produce. Then the base
is reproduced in a separate git worktree with this environment (the judge runs the base's
code: this tree is a checkout of the base), its results are committed to a detached commit
that only the comparison reads, and the report says so. When the reproduction fails, the
comparison takes what the base has (nothing: "no baseline yet"; stale results: those) and the
report says why.

`stale_reason` decides, purely; the rest talks to git and DVC.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .compare import METRICS_FILE, ReportError, file_at, git_output

AUTHOR = ("-c", "user.name=mlgate", "-c", "user.email=mlgate@localhost")  # the detached commit's
TAIL_LINES = 3  # of a failed reproduction's output, in the report
SHOWN = 3  # changed inputs named in the reason
ANY_EXIT = tuple(range(256))  # cleaning up never hides the error that came first
# What `dvc status` says of a fresh checkout whatever its state: DVC-cached files are not there.
ABSENT = ("deleted", "not in cache")


@dataclass(frozen=True)
class Baseline:
    revision: str  # what the comparison reads: the base, or the commit of its reproduction
    reproduced: str | None = None  # why the base was reproduced; None: its committed results
    failed: str | None = None  # why reproducing it failed (the comparison then takes the base as it is)


def stale_reason(status: dict) -> str | None:
    """Why `dvc status` in a checkout of the base says its committed results are stale, or None.

    Cached outputs and their dependents are absent from a checkout (ABSENT): not a change.
    """
    changed: list[str] = []
    for entries in status.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str) and entry != "always changed":
                changed.append(entry)  # "changed command"
            for kind in ("changed deps", "changed outs"):
                for path, state in (entry.get(kind) or {}).items() if isinstance(entry, dict) else []:
                    if isinstance(state, dict):  # params: key -> state
                        changed += [f"{path}: {key}" for key in state]
                    elif state not in ABSENT:
                        changed.append(str(path))
    if not changed:
        return None
    names = list(dict.fromkeys(changed))
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"its committed results are not what its code and params give ({', '.join(names[:SHOWN])}{more})"


def baseline(root: Path, base: str) -> Baseline:
    """The base's committed results when they are current, else the base reproduced."""
    reason = None if file_at(root, base, METRICS_FILE) is not None else f"it has no committed {METRICS_FILE}"
    with base_worktree(root, base) as project:
        reason = reason or stale_reason(_dvc_status(project))
        if reason is None:
            return Baseline(base)
        print(f"report: {base} is reproduced for the comparison ({reason}); this takes a pipeline run")
        try:
            return Baseline(_reproduce(project, base), reproduced=reason)
        except ReportError as err:
            return Baseline(base, reproduced=reason, failed=str(err))


@contextmanager
def base_worktree(root: Path, base: str) -> Iterator[Path]:
    """A temporary checkout of `base` beside this one: the project's folder in it."""
    prefix = git_output(root, "rev-parse", "--show-prefix")  # the project's folder in the repository
    with tempfile.TemporaryDirectory(prefix="mlgate-base-") as scratch:
        tree = Path(scratch) / "base"
        git_output(root, "worktree", "add", "--detach", "--quiet", str(tree), base)
        try:
            yield tree / prefix
        finally:
            git_output(root, "worktree", "remove", "--force", str(tree), allowed=ANY_EXIT)
    git_output(root, "worktree", "prune", allowed=ANY_EXIT)  # whatever `remove` left behind


def _reproduce(project: Path, base: str) -> str:
    """`dvc repro` in the worktree; the detached commit holding its results."""
    _run_pipeline(project)
    git_output(project, "add", "--all", ".")
    message = f"{base}, reproduced"
    git_output(project, *AUTHOR, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
    return git_output(project, "rev-parse", "HEAD")


def _dvc_status(project: Path) -> dict:
    """`dvc status` of the checkout; {} when DVC cannot tell (the committed results are taken)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(project)) as repo:
            status = repo.status()
    except (DvcException, OSError):
        return {}
    return status if isinstance(status, dict) else {}


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    # This environment's python first on PATH: the stages (`python -m <package>.pipeline ...`)
    # run the base's code, installed here. No tracking server: the run is thrown away.
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        return subprocess.run(
            [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True
        )
    except OSError as err:
        raise ReportError(f"could not run dvc: {err}") from None


def _run_pipeline(project: Path) -> None:
    result = _dvc(project, "repro", "--pull", "--allow-missing")
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-TAIL_LINES:]
        raise ReportError(f"dvc repro of the base failed ({result.returncode}): " + " / ".join(tail))
