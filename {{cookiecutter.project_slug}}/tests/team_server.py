"""A team's tracking server for the tests: `mlflow server` with its backend store on a real
PostgreSQL and its artifacts in an S3-compatible store (moto's server mode), proxied through the
server, everything on 127.0.0.1. A helper module: no tests here.

The registry tests use it through the `tracking_server` fixture. Run as a script
(`python tests/team_server.py`), it starts the three servers, prints one JSON line with their
addresses, and stops them all on SIGTERM or SIGINT: the template's own act tests run it so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import database

READY_WITHIN = 120.0  # seconds: the first start on an empty database runs MLflow's migrations
STOP_WITHIN = 15.0
BUCKET = "team-mlflow"
# moto accepts any key; the server is given these as a team's server is given its own.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "tests",
    "AWS_SECRET_ACCESS_KEY": "tests-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class NotStarted(RuntimeError):
    """A server did not answer in time or stopped: the message ends with its log."""


@dataclass(frozen=True)
class Service:
    """A server process in its own process group, and the file its output goes to."""

    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass(frozen=True)
class TeamServer:
    url: str  # the tracking URI a project is given
    s3_endpoint: str
    bucket: str
    database: str  # the backend store's SQLAlchemy URL


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def launched(command: list[str], ready: str, log: Path, env: dict[str, str]) -> Service:
    """Start `command` and wait until GET `ready` answers 200; NotStarted (the log's tail) if not."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    service = Service(process, log)
    deadline = time.monotonic() + READY_WITHIN
    while not answers(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise NotStarted(f"{' '.join(command[:4])}... did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return service


def s3_server(folder: Path) -> tuple[str, Service]:
    """moto's S3 on a free loopback port: its endpoint and process."""
    port = database.free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    endpoint = f"http://127.0.0.1:{port}"
    return endpoint, launched(
        command, f"{endpoint}/moto-api/", folder / "s3.log", {**os.environ, **CREDENTIALS}
    )


def make_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **s3_keys()).create_bucket(Bucket=bucket)


def s3_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def stored_keys(endpoint: str, bucket: str) -> list[str]:
    """Every object's key in the bucket."""
    import boto3

    pages = boto3.client("s3", endpoint_url=endpoint, **s3_keys()).get_paginator("list_objects_v2")
    return [item["Key"] for page in pages.paginate(Bucket=bucket) for item in page.get("Contents", [])]


def tracking_server(folder: Path, backend: str, s3_endpoint: str, bucket: str) -> tuple[str, Service]:
    """`mlflow server` on `backend` with artifacts proxied to s3://bucket: its URL and process."""
    port = database.free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--workers",
        "1",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        f"s3://{bucket}/artifacts",
    ]
    env = {
        **os.environ,
        **CREDENTIALS,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        # No background job runners (MLflow's GenAI jobs): a registry needs none of them.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    url = f"http://127.0.0.1:{port}"
    return url, launched(command, f"{url}/health", folder / f"mlflow-{port}.log", env)


@contextlib.contextmanager
def running(postgres: database.Postgres, folder: Path) -> Iterator[TeamServer]:
    """The S3 store with its bucket and the tracking server on a new database, while in the block."""
    services: list[Service] = []
    try:
        endpoint, s3 = s3_server(folder)
        services.append(s3)
        make_bucket(endpoint, BUCKET)
        backend = database.create_database(postgres, "team_mlflow")
        url, mlflow = tracking_server(folder, backend, endpoint, BUCKET)
        services.append(mlflow)
        yield TeamServer(url, endpoint, BUCKET, backend)
    finally:
        for service in reversed(services):
            service.stop()


def main() -> int:
    """Start PostgreSQL, the S3 store and the tracking server; print their addresses; stop on a signal."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="team-server-"))
    postgres = database.start()
    try:
        with running(postgres, folder) as team:
            print(
                json.dumps({"url": team.url, "s3_endpoint": team.s3_endpoint, "bucket": team.bucket}),
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except NotStarted as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        database.stop(postgres)
    return 0


if __name__ == "__main__":
    sys.exit(main())
