"""Time the pull-request loop under act for the default project, uv's cache warm: from the
pull_request event to the comment that the recording `cml` received, and to the end of the
run. Three pull requests on a reproduced main (DVC remote: a local folder):

- the baked ci.yml as it is (three test tiers as parallel jobs, and the report), a PR that
  changes the model; and the same with every test in one job (`make-targets: ["test"]`);
- the report workflow alone, the same PR;
- the report workflow alone, a docs-only PR (nothing to reproduce: the floor of the loop);
- the report workflow alone on projects baked with dvc_remote=s3 (moto's server): a params change run and
  pushed before, with the run-cache and without it; a new params change; a docs-only change
  (the "stages" column counts the stages that ran);

and `make report` alone in the reproduced project. CPU seconds are those of act and every
process it started (the machine may be shared: wall time depends on its load, CPU less so).

Run: uv run python benchmarks/bench_pr_loop.py [--runs N] [--only TEXT]
Writes build/bench/pr_loop.json. Reports figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "workflows")]

from act_helpers import (  # noqa: E402
    IMPROVED,
    RETUNED,
    S3_SECRETS,
    build_reference,
    ci_caller,
    edit_readme,
    open_pull_request,
    prepare_origins,
    run_act,
    s3_bake,
    s3_origin,
    s3_store,
    set_model,
)
from conftest import run  # noqa: E402

REPORT_ALONE = "make report alone (no act)"
TARGET_SECONDS = 90.0  # event -> comment, on 2 cores
ONE_TEST_JOB = {"make-targets": '["test"]'}  # every test in one job, as before the tiers
LOOPS = {
    "ci.yml (3 test tiers + report), model": (("test", "report"), set_model(IMPROVED), {}),
    "ci.yml (one test job + report), model": (("test", "report"), set_model(IMPROVED), ONE_TEST_JOB),
    "report alone, model change": (("report",), set_model(IMPROVED), {}),
    "report alone, docs-only change": (("report",), edit_readme, {}),
}
# The report workflow alone on a DVC remote on S3 (moto's server on 127.0.0.1): a params change
# whose run a developer already pushed, and one nobody ran, with the run-cache pushed and pulled
# (`make push`, `make pull`) and without it (`dvc push` only).
S3_LOOPS = {
    "S3, run-cache, params run before": (True, set_model(IMPROVED)),
    "S3, no run-cache, params run before": (False, set_model(IMPROVED)),
    "S3, run-cache, new params": (True, set_model(RETUNED)),
    "S3, run-cache, docs-only change": (True, edit_readme),
}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loop(
    origin: Path, jobs: tuple[str, ...], change, inputs: dict[str, str], secrets: dict[str, str] | None = None
) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pr-loop-") as scratch:
        where = Path(scratch)
        clone, event = open_pull_request(origin, where, change)
        workflow = ci_caller(clone, where / "caller.yml", jobs=jobs, **inputs)
        cpu = children_cpu()
        outcome = run_act(clone, event, workflow, where / "record", secrets=secrets or {})
        if outcome.comment is None:
            sys.exit(f"no comment was recorded:\n{outcome.tail(3000)}")
        return {
            "to_comment_s": outcome.comment_seconds,
            "to_end_s": outcome.seconds,
            "cpu_s": children_cpu() - cpu,
            "exit": outcome.returncode,
            "stages_run": outcome.output.count("Running stage '"),
            "failure": failure_lines(outcome.output) if outcome.returncode else None,
        }


def s3_loops(where: Path, loops: dict, runs: int) -> dict[str, list[dict]]:
    """The S3 loops on two projects baked with dvc_remote=s3 (one pushes the run-cache, one does
    not), their remotes in one S3 server."""
    results: dict[str, list[dict]] = {}
    projects = {}
    for run_cache in {run_cache for run_cache, _ in loops.values()}:
        folder = where / ("with-run-cache" if run_cache else "without-run-cache")
        folder.mkdir()
        projects[run_cache] = s3_bake(folder)
    python = next(iter(projects.values())) / ".venv" / "bin" / "python"
    with s3_store(python, where) as endpoint:
        origins = {
            run_cache: s3_origin(project, endpoint, (IMPROVED,), run_cache=run_cache)
            for run_cache, project in projects.items()
        }
        secrets = {**S3_SECRETS, "AWS_ENDPOINT_URL": endpoint}
        for _ in range(runs):
            for name, (run_cache, change) in loops.items():
                results.setdefault(name, []).append(
                    loop(origins[run_cache], ("report",), change, {}, secrets)
                )
    return results


def failure_lines(output: str) -> list[str]:
    """What a failed loop said: the failed steps and tests, kept since the run's folder is not."""
    marks = ("❌", "FAILED", "Error:", "error:")
    return [line.strip() for line in output.splitlines() if any(mark in line for mark in marks)][-40:]


