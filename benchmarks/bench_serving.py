"""Serving throughput and latency: the baked model server against `mlflow models serve`.

Bakes the default project into build/bench/serving (or reuses it), trains once, and
serves the same `models/model` with each server in turn, pinned to core 0
(`taskset -c 0`); the load generator runs on core 1. Single-row requests at
concurrency 1 and 4, closed loop (each connection sends its next request when the
last is answered), median of --runs runs: requests/s, p50 and p99 latency, and the
server's resident memory. Prints a table; writes build/bench/serving.json.

Then the server unpinned with one worker and with two (`serve --workers 2`): on a
2-core machine the load generator shares the cores with them, so the ratio is a floor.

Load generator: wrk (Debian package `wrk`) with a Lua script for the POST, when it is
on PATH; else a Python client (asyncio, raw HTTP/1.1 on kept-alive sockets). The
JSON says which one ran.

Run: uv run python benchmarks/bench_serving.py [--runs 3] [--seconds 10]
A script, not a test: figures are reported, never asserted (machines are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
BAKES = OUT / "serving"
PROJECT = BAKES / "linear" / "ml-project"  # set by prepare()
PACKAGE = "ml_project"
CONCURRENCY = (1, 4)
SERVER_CORE, CLIENT_CORE = "0", "1"

TRAIN = """
import io, json, pathlib
import pandas as pd
from ml_project.artifacts import save_model
from ml_project.config.settings import load_settings
from ml_project.pipeline.ingest import ingest
from ml_project.pipeline.split import split_frame
from ml_project.pipeline.train import fit
root = pathlib.Path(".")
s = load_settings(root / "params.yaml")
raw = pd.read_csv(io.StringIO(ingest(s.data, root).to_csv(index=False)))
train, test = split_frame(raw, s.split, target=s.data.target, time_column=s.data.time_column,
                          stratify=s.task == "classification")
model = fit(train, s)
save_model(model, root / "models" / "model", metadata={"mlflow_run_id": "bench"})
row = json.loads(test[list(model.feature_names_in_)].head(1).to_json(orient="records"))[0]
(root / "bench-row.json").write_text(json.dumps(row))
print(s.task, s.train.model.kind)
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "r"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %d, \\"seconds\\": %f, \\"errors\\": %d, \\"non2xx\\": %d, " ..
    "\\"p50_ms\\": %f, \\"p99_ms\\": %f}\\n",
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}
    return env


