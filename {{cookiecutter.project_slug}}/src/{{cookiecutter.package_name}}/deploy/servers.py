"""Model servers in processes of their own, on free loopback ports: what the canary and the tests start."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

READY_WITHIN = 120.0  # seconds for a server process to download and load its model
STOP_WITHIN = 15.0  # seconds for a server to stop after SIGTERM before it is killed
REQUEST_TIMEOUT = 10.0  # seconds; a request that takes longer counts as an error


class ServerError(RuntimeError):
    """A server process did not start, or was not ready in time."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    output: Path

    def stop(self) -> bool:
        """SIGTERM, then wait: True if it stopped in time, False if it had to be killed."""
        if self.process.poll() is not None:
            return True
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running(root: Path, tracking_uri: str, servers: dict[str, list[str]]) -> Iterator[dict[str, Server]]:
    """`serve ARGS...` per name, all started at once, each on a free loopback port; name -> Server once
    ready (its URL, and its process, whose memory the canary reads)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    running: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="canary-") as scratch:
        try:
            for name, args in servers.items():
                running[name] = start(root, args, env, Path(scratch) / f"{name}.log")
            deadline = time.monotonic() + READY_WITHIN
            for name, server in running.items():
                wait_ready(name, " ".join(servers[name]) or "default model", server, deadline)
            yield dict(running)
        finally:
            for server in running.values():
                server.stop()


def start(root: Path, args: list[str], env: Mapping[str, str], output: Path) -> Server:
    """`serve ARGS...` on a free loopback port, output to OUTPUT; not ready yet (wait_ready)."""
    package = __name__.split(".")[0]
    port = free_port()
    command = [sys.executable, "-m", package, "--root", str(root), "serve", *args]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with output.open("w") as sink:
        process = subprocess.Popen(command, env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
    return Server(f"http://127.0.0.1:{port}", process, output)


def started(root: Path, args: list[str], env: Mapping[str, str], output: Path, name: str = "test") -> Server:
    """`serve ARGS...` once /ready answers; ServerError (the server stopped) if it never does."""
    server = start(root, args, env, output)
    try:
        wait_ready(name, " ".join(args) or "default model", server, time.monotonic() + READY_WITHIN)
    except ServerError:
        server.stop()
        raise
    return server


def wait_ready(name: str, source: str, server: Server, deadline: float) -> None:
    """Until GET /ready answers 200; ServerError if the process exits or the deadline passes."""
    while True:
        with contextlib.suppress(OSError, ValueError):
            status, _ = request(server.url, "GET", "/ready", timeout=2)
            if status == 200:
                return
        if server.process.poll() is not None:
            raise ServerError(
                f"the {name} server ({source}) exited with {server.process.returncode}:\n{server.tail()}"
            )
        if time.monotonic() > deadline:
            raise ServerError(
                f"the {name} server ({source}) was not ready within {READY_WITHIN:.0f} s:\n{server.tail()}"
            )
        time.sleep(0.2)


def request(url: str, method: str, path: str, body: object = None, timeout: float = REQUEST_TIMEOUT):
    """One request on a fresh connection: (status, decoded JSON or None)."""
    connection = connect(url, timeout)
    try:
        return exchange(connection, method, path, body)
    finally:
        connection.close()


def connect(url: str, timeout: float) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def exchange(connection: http.client.HTTPConnection, method: str, path: str, body: object = None):
    payload = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    connection.request(method, path, body=payload, headers=headers)
    answer = connection.getresponse()
    raw = answer.read()
    try:
        return answer.status, json.loads(raw)
    except ValueError:
        return answer.status, None


def served_inputs(url: str) -> list[str] | None:
    """The columns the server's /predict takes (its request model, from its OpenAPI document)."""
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        _, document = request(url, "GET", "/openapi.json")
        return list(document["components"]["schemas"]["PredictRow"]["properties"])
    return None
