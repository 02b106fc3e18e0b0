"""Time the gate's noise check: the paired bootstrap of the gated metrics over per-row predictions.

Run: uv run python benchmarks/bench_gate_noise.py --runs 3   (or --project DIR for an installed
bake). It bakes the default project into build/bench/noise (no first run), installs it, and
runs itself again in the project's environment, which has the package. Writes
build/bench/gate_noise.json. A script, not a test: figures are
reported, never asserted. Rows are synthetic two-class predictions of a model with some
skill; the base and the pull request differ by chance. Sizes up to the file's cap
(100,000 rows); each is timed --runs times (median), with the process's peak RSS after it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
SIZES = (1_488, 10_000, 100_000)  # the demo's test set, a larger one, the cap
GATED = ["roc_auc", "log_loss", "balanced_accuracy"]  # the demo's gated metrics


def package() -> str:
    """The baked package's name: the one folder under src/ of the project run from."""
    [name] = [path.name for path in Path("src").iterdir() if (path / "gate" / "noise.py").is_file()]
    return name


def rows(count: int, seed: int, predictions, shift: float = 0.0):
    """A predictions file's content (predictions.py's columns), parsed as the gate parses it."""
    rng = random.Random(seed)
    lines = ["row,truth,predicted,proba:Yes"]
    for i in range(count):
        truth = rng.random() < 0.7
        proba = min(0.99, max(0.01, (0.7 if truth else 0.4) + rng.gauss(0, 0.2) + shift))
        lines.append(f"{i:08d},{'Yes' if truth else 'No'},{'Yes' if proba >= 0.5 else 'No'},{proba:.6f}")
    return predictions.parse_rows("\n".join(lines).encode(), "predictions.csv")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = f"{ROOT / '.tools' / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # uv, never a pyenv shim
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}


def baked_project(where: Path) -> Path:
    answers = ["init_git=no", "first_run=no"]
    command = ["uv", "run", "cookiecutter", "--no-input", "-f", "-o", str(where), str(ROOT), *answers]
    subprocess.run(command, cwd=ROOT, env=environment(), check=True, capture_output=True)
    project = where / "ml-project"
    subprocess.run(["make", "install"], cwd=project, env=environment(), check=True, capture_output=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--project", type=Path, help="an installed default bake (default: bake one)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # run in the project
    args = parser.parse_args()
    if not args.measure:
        project = args.project or baked_project(OUT / "noise")
        again = ["uv", "run", "python", str(Path(__file__).resolve()), "--measure", "--runs", str(args.runs)]
        again += ["--rounds", str(args.rounds)]
        sys.exit(subprocess.run(again, cwd=project, env=environment()).returncode)
    name = package()
    predictions = importlib.import_module(f"{name}.predictions")
    noise = importlib.import_module(f"{name}.gate.noise")
    figures = {}
    for count in SIZES:
        base, pr = rows(count, 0, predictions), rows(count, 0, predictions, shift=0.01)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            noise.significance(pr, base, GATED, args.rounds, seed=0)
            times.append(time.perf_counter() - start)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures[str(count)] = {"seconds": round(statistics.median(times), 3), "peak_rss_mib": round(peak_mib)}
        print(
            f"{count:>7,} rows, {args.rounds} resamples, {len(GATED)} metrics: "
            f"{figures[str(count)]['seconds']:.3f} s (median of {args.runs}), peak RSS {peak_mib:.0f} MiB"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"rounds": args.rounds, "sizes": figures}
    (OUT / "gate_noise.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
