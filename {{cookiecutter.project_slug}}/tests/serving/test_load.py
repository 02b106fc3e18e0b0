"""The server under load: locust, headless, for a bounded time, against a server process.

Single-row requests from a few users back to back: no request may fail, the 99th
percentile latency must stay under `serving.p99_ms` and the throughput above
`serving.min_rps` in params.yaml. Where
the machine allows, the server and locust each get a core of their own.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving_helpers import start_server, stop

pytestmark = [pytest.mark.serving, pytest.mark.load]

USERS = 4
RUN_SECONDS = 15
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(pid, {sorted(os.sched_getaffinity(0))[core]})


def aggregated(stats_csv: Path) -> dict[str, str]:
    with stats_csv.open() as handle:
        [row] = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    return row


def test_single_rows_under_load_have_no_errors_and_a_bounded_p99(root, model_dir, rows, settings, tmp_path):
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    server = start_server(root, model_dir, tmp_path / "server.log")
    try:
        pin(server.process.pid, 0)
        command = [str(Path(sys.executable).parent / "locust"), "-f", str(LOCUSTFILE), "--headless"]
        command += ["--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", f"{RUN_SECONDS}s"]
        command += ["--host", server.url, "--csv", str(tmp_path / "load"), "--only-summary"]
        command += ["--stop-timeout", "2", "--loglevel", "WARNING"]
        locust = subprocess.Popen(
            command,
            env={**os.environ, "LOAD_ROWS": str(rows_file)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pin(locust.pid, 1)
        try:
            output, _ = locust.communicate(timeout=RUN_SECONDS + 60)
        except subprocess.TimeoutExpired:
            locust.kill()
            pytest.fail("locust did not stop by itself")
        assert locust.returncode == 0, output[-3000:]
    finally:
        assert stop(server) == 0
    stats = aggregated(tmp_path / "load_stats.csv")
    count, p50, p99 = stats["Request Count"], stats["50%"], stats["99%"]
    print(f"load: {count} requests in {RUN_SECONDS} s, p50 {p50} ms, p99 {p99} ms")
    problems = load_problems(stats, RUN_SECONDS, settings.serving)
    assert not problems, "; ".join(problems) + "\n" + output[-3000:]


def load_problems(stats: dict[str, str], seconds: float, serving) -> list[str]:
    """What a load run's aggregated locust row says is wrong: errors, a long tail, too few answers."""
    requests, failures, p99 = int(stats["Request Count"]), int(stats["Failure Count"]), float(stats["99%"])
    problems = [f"{failures} of {requests} requests failed"] if failures else []
    if p99 > serving.p99_ms:
        problems.append(f"p99 {p99:g} ms over serving.p99_ms {serving.p99_ms:g} ms")
    if requests / seconds < serving.min_rps:
        problems.append(f"{requests / seconds:.0f} requests/s under serving.min_rps {serving.min_rps:g}")
    return problems


def test_the_load_check_catches_failures_a_long_tail_and_a_slow_server(settings) -> None:
    serving = settings.serving
    good = {"Request Count": str(int(serving.min_rps * 20)), "Failure Count": "0", "99%": "1"}
    assert load_problems(good, 10, serving) == []
    failing = good | {"Failure Count": "3"}
    assert load_problems(failing, 10, serving) == [f"3 of {good['Request Count']} requests failed"]
    [tail] = load_problems(good | {"99%": str(serving.p99_ms * 2)}, 10, serving)
    assert tail.startswith("p99 ") and "serving.p99_ms" in tail
    [slow] = load_problems(good, 40, serving)  # the same answers in four times the time
    assert "under serving.min_rps" in slow