def report_alone(project: Path) -> dict[str, float | int | None]:
    cpu, start = children_cpu(), time.perf_counter()
    run(["make", "report", "BASE=main", "REPORT=reports/pr-report.md"], cwd=project)
    return {
        "to_comment_s": None,
        "to_end_s": time.perf_counter() - start,
        "cpu_s": children_cpu() - cpu,
        "exit": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", default="", help="run only the loops whose name contains this text")
    options = parser.parse_args()
    runs = options.runs
    loops = {name: loop for name, loop in LOOPS.items() if options.only in name}
    on_s3 = {name: loop for name, loop in S3_LOOPS.items() if options.only in name}
    where = Path(tempfile.mkdtemp(prefix="bench-pr-"))
    results: dict[str, list[dict]] = {}
    try:
        start = time.perf_counter()
        reference = build_reference(where)  # bake, make install (warms uv's cache), dvc repro, make push
        origins = prepare_origins(where, reference)
        prepare_s = time.perf_counter() - start
        for _ in range(runs):
            for name, (jobs, change, inputs) in loops.items():
                results.setdefault(name, []).append(loop(origins.with_metrics, jobs, change, inputs))
            if options.only in REPORT_ALONE:
                results.setdefault(REPORT_ALONE, []).append(report_alone(where / "ml-project"))
        if on_s3:
            results |= s3_loops(where, on_s3, runs)
    finally:
        shutil.rmtree(where, ignore_errors=True)

    def median(name: str, key: str) -> float | None:
        values = [r[key] for r in results[name] if r[key] is not None]
        return statistics.median(values) if values else None

    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    print(f"PR loop under act, {runs} run(s), medians; {os.cpu_count()} cores; prepare {prepare_s:.0f} s")
    print(f"{'loop':40} {'event→comment s':>16} {'event→end s':>12} {'CPU s':>7} {'stages':>6} {'exit':>5}")
    for name, rows in results.items():
        to_comment = median(name, "to_comment_s")
        verdict = "" if to_comment is None else ("  ok" if to_comment < TARGET_SECONDS else "  OVER")
        exits = ",".join(str(r["exit"]) for r in rows)
        stages = ",".join(str(r.get("stages_run", "—")) for r in rows)
        print(
            f"{name:40} {cell(to_comment):>16} {cell(median(name, 'to_end_s')):>12} "
            f"{cell(median(name, 'cpu_s')):>7} {stages:>6} {exits:>5}{verdict}"
        )
    print(f"target: event → comment < {TARGET_SECONDS:.0f} s on 2 cores")
    for name, rows in results.items():
        for row in rows:
            if row.get("failure"):
                print(f"\n{name} failed:\n  " + "\n  ".join(row["failure"]))
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pr_loop.json").write_text(
        json.dumps({"runs": results, "prepare_s": prepare_s, "target_s": TARGET_SECONDS}, indent=2)
    )


if __name__ == "__main__":
    main()
