"""Time the walking skeleton on this machine: bake, install, first and no-op
`dvc repro`, and the baked project's fast test tier.

Run: make bench   (or: uv run python benchmarks/bench_skeleton.py --runs 3 --repro-runs 1)
Writes build/bench/skeleton.json. A script, not a test: figures are reported,
never asserted, because machines are noisy.

Each cheap step is measured --runs times (median reported): bakes and installs on
fresh bakes, no-op repros and the fast tier in the first project. The first
`dvc repro` (about half a minute) is measured --repro-runs times, on as many
fresh projects. One uncounted bake and install first makes sure uv's cache is warm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
TARGETS = {"first dvc repro": 30.0, "no-op dvc repro": 3.0, "fast test tier": 20.0}
STEPS = ("bake", "make install (warm uv cache)", *TARGETS)
FAST_TIER = ["make", "test-fast"]  # the baked unit, data and model tests


def environment() -> dict[str, str]:
    # Bytecode is written, as by default: without it every process compiles its libraries anew.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = f"{ROOT / '.tools' / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # uv, never a pyenv shim
    env |= {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "Benchmark",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Benchmark",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    return env


FAILURES: dict[str, str] = {}


def timed(args: list[str], cwd: Path, step: str | None = None) -> float:
    """Seconds `args` took. A failure stops the benchmark, unless `step` names a step that
    nothing else depends on: then it is recorded and printed beside the figure."""
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        output = f"{' '.join(args)} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        if step is None:
            sys.exit(output)
        FAILURES[step] = output
    return elapsed


def bake(name: str) -> tuple[float, Path]:
    """Bake the default answers into build/bench/<name>/ml-project, as `cookiecutter` in a shell would."""
    target = OUT / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(target), str(ROOT)]
    return timed(cookiecutter, ROOT), target / "ml-project"


def measure(runs: int, repro_runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {step: [] for step in STEPS}
    _, warm_up = bake("warm-up")
    timed(["make", "install"], warm_up)
    projects = []
    for index in range(max(runs, repro_runs)):
        seconds, project = bake(f"run-{index}")
        projects.append(project)
        if index < runs:
            figures["bake"].append(seconds)
        install = timed(["make", "install"], project)
        if index < runs:
            figures["make install (warm uv cache)"].append(install)
    for project in projects[: max(repro_runs, 1)]:
        figures["first dvc repro"].append(timed(["uv", "run", "dvc", "repro"], project))
    first = projects[0]
    for _ in range(runs):
        figures["no-op dvc repro"].append(timed(["uv", "run", "dvc", "repro"], first))
    for _ in range(runs):
        figures["fast test tier"].append(timed(FAST_TIER, first, step="fast test tier"))
    return figures


def machine() -> dict[str, str | int | None]:
    uv = subprocess.run(["uv", "--version"], env=environment(), capture_output=True, text=True)
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python (baked)": (ROOT / "build" / "bench" / "run-0" / "ml-project" / ".python-version")
        .read_text()
        .strip(),
        "uv": uv.stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each cheap step (median reported)")
    parser.add_argument("--repro-runs", type=int, default=1, help="first `dvc repro` runs, on fresh bakes")
    args = parser.parse_args()
    figures = measure(max(args.runs, 1), max(args.repro_runs, 1))
    medians = {step: statistics.median(values) for step, values in figures.items()}
    info = machine()

    print(f"{'step':30} {'runs':>4} {'median s':>9} {'target s':>9}")
    for step, value in medians.items():
        target = TARGETS.get(step)
        verdict = "" if target is None else ("  ok" if value < target else "  OVER")
        verdict += "  FAILED (see skeleton.json)" if step in FAILURES else ""
        target_text = "" if target is None else f"< {target:.0f}"
        print(f"{step:30} {len(figures[step]):4} {value:9.2f} {target_text:>9}{verdict}")
    print(", ".join(f"{key}: {value}" for key, value in info.items()))

    OUT.mkdir(parents=True, exist_ok=True)
    report = {"machine": info, "runs": figures, "median": medians, "targets": TARGETS, "failures": FAILURES}
    (OUT / "skeleton.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {(OUT / 'skeleton.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
