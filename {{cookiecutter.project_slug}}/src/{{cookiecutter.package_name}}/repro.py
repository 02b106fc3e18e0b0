"""The `repro` command: `dvc repro` that keeps the last good outputs when a stage fails.

DVC deletes a stage's outputs before it runs the stage; when the stage then fails, the
last good model, metrics and plots are gone (and `cache: false` outputs cannot be
checked out again). Here, every output dvc.yaml declares (outs, metrics, plots; files
and folders), dvc.lock, and the .dvc file of any `dvc add`ed input (dvc repro records
changed input data there) are kept aside in .dvc/tmp/repro/ before `dvc repro` runs;
if it fails or is interrupted, each is put back byte for byte, so the project is
exactly as before. What the failed run wrote is moved to .dvc/tmp/repro-failed/.

Arguments are checked against a short list (flags a person needs, and the stage names
in dvc.yaml) and given to dvc as a list: no shell ever sees them.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

SCRATCH = Path(".dvc") / "tmp" / "repro"  # DVC's own scratch folder: git-ignored, never scanned
FAILED = Path(".dvc") / "tmp" / "repro-failed"
LOCK = Path(".dvc") / "tmp" / "repro.lock"
DVC_LOCK = Path(".dvc") / "tmp" / "lock"  # held by every running dvc command
LOCK_FILE = "dvc.lock"

# The dvc repro flags a person needs, each with the spelling passed on. Not here: -i (it asks
# questions), -R/-P/--glob (other pipelines), -k (the restore undoes what it kept going for).
FLAGS = {
    "-f": "--force",
    "--force": "--force",
    "-s": "--single-item",
    "--single-item": "--single-item",
    "--downstream": "--downstream",
    "--force-downstream": "--force-downstream",
    "--pull": "--pull",
    "--allow-missing": "--allow-missing",
    "--dry": "--dry",
    "--no-commit": "--no-commit",
    "--no-run-cache": "--no-run-cache",
    "-q": "--quiet",
    "--quiet": "--quiet",
    "-v": "--verbose",
    "--verbose": "--verbose",
}
SHORT_FLAGS = re.compile(r"-[a-z]{2,}")  # -fs = -f -s
HELP = ("-h", "--help")


class ReproError(ValueError):
    """The command cannot run as asked; nothing was changed."""


@dataclass(frozen=True)
class Output:
    path: str  # relative to the project root, as dvc.yaml resolves it
    # Rewritten in place, so kept as a copy: a hard link would change with it.
    rewritten: bool = False


def stage_names(pipeline: dict) -> list[str]:
    return [str(name) for name in (pipeline.get("stages") or {})]


def dvc_arguments(words: Iterable[str], stages: Iterable[str]) -> list[str]:
    """`words` as dvc repro arguments: each a flag of FLAGS or a stage name, else ReproError."""
    stages = [stage for stage in stages if not stage.startswith("-")]
    arguments = []
    for word in words:
        if word in FLAGS:
            arguments.append(FLAGS[word])
        elif SHORT_FLAGS.fullmatch(word) and all(f"-{letter}" in FLAGS for letter in word[1:]):
            arguments.extend(FLAGS[f"-{letter}"] for letter in word[1:])
        elif word in stages:
            arguments.append(word)
        else:
            raise ReproError(
                f"repro: unknown argument {_shown(word)}; give dvc repro flags "
                f"({', '.join(sorted(FLAGS))}) or stage names ({', '.join(stages) or 'none'})"
            )
    return arguments


def declared_outputs(pipeline: dict) -> list[Output]:
    """Every output of every stage (outs, metrics, plots), relative to the project root."""
    outputs: dict[str, Output] = {}
    for name, stage in (pipeline.get("stages") or {}).items():
        if not isinstance(stage, dict):
            continue
        if "foreach" in stage or "matrix" in stage:
            raise ReproError(
                f"dvc.yaml: stage {name!r} is generated (foreach/matrix); repro cannot list its outputs"
            )
        workdir = str(stage.get("wdir") or ".")
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind) or []:
                path, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
                path = _inside_project(workdir, str(path), name)
                persist = bool((options or {}).get("persist", False))
                outputs[path] = Output(path, rewritten=persist)  # DVC leaves persist outputs in place
    return list(outputs.values())


def source_records(pipeline: dict) -> list[str]:
    """The `.dvc` file each stage input may have (`dvc add`ed data): dvc repro re-records changed data."""
    records = {}
    for stage in (pipeline.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        workdir = PurePosixPath(str(stage.get("wdir") or "."))
        for dep in stage.get("deps") or []:
            if isinstance(dep, str) and "${" not in dep:
                records[(workdir / f"{dep}.dvc").as_posix()] = True
    return list(records)


def usage(stages: Iterable[str]) -> str:
    return (
        "usage: repro [dvc repro flags] [stage ...]\n"
        "Runs `dvc repro`; if it fails, every output dvc.yaml declares and dvc.lock are put back.\n"
        f"flags: {', '.join(sorted(FLAGS))}\nstages: {', '.join(stages)}"
    )


def _inside_project(workdir: str, path: str, stage: str) -> str:
    if "${" in path or "${" in workdir:
        raise ReproError(
            f"dvc.yaml: stage {stage!r} names an output through a variable; repro cannot list it"
        )
    joined = PurePosixPath(workdir) / path
    if joined.is_absolute() or ".." in joined.parts:
        raise ReproError(f"dvc.yaml: stage {stage!r}: output {path!r} is outside the project")
    return joined.as_posix()


def _shown(text: str, width: int = 60) -> str:
    """A word for an error line: quoted, control characters escaped, cut when long."""
    return repr(text if len(text) <= width else text[:width] + "…")


# --- I/O -----------------------------------------------------------------------------


def read_pipeline(root: Path) -> dict:
    try:
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReproError(f"{root / 'dvc.yaml'}: not found (run from the project root)") from None
    except yaml.YAMLError as err:
        raise ReproError(f"dvc.yaml: not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(pipeline, dict):
        raise ReproError("dvc.yaml: not a pipeline (no stages)")
    return pipeline


def run(root: Path, words: list[str]) -> int:
    """dvc repro with `words`; on failure every declared output and dvc.lock are restored. dvc's exit code."""
    pipeline = read_pipeline(root)
    arguments = dvc_arguments(words, stage_names(pipeline))
    declared_outputs(pipeline)  # refuses a dvc.yaml whose outputs cannot be listed, before anything runs
    if not (root / ".dvc").is_dir():
        raise ReproError(f"{root}: not a DVC project (no .dvc folder)")
    if "--dry" in arguments:
        return _dvc_repro(root, arguments)  # runs nothing, changes nothing
    with _exclusive(root / LOCK, "another `repro` is running in this project"):
        with _exclusive(root / DVC_LOCK, "a dvc command is running in this project; try again when it ends"):
            pass  # only a check: dvc must be able to take its lock once this process lets go
        kept = snapshot(root, _to_keep(root, pipeline), root / SCRATCH)
        code = _dvc_repro(root, arguments)
        if code == 0:
            shutil.rmtree(root / SCRATCH, ignore_errors=True)
            return 0
        moved = restore(root, kept, root / SCRATCH, root / FAILED)
        where = f"; what the failed run wrote is in {FAILED.as_posix()}/" if moved else ""
        print(
            f"repro: dvc repro failed (exit {code}): the outputs of the last good run and dvc.lock "
            f"were kept as they were{where}",
            file=sys.stderr,
        )
        return code


