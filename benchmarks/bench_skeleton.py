"""Time the walking skeleton on this machine: bake, install, first and no-op
`dvc repro`, and the baked project's fast test tier.

Run: make bench   (or: uv run python benchmarks/bench_skeleton.py --runs 3)
Writes build/bench/skeleton.json. A script, not a test: figures are reported,
never asserted, because machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
TARGETS = {"first dvc repro": 30.0, "no-op dvc repro": 3.0, "fast test tier": 20.0}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}
    return env


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def bake(target: Path) -> float:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    return timed(["uv", "run", "cookiecutter", "--no-input", "--output-dir", str(target), str(ROOT)], ROOT)


def measure(runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in ("bake", "make install (warm uv cache)")}
    figures |= {name: [] for name in TARGETS}
    for index in range(runs):
        base = OUT / f"run-{index}"
        figures["bake"].append(bake(base))
        project = base / "ml-project"
        figures["make install (warm uv cache)"].append(timed(["make", "install"], project))
        figures["first dvc repro"].append(timed(["uv", "run", "dvc", "repro"], project))
        figures["no-op dvc repro"].append(timed(["uv", "run", "dvc", "repro"], project))
        figures["fast test tier"].append(
            timed(["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not integration"], project)
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh bakes to measure (median reported)")
    runs = parser.parse_args().runs
    figures = measure(runs)
    rows = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{'step':32} {'median s':>9} {'target s':>9}  runs: {runs}, cores: {os.cpu_count()}")
    for name, value in rows.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("  ok" if value < target else "  OVER")
        print(f"{name:32} {value:9.2f} {'' if target is None else f'{target:9.1f}'}{verdict}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "skeleton.json").write_text(
        json.dumps({"runs": figures, "median": rows, "targets": TARGETS}, indent=2)
    )


if __name__ == "__main__":
    main()
