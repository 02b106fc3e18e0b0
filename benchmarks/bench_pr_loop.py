"""Time the pull-request loop under act for the default project (warm uv cache):
from the pull_request event to the comment the recording `cml` received, for the
whole baked ci.yml (tests + report) and for the report job alone; and the
`make report` command alone in a reproduced project.

Run: uv run python benchmarks/bench_pr_loop.py [--runs 3]
Writes build/bench/pr_loop.json. Reports figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "workflows")]

from conftest import bake, run  # noqa: E402
from test_pr_gate_act import IMPROVED_MODEL, open_pull_request, run_act, set_model  # noqa: E402

TARGETS = {"PR loop, ci.yml (tests + report)": 90.0, "make report alone": 3.0}


def origin_with_metrics(where: Path) -> tuple[Path, Path]:
    project = bake(where, dvc_remote="local", dvc_remote_url=str(where / "dvc-storage"))
    for args in (["make", "install"], ["uv", "run", "dvc", "repro"], ["uv", "run", "dvc", "push"]):
        run(args, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    run(["git", "clone", "-q", "--bare", str(project), str(where / "origin.git")], cwd=where)
    return project, where / "origin.git"


def loop(origin: Path, full: bool) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        clone, event = open_pull_request(origin, where, set_model(IMPROVED_MODEL))
        start = time.perf_counter()
        outcome = run_act(clone, event, where, full=full)
        elapsed = time.perf_counter() - start
        if outcome.returncode != 0 or outcome.comment is None:
            sys.exit(f"the PR loop failed:\n{outcome.output[-3000:]}")
        return elapsed


def report_alone(project: Path, runs: int) -> list[float]:
    run(["git", "checkout", "-qb", "bench"], cwd=project)
    set_model(IMPROVED_MODEL)(project)
    run(["uv", "run", "dvc", "repro"], cwd=project)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(["make", "report", "BASE=main", "REPORT=reports/pr-report.md"], cwd=project)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs = parser.add_argument("--runs", type=int, default=3) and parser.parse_args().runs
    where = Path(tempfile.mkdtemp(prefix="bench-pr-"))
    try:
        project, origin = origin_with_metrics(where)
        figures = {
            "PR loop, ci.yml (tests + report)": [loop(origin, full=True) for _ in range(runs)],
            "PR loop, report job alone": [loop(origin, full=False) for _ in range(runs)],
            "make report alone": report_alone(project, runs),
        }
    finally:
        shutil.rmtree(where, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{'step':36} {'median s':>9} {'target s':>9}  runs: {runs}")
    for name, value in medians.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("  ok" if value < target else "  OVER")
        print(f"{name:36} {value:9.2f} {'' if target is None else f'{target:9.1f}'}{verdict}")
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pr_loop.json").write_text(
        json.dumps({"runs": figures, "median": medians, "targets": TARGETS}, indent=2)
    )


if __name__ == "__main__":
    main()
