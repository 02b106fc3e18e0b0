"""What the gate judges: the workspace's metrics and params against the base's.

`read_diffs` is the only part that talks to DVC and git. It returns plain JSON-able data
(recorded as golden files under tests/fixtures/report); `comparison_from_record` turns it
into a Comparison, purely.

In CI the pull request's pipeline runs in one job and its results (`RESULT_FILES`) are
judged in another that checks out the base branch only: the base's code and policy decide,
the pull request's code never runs there (`take_results`).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config.gate import GateSettings
from ..predictions import Rows
from .noise import Significance, Unjudged, significance

METRICS_FILE = "metrics.json"
SLICES_FILE = "reports/slices.json"
PREDICTIONS_FILE = "reports/predictions.csv"  # per test row (predictions.py)
STALENESS_FILE = "reports/staleness.json"  # quality against model age (staleness.py), shown
LOCK_FILE = "dvc.lock"


# The pull request's dvc.lock as committed, beside the one its pipeline wrote (empty: none was
# committed): the report warns when they differ. pr-report.yml writes it with `git show`.
COMMITTED_LOCK = "dvc.lock.committed"
# What the pull request's pipeline hands to the judge: its metrics and what they came from.
# pr-report.yml uploads exactly these (a test checks it).
RESULT_FILES = (
    "dvc.yaml",
    LOCK_FILE,
    "params.yaml",
    METRICS_FILE,
    SLICES_FILE,
    PREDICTIONS_FILE,
    STALENESS_FILE,
    COMMITTED_LOCK,
)
MAX_RESULT_BYTES = 10_000_000
WHOLE_REVISION = "*"  # the error key when DVC could not read a revision at all


class ReportError(RuntimeError):
    """The comparison could not be computed (DVC or git failed, or a metrics file is unreadable)."""


class NoResults(ReportError):
    """The pull request's pipeline left no results to judge: it failed."""


@dataclass(frozen=True)
class Change:
    old: object
    new: object

    @property
    def delta(self) -> float | None:
        old, new = number(self.old), number(self.new)
        return None if old is None or new is None else new - old


@dataclass(frozen=True)
class Comparison:
    """What DVC and git say about the workspace against the base."""

    base: str  # as shown
    metrics: dict[str, Change]  # "model.roc_auc", "baseline.roc_auc", "slices:colour.groups.Black.accuracy"
    params: dict[str, Change]  # changed params only: "train.model.regularization"
    has_baseline: bool  # the base has a readable metrics.json
    lock_changed: bool  # dvc.lock differs from the base
    reproduced: str | None = None  # why the base was reproduced for the comparison (gate/baseline.py)
    reproduce_failed: str | None = None  # why that failed: the comparison then has no baseline
    results_uncommitted: bool = False  # the committed metrics and slices are not what the pipeline wrote
    revision: str = ""  # what was read for the base: `base`, or the commit of its reproduction

    @property
    def unchanged(self) -> bool:
        """Nothing about the model changed: same dvc.lock, same params, same metrics."""
        return (
            self.has_baseline
            and not self.lock_changed
            and not self.params
            and all(change.old == change.new for change in self.metrics.values())
        )


def comparison_from_record(record: dict, base: str, revision: str | None = None) -> Comparison:
    """Build the comparison from `read_diffs`' output against `revision` (default: `base`, the
    name shown); a read error other than "the base has no such file yet" raises ReportError."""
    revision = revision or base
    problems = [
        *read_errors(record["metrics"].get("errors", {}), revision),
        *read_errors(record["params"].get("errors", {}), revision),
    ]
    if problems:
        raise ReportError("DVC could not read " + "; ".join(problems))
    metrics = metric_changes(record["metrics"].get("diff", {}))
    missing_at_base = record["metrics"].get("errors", {}).get(revision, {})
    has_baseline = METRICS_FILE not in missing_at_base and any(
        name.startswith("model.") and number(change.old) is not None for name, change in metrics.items()
    )
    return Comparison(
        base=base,
        metrics=metrics,
        params=param_changes(record["params"].get("diff", {})),
        has_baseline=has_baseline,
        lock_changed=bool(record["lock_changed"]),
        revision=revision,
    )