def run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def prepare(model: str, rebake: bool) -> tuple[str, dict]:
    """The baked project (default answers but `model`) with a trained model; (what it is, one row)."""
    global PROJECT
    PROJECT = BAKES / model / "ml-project"
    if rebake or not (PROJECT / ".venv").exists():
        shutil.rmtree(PROJECT.parent, ignore_errors=True)
        PROJECT.parent.mkdir(parents=True)
        cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(PROJECT.parent)]
        run([*cookiecutter, str(ROOT), "init_git=no", f"model={model}"], ROOT)
        run(["make", "install"], PROJECT)
    described = run(["uv", "run", "python", "-c", TRAIN], PROJECT).strip()
    return described, json.loads((PROJECT / "bench-row.json").read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], url: str, probe: str, cores: str | None) -> subprocess.Popen:
    """The server on `cores` (None: wherever the kernel puts it), once `probe` answers."""
    taskset = ["taskset", "-c", cores] if cores and shutil.which("taskset") else []
    env = environment()
    env["PATH"] = f"{PROJECT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn`
    process = subprocess.Popen(
        [*taskset, *command],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + probe, timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                errors = process.stderr.read().decode() if process.stderr else ""
                sys.exit(f"{' '.join(command)} exited:\n{errors[-3000:]}")
            time.sleep(0.3)
    stop(process)
    sys.exit(f"{' '.join(command)} did not answer {probe} within 180 s")


def stop(process: subprocess.Popen) -> None:
    with_group = os.getpgid(process.pid)
    os.killpg(with_group, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(with_group, signal.SIGKILL)
        process.wait()


def tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(child) for child in children.read_text().split()] if children.exists() else []
    return [pid] + [p for child in found for p in tree(child)]


def rss_mb(pid: int) -> float:
    """Resident memory of the processes that serve: the leaves of the process tree
    (`mlflow models serve` is a launcher waiting on its uvicorn child; taskset execs)."""
    total = 0
    for member in tree(pid):
        if tree(member) != [member]:
            continue
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def wrk(url: str, body: Path, connections: int, seconds: int, script: Path) -> dict:
    command = ["taskset", "-c", CLIENT_CORE] if shutil.which("taskset") else []
    command += ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url]
    output = subprocess.run(
        command, env={**environment(), "BENCH_BODY": str(body)}, capture_output=True, text=True, check=True
    ).stdout
    [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def python_client(url: str, body: Path, connections: int, seconds: int, script: Path) -> dict:
    """The fallback load generator: `connections` kept-alive sockets in a closed loop, on core 1."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    payload = body.read_bytes()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = [0, 0]

    async def connection(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(head + payload)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status:
                errors[1] += 1
        writer.close()

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "seconds": elapsed,
        "errors": errors[0],
        "non2xx": errors[1],
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
        "rps": len(ordered) / elapsed,
    }


def measure(
    name: str, command: list[str], path: str, body: Path, args, generate, cores: str | None = SERVER_CORE
) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    probe = "/ready" if name.startswith("mlgate") else "/ping"
    process = start([arg.replace("{port}", str(port)) for arg in command], url, probe, cores)
    try:
        generate(url + path, body, 2, 2, args.script)  # warm up
        results = {}
        for connections in CONCURRENCY:
            runs = [
                generate(url + path, body, connections, args.seconds, args.script) for _ in range(args.runs)
            ]
            results[connections] = {
                key: statistics.median(run[key] for run in runs) for key in ("rps", "p50_ms", "p99_ms")
            }
            results[connections]["errors"] = sum(run["errors"] + run["non2xx"] for run in runs)
            results[connections]["runs"] = runs
        rss = rss_mb(process.pid)
    finally:
        stop(process)
    return {"concurrency": results, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per server and concurrency (median)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each run")
    parser.add_argument("--rebake", action="store_true", help="bake and install again")
    parser.add_argument(
        "--model",
        default="linear",
        choices=["linear", "random_forest", "gradient_boosting"],
        help="model family",
    )
    args = parser.parse_args()

    described, row = prepare(args.model, args.rebake)
    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    args.script = scratch / "post.lua"
    args.script.write_text(WRK_SCRIPT)
    ours, theirs = scratch / "row.json", scratch / "records.json"
    ours.write_text(json.dumps(row))
    theirs.write_text(json.dumps({"dataframe_records": [row]}))
    generator = "wrk" if shutil.which("wrk") else "python-asyncio"
    generate = wrk if generator == "wrk" else python_client

    venv = PROJECT / ".venv" / "bin"
    logged = [str(venv / PACKAGE), "serve", "--model", "models/model", "--port", "{port}"]
    mlgate = [*logged, "--no-log"]
    mlflow = [str(venv / "mlflow"), "models", "serve", "-m", "models/model", "--env-manager", "local"]
    mlflow += ["--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    figures = {
        "mlgate": measure("mlgate", mlgate, "/predict", ours, args, generate),
        # As deployed: every prediction queued for the prediction log, written by a background thread.
        "mlgate + log": measure("mlgate-log", logged, "/predict", ours, args, generate),
        "mlflow models serve": measure("mlflow", mlflow, "/invocations", theirs, args, generate),
    }
    # serving.workers: one process against two, neither pinned. On a 2-core machine the load
    # generator (on core 1) takes its share of the cores the workers would use.
    unpinned = {
        "mlgate, 1 worker *": measure("mlgate-1", mlgate, "/predict", ours, args, generate, cores=None),
        "mlgate, 2 workers *": measure(
            "mlgate-2", [*mlgate, "--workers", "2"], "/predict", ours, args, generate, cores=None
        ),
    }
    shutil.rmtree(scratch, ignore_errors=True)

    print(f"model: {described}; load generator: {generator}; {args.runs} runs of {args.seconds} s, median")
    print(f"{'server':22} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MB':>7}")
    for name, result in (figures | unpinned).items():
        for connections, values in result["concurrency"].items():
            print(
                f"{name:22} {connections:4} {values['rps']:8.0f} {values['p50_ms']:8.2f} "
                f"{values['p99_ms']:8.2f} {values['errors']:6} {result['rss_mb']:7.0f}"
            )
    peer = figures["mlflow models serve"]
    ratios = {name: ratios_to(figures[name], peer) for name in ("mlgate", "mlgate + log")}
    for name, by_connections in ratios.items():
        for connections, ratio in by_connections.items():
            print(
                f"{'ratio ' + name:22} {connections:4} {ratio['rps']:7.1f}x "
                f"{ratio['p50']:7.1f}x {ratio['p99']:7.1f}x  (RSS {ratio['rss']:.2f}x less)"
            )
    print(f"* server on any core, sharing the machine's {os.cpu_count()} with the load generator (on core 1)")
    workers = log_share(unpinned["mlgate, 2 workers *"], unpinned["mlgate, 1 worker *"])
    for connections, share in workers.items():
        rps, p99 = share["rps"], share["p99_ms"]
        print(f"{'2 workers / 1':22} {connections:4} {rps:7.2f}x the req/s, p99 {p99:.2f} ms")
    log_cost = log_share(figures["mlgate + log"], figures["mlgate"])
    for connections, share in log_cost.items():
        kept, p99 = share["rps"], share["p99_ms"]
        print(f"{'with log / without':22} {connections:4} {kept:7.0%} of req/s, p99 {p99:.2f} ms")
    report = {
        "log_share": log_cost,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "model": described,
        "load_generator": generator,
        "runs": args.runs,
        "seconds": args.seconds,
        "servers": figures,
        "workers": {"servers": unpinned, "two_to_one": workers, "cores": os.cpu_count()},
        "ratios": ratios,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = "serving.json" if args.model == "linear" else f"serving-{args.model}.json"
    (OUT / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {(OUT / name).relative_to(ROOT)}")


def log_share(logged: dict, bare: dict) -> dict[int, dict[str, float]]:
    """One server against another (with its log against without; two workers against one): the
    first's requests/s as a share of the second's, and the first's p99."""
    return {
        connections: {
            "rps": logged["concurrency"][connections]["rps"] / bare["concurrency"][connections]["rps"],
            "p99_ms": logged["concurrency"][connections]["p99_ms"],
        }
        for connections in CONCURRENCY
    }


def ratios_to(mine: dict, peer: dict) -> dict[int, dict[str, float]]:
    """How many times better than the peer, per concurrency: throughput, p50, p99; and memory."""
    ratios = {}
    for connections in CONCURRENCY:
        ours, theirs = mine["concurrency"][connections], peer["concurrency"][connections]
        ratios[connections] = {
            "rps": ours["rps"] / theirs["rps"],
            "p50": theirs["p50_ms"] / ours["p50_ms"],
            "p99": theirs["p99_ms"] / ours["p99_ms"],
            "rss": peer["rss_mb"] / mine["rss_mb"],
        }
    return ratios


if __name__ == "__main__":
    main()
