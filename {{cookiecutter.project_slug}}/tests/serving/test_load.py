"""The server under load: locust, headless, for a bounded time, against a server process.

Single-row requests from a few users back to back: no request may fail, and the
99th percentile latency must stay under `serving.p99_ms` in params.yaml. Where
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
    requests, failures = int(stats["Request Count"]), int(stats["Failure Count"])
    p99 = float(stats["99%"])
    print(f"load: {requests} requests, {requests / RUN_SECONDS:.0f}/s, p50 {stats['50%']} ms, p99 {p99} ms")
    assert requests > RUN_SECONDS * 10, "too few requests to judge"
    assert failures == 0, output[-3000:]
    assert p99 <= settings.serving.p99_ms, f"p99 {p99} ms over serving.p99_ms {settings.serving.p99_ms} ms"
