"""Time how fast the baked command line starts: importing it, `--help`, a refused `promote`, `status`.

Run: uv run python benchmarks/bench_cli.py --runs 5   (or --project DIR for an installed bake)
Writes build/bench/cli.json. A script, not a test: figures are reported, never asserted.

`import pandas, sklearn, mlflow` is timed beside them in the same run, as what a command that
loaded its libraries at import would pay before doing anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
sys.path[:0] = [str(ROOT / "benchmarks")]

from bench_skeleton import environment  # noqa: E402

TARGET_SECONDS = 1.0  # status, promote and rollback start in well under a second


def commands(project: Path) -> dict[str, list[str]]:
    python = str(project / ".venv" / "bin" / "python")
    package = "ml_project"
    return {
        f"python -c 'import {package}.cli'": [python, "-c", f"import {package}.cli"],
        f"{package} --help": [python, "-m", package, "--help"],
        f"{package} promote --version x (refused)": [python, "-m", package, "promote", "--version", "x"],
        f"{package} status (sqlite store; imports MLflow)": [python, "-m", package, "status"],
        "python -c 'import pandas, sklearn, mlflow'": [python, "-c", "import pandas, sklearn, mlflow"],
    }


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, check=False)
    return time.perf_counter() - start


def baked_project(where: Path) -> Path:
    env = environment()
    subprocess.run(
        ["uv", "run", "cookiecutter", "--no-input", "-f", "-o", str(where), str(ROOT), "init_git=no"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    project = where / "ml-project"
    subprocess.run(["make", "install"], cwd=project, env=env, check=True, capture_output=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--project", type=Path, help="an installed default bake (default: bake one)")
    args = parser.parse_args()
    project = args.project or baked_project(OUT / "cli")
    results = {}
    for name, command in commands(project).items():
        timed(command, project)  # warm the file cache
        results[name] = statistics.median(timed(command, project) for _ in range(args.runs))
    width = max(map(len, results))
    print(f"{'command':<{width}}  median s (of {args.runs})")
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds:6.3f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cli.json").write_text(json.dumps({"runs": args.runs, "seconds": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