def _to_keep(root: Path, pipeline: dict) -> list[Output]:
    # dvc writes dvc.lock and the .dvc records in place: they are kept as copies.
    records = [path for path in source_records(pipeline) if (root / path).is_file()]
    rewritten = [Output(path, rewritten=True) for path in (LOCK_FILE, *records)]
    return [*declared_outputs(pipeline), *rewritten]


def _dvc_repro(root: Path, arguments: list[str]) -> int:
    from importlib.util import find_spec

    if find_spec("dvc") is None:
        raise ReproError("dvc is not installed in this environment: run `make install`")
    # An argument list, no shell: the words are never parsed as shell text.
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", *arguments], cwd=root)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Let dvc stop its stage and exit before anything is put back (a stage still writing would
        # undo the restore). From a terminal dvc has the Ctrl-C already; pass it on in any case.
        process.send_signal(signal.SIGINT)
        with _uninterrupted():
            process.wait()
        return 130


@dataclass(frozen=True)
class Kept:
    path: str
    existed: bool


def snapshot(root: Path, outputs: list[Output], scratch: Path) -> list[Kept]:
    """Keep each output in `scratch`: hard links where the file is never rewritten in place, else copies."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    kept = []
    try:
        for output in outputs:
            source = root / output.path
            exists = source.exists() or source.is_symlink()
            if exists:
                _duplicate(source, scratch / output.path, link=not output.rewritten)
            kept.append(Kept(output.path, exists))
    except OSError as err:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ReproError(
            f"repro: cannot keep {output.path} aside ({err.strerror}); nothing was run"
        ) from None
    return kept


def restore(root: Path, kept: list[Kept], scratch: Path, failed: Path) -> bool:
    """Put back every kept output the run changed, moving its new version to `failed`.

    True if anything was moved there.
    """
    shutil.rmtree(failed, ignore_errors=True)
    moved = False
    with _uninterrupted():
        for item in kept:
            current, before = root / item.path, scratch / item.path
            there = current.exists() or current.is_symlink()
            if there and item.existed and _same(current, before):
                continue
            if there:
                _move(current, failed / item.path)
                moved = True
            if item.existed:
                _move(before, current)
        shutil.rmtree(scratch, ignore_errors=True)
    return moved


def _same(current: Path, kept: Path) -> bool:
    """The same bytes at both paths: the same file (a link) or equal content; for folders, each file."""
    if current.is_symlink() or kept.is_symlink():
        return current.is_symlink() and kept.is_symlink() and os.readlink(current) == os.readlink(kept)
    if current.is_dir() and kept.is_dir():
        names = sorted(os.listdir(current))
        return names == sorted(os.listdir(kept)) and all(_same(current / n, kept / n) for n in names)
    if current.is_file() and kept.is_file():
        now, then = current.stat(), kept.stat()
        if (now.st_dev, now.st_ino) == (then.st_dev, then.st_ino):
            return True
        return now.st_size == then.st_size and filecmp.cmp(current, kept, shallow=False)
    return False


def _duplicate(source: Path, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    copy = _link_or_copy if link else shutil.copy2
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=copy)
    else:
        copy(source, target)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    # Safe as a link: DVC deletes an output before its stage runs, so the stage writes a new file.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)  # a rename on one file system


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C waits until the block ends: a restore stopped halfway would mix two runs."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals cannot be changed here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold the lock on `path` the way dvc holds its own (an OS file lock); ReproError if it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            _lock(handle.fileno())
        except OSError:
            raise ReproError(f"repro: {busy}") from None
        try:
            yield
        finally:
            _unlock(handle.fileno())


if sys.platform == "win32":  # (sys.platform, not os.name: type checkers follow it)
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