def read_errors(errors: dict, base: str) -> list[str]:
    """DVC's read errors as messages, except a file that the base does not have yet (first PR)."""
    return [
        f"{'the revision' if path == WHOLE_REVISION else path} at {revision}: {error['message']}"
        for revision, files in errors.items()
        for path, error in files.items()
        if not (revision == base and path != WHOLE_REVISION and error["missing"])
    ]


def metric_changes(diff: dict) -> dict[str, Change]:
    """Flatten DVC's metrics diff: metrics.json keys as they are, slices prefixed with "slices:"."""
    changes = {}
    for path, entries in diff.items():
        prefix = "" if path == METRICS_FILE else "slices:" if path == SLICES_FILE else f"{path}:"
        for name, values in entries.items():
            changes[prefix + name] = Change(values.get("old"), values.get("new"))
    return changes


def param_changes(diff: dict) -> dict[str, Change]:
    return {
        name: Change(values.get("old"), values.get("new"))
        for entries in diff.values()
        for name, values in entries.items()
        if values.get("old") != values.get("new")
    }


def number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def formatted(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def read_diffs(root: Path, base: str) -> dict:
    """Metrics and params of the workspace against `base` through DVC's Python API, and
    whether dvc.lock changed. Plain JSON-able data: DVC's exceptions become
    {"error": class name, "message": text, "missing": the file does not exist}."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from scmrepo.exceptions import SCMError

    try:
        with Repo(str(root)) as repo:
            metrics = repo.metrics.diff(a_rev=base, b_rev="workspace", all=True)
            params = repo.params.diff(a_rev=base, b_rev="workspace")
    except (DvcException, SCMError, OSError) as err:
        hint = (
            " (in a shallow clone, fetch the base branch first)" if "unknown Git revision" in str(err) else ""
        )
        raise ReportError(f"DVC could not compare with {base!r}: {err}{hint}") from None
    return {
        "metrics": {"diff": metrics.get("diff", {}), "errors": _plain_errors(metrics.get("errors", {}))},
        "params": {"diff": params.get("diff", {}), "errors": _plain_errors(params.get("errors", {}))},
        "lock_changed": _lock_changed(root, base),
    }


def compare(root: Path, base: str, revision: str | None = None) -> Comparison:
    """The workspace against `revision` (default: `base`), shown as `base`."""
    return comparison_from_record(read_diffs(root, revision or base), base, revision)


def noise_of(rows: tuple[Rows, Rows], gate: GateSettings) -> Significance:
    """The pull request's and the base's per-row predictions resampled (gate/noise.py)."""
    return significance(*rows, list(gate.metrics), gate.bootstrap_rounds, gate.bootstrap_seed)


def read_predictions(root: Path, revision: str) -> tuple[Rows, Rows] | Unjudged:
    """The per-row predictions of the workspace (this pull request) and of `revision` (the base),
    or why they cannot be compared."""
    from ..predictions import PredictionsError, parse_rows

    ours = root / PREDICTIONS_FILE
    theirs = file_at(root, revision, PREDICTIONS_FILE)
    if theirs is None:
        return Unjudged(f"the base has no {PREDICTIONS_FILE} (older than the per-row predictions)")
    if not ours.is_file():
        return Unjudged(f"this pull request has no {PREDICTIONS_FILE}")
    try:
        pr = parse_rows(ours.read_bytes(), f"this pull request's {PREDICTIONS_FILE}")
        base = parse_rows(theirs, f"the base's {PREDICTIONS_FILE}")
    except PredictionsError as err:
        return Unjudged(str(err))
    if pr.classification != base.classification:
        return Unjudged("the base and this pull request predict different kinds of target")
    return pr, base


def results_uncommitted(root: Path, handed_over: bool) -> bool:
    """The results the pipeline wrote (the metrics and slices whose md5 dvc.lock records) are not
    the committed ones. Handed-over results carry the committed dvc.lock (COMMITTED_LOCK; absent
    when an older workflow handed them over: nothing to tell); else it is HEAD's. The model's own
    hash is left out: a model trained again on another machine differs in its metadata."""
    produced = root / LOCK_FILE
    if not produced.is_file():
        return False
    if handed_over:
        copy = root / COMMITTED_LOCK
        if not copy.is_file():
            return False
        committed: bytes | None = copy.read_bytes()
    else:
        committed = file_at(root, "HEAD", LOCK_FILE)
    return recorded_results(committed) != recorded_results(produced.read_bytes())


def recorded_results(lock: bytes | None) -> dict[str, str]:
    """The md5 that a dvc.lock records for the results the gate reads; {} for none or a broken one."""
    import yaml

    try:
        parsed = yaml.safe_load(lock or b"") or {}
    except yaml.YAMLError:
        return {}
    stages = parsed.get("stages") if isinstance(parsed, dict) else None
    return {
        str(out["path"]): str(out.get("md5"))
        for stage in (stages.values() if isinstance(stages, dict) else [])
        if isinstance(stage, dict)
        for out in stage.get("outs") or []
        if isinstance(out, dict) and out.get("path") in (METRICS_FILE, SLICES_FILE)
    }


def file_at(root: Path, rev: str, name: str) -> bytes | None:
    """A file's content at a git revision (`name` relative to `root`), None when it is not there."""
    try:
        result = subprocess.run(["git", "show", f"{rev}:./{name}"], cwd=root, capture_output=True)
    except OSError as err:
        raise ReportError(f"could not run git: {err}") from None
    return result.stdout if result.returncode == 0 else None


def take_results(results: Path, root: Path) -> None:
    """Put the pull request's results (RESULT_FILES, as its pipeline wrote them) into the base's
    tree, so DVC compares them with the base. Only those files, only regular files, bounded."""
    if not (results / METRICS_FILE).is_file():
        raise NoResults(f"the pull request's results have no {METRICS_FILE}: its pipeline did not finish")
    for name in RESULT_FILES:
        source = results / name
        if not source.exists() and not source.is_symlink():
            (root / name).unlink(missing_ok=True)  # the pull request does not have it
            continue
        if source.is_symlink() or not source.is_file():
            raise ReportError(f"the pull request's {name} is not a regular file")
        if source.stat().st_size > MAX_RESULT_BYTES:
            raise ReportError(f"the pull request's {name} is over {MAX_RESULT_BYTES:,} bytes")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / name)


