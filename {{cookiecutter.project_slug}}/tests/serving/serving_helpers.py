"""Run the model server as a process for the tests: a free loopback port, /ready, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.deploy.servers import free_port

PACKAGE = "{{ cookiecutter.package_name }}"
READY_WITHIN = 60.0  # seconds for a server process to load the model and answer /ready
STOP_WITHIN = 15.0  # seconds for a server process to stop after SIGTERM
LOOPBACK_CLIENT = ("127.0.0.1", 50000)  # a TestClient's address as a client on this machine


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str

    def stop(self) -> int:
        """SIGTERM, then wait; the exit code (killed, and a failed test, if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the server did not stop within {STOP_WITHIN:.0f} s of SIGTERM")


def start_server(root: Path, model: Path, *args: str) -> ServerProcess:
    """`<package> serve` on a free loopback port, once /ready answers."""
    port = free_port()
    command = [sys.executable, "-m", PACKAGE, "--root", str(root), "serve", "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-log", *args]
    process = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + READY_WITHIN
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/ready", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"the server did not answer /ready within {READY_WITHIN:.0f} s")
        time.sleep(0.2)


def post(url: str, body: object, timeout: float = 5) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)
