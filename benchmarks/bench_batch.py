"""Batch scoring: `<package> predict` on a file of a few million rows.

Uses bench_serving's baked project (default answers, a trained `models/model`), writes the
demo's rows repeated to --rows rows as CSV and as Parquet, and scores each into Parquet
with --chunk-rows rows held at once. Median of --runs runs: wall time (the command's start
included), rows/s as the command reports it (reading, checking, scoring and writing), and the
peak resident memory of the process (which a chunked read keeps flat as the file grows).
Prints a table; writes build/bench/batch.json.

Run: uv run python benchmarks/bench_batch.py [--rows 2000000] [--runs 3]
A script, not a test: figures are reported, never asserted (machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time

import bench_serving as serving

BIG = """
import pathlib, sys
import pandas as pd
from ml_project.config.settings import load_settings
from ml_project.pipeline.ingest import ingest
rows = int(sys.argv[1])
demo = ingest(load_settings(pathlib.Path("params.yaml")).data, pathlib.Path("."))
big = pd.concat([demo] * (rows // len(demo) + 1), ignore_index=True).head(rows)
big.to_csv("build/batch/rows.csv", index=False)
big.to_parquet("build/batch/rows.parquet")
"""


def score(source: str, chunk_rows: int) -> dict:
    """One `predict` run in its own process: wall seconds, the rows/s it reports, its peak RSS."""
    command = [".venv/bin/python", "-m", serving.PACKAGE, "predict", "--input", source]
    command += [
        "--output",
        "build/batch/scored.parquet",
        "--model",
        "models/model",
        "--chunk-rows",
        str(chunk_rows),
    ]
    said = serving.PROJECT / "build" / "batch" / "said.txt"
    started = time.perf_counter()
    with said.open("w") as out:
        process = subprocess.Popen(
            command, cwd=serving.PROJECT, env=serving.environment(), stdout=out, stderr=out
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"predict failed:\n{said.read_text()[-2000:]}")
    reported = re.search(r"\(([\d,]+) rows/s\)", said.read_text())
    return {
        "wall_seconds": round(wall, 2),
        "rows_per_second": int(reported[1].replace(",", "")) if reported else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the scored file")
    parser.add_argument("--runs", type=int, default=3, help="runs per input format (median)")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="rows held at once")
    parser.add_argument("--rebake", action="store_true", help="bake and install again")
    args = parser.parse_args()
    described, _ = serving.prepare("linear", args.rebake)
    (serving.PROJECT / "build" / "batch").mkdir(parents=True, exist_ok=True)
    serving.run(["uv", "run", "python", "-c", BIG, str(args.rows)], serving.PROJECT)
    results = {}
    for kind in ("csv", "parquet"):
        runs = [score(f"build/batch/rows.{kind}", args.chunk_rows) for _ in range(args.runs)]
        results[kind] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        results[kind]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    print(
        f"predict on {args.rows:,} rows, chunks of {args.chunk_rows:,} ({described}); median of {args.runs}"
    )
    print(f"{'input':<10}{'wall s':>10}{'rows/s':>12}{'peak RSS MB':>14}")
    for kind, figures in results.items():
        print(
            f"{kind:<10}{figures['wall_seconds']:>10}{figures['rows_per_second']:>12,}{figures['peak_rss_mb']:>14}"
        )
    serving.OUT.mkdir(parents=True, exist_ok=True)
    record = {"rows": args.rows, "chunk_rows": args.chunk_rows, "model": described, "results": results}
    (serving.OUT / "batch.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