def _plain_errors(errors: dict) -> dict:
    plain = {}
    for revision, files in errors.items():
        # DVC reports one error per file, or one for a revision it could not read at all.
        per_file = files.items() if isinstance(files, dict) else [(WHOLE_REVISION, files)]
        plain[revision] = {
            path: {
                "error": type(error).__name__,
                "message": " ".join(str(error).split()) or type(error).__name__,
                "missing": isinstance(error, FileNotFoundError),
            }
            for path, error in per_file
        }
    return plain


def _lock_changed(root: Path, base: str) -> bool:
    """dvc.lock's blob at `base` against the file in the workspace (tracked or not)."""
    at_base = git_output(root, "rev-parse", "--verify", "--quiet", f"{base}:{LOCK_FILE}", allowed=(0, 1))
    here = git_output(root, "hash-object", LOCK_FILE) if (root / LOCK_FILE).exists() else ""
    return at_base != here


def git_output(root: Path, *args: str, allowed: tuple[int, ...] = (0,)) -> str:
    """git's output in `root`; an exit code not in `allowed` raises ReportError."""
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except OSError as err:
        raise ReportError(f"could not run git: {err}") from None
    if result.returncode not in allowed:
        message = " ".join(result.stderr.split()) or f"exit {result.returncode}"
        raise ReportError(f"git {args[0]} failed: {message}")
    return result.stdout.strip() if result.returncode == 0 else ""
