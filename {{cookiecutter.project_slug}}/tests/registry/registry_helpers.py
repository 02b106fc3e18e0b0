"""Scratch projects and processes for the registry tests: run the CLI in a project, start and stop servers."""

from __future__ import annotations

import contextlib
import io
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

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.artifacts import save_model
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config.settings import Settings, load_settings
from {{ cookiecutter.package_name }}.deploy import servers
from {{ cookiecutter.package_name }}.deploy.registry import alias_version, record_canary
from {{ cookiecutter.package_name }}.deploy.servers import Server
from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.pipeline.train import log_run

PACKAGE = "{{ cookiecutter.package_name }}"
DATA_MD5 = "0123456789abcdef0123456789abcdef"  # the raw data's md5 in each scratch project's dvc.lock
READY_WITHIN = 120.0  # seconds for a server process to answer
COMMAND_WITHIN = 120.0  # seconds for one CLI command in a subprocess
STOP_WITHIN = 15.0  # seconds for a server process to stop after SIGTERM


@dataclass
class Project:
    """A scratch project folder and the tracking URI its commands use (as MLFLOW_TRACKING_URI).

    It is not a git repository: its commands name `commit` ($GIT_COMMIT, as in a container)."""

    root: Path
    uri: str

    @property
    def commit(self) -> str:
        return f"scratch-{self.root.name}"

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    @property
    def settings(self) -> Settings:
        with tracking(self.uri, self.commit):
            return load_settings(self.paths.params)

    def cli(self, *args: str) -> tuple[int, str, str]:
        """`<package> --root ROOT ARGS...` in this process: exit code, stdout, stderr."""
        out, err = io.StringIO(), io.StringIO()
        environment = tracking(self.uri, self.commit)
        with environment, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--root", str(self.root), *args])
        return code, out.getvalue(), err.getvalue()

    def train(
        self,
        pipeline,
        train_set: pd.DataFrame,
        metrics: dict | None = None,
        gate: str | None = "pass",
        fit_seconds: float | None = None,
    ) -> dict[str, str]:
        """What the train and evaluate stages leave behind: a logged run (with the fit's time, when
        given), models/model, metrics.json; and the gate's verdict on this commit (`report`), unless
        `gate` is None."""
        ids = log_run(pipeline, self.settings, train_set, fit_seconds=fit_seconds)
        save_model(pipeline, self.paths.model, metadata=ids)
        self.paths.metrics.write_text(json.dumps(metrics or {"model": {"score": 0.75}}))
        self.judged(gate)
        return ids

    def judged(self, verdict: str | None, commit: str | None = None) -> None:
        """reports/gate.json as `report` writes it: `verdict` on `commit` (this one); None: no record."""
        self.paths.gate.unlink(missing_ok=True)
        if verdict is not None:
            self.paths.gate.parent.mkdir(parents=True, exist_ok=True)
            record = {"verdict": verdict, "commit": commit or self.commit}
            self.paths.gate.write_text(json.dumps(record), encoding="utf-8")

    def alias(self, alias: str) -> str | None:
        return alias_version(self.settings, alias)

    def version_tags(self, version: str) -> dict[str, str]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return dict(client.get_model_version(self.settings.mlflow.registered_model, version).tags or {})

    def canaried(self, version: str) -> None:
        """What a passing canary records on a version (the canary itself: tests/registry/test_deploy.py)."""
        record_canary(self.settings, version, passed=True, champion=self.alias("champion"))


@dataclass(frozen=True)
class Ran:
    """A CLI command run in its own process: exit code and output."""

    code: int
    out: str
    err: str


def run_cli(project: Project, *args: str, env: dict[str, str] | None = None) -> Ran:
    """`<package> --root ROOT ARGS...` in a subprocess, as a person or a workflow runs it."""
    command = [sys.executable, "-m", PACKAGE, "--root", str(project.root), *args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=COMMAND_WITHIN,
        env={**os.environ, "MLFLOW_TRACKING_URI": project.uri, "GIT_COMMIT": project.commit, **(env or {})},
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def refusal(ran: Ran, code: int = 1) -> str:
    """The one line a refused command printed (asserting that it is exactly one `error: ` line)."""
    assert "Traceback" not in ran.err + ran.out, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("error: "), ran.err
    assert ran.code == code, ran.err
    return lines[0]


@contextlib.contextmanager
def tracking(uri: str, commit: str | None = None) -> Iterator[None]:
    """MLFLOW_TRACKING_URI=uri (and GIT_COMMIT=commit, if given) for the duration (restored after)."""
    values = {"MLFLOW_TRACKING_URI": uri} | ({"GIT_COMMIT": commit} if commit else {})
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Process:
    """A server started by a test, in its own process group (its workers stop with it)."""

    process: subprocess.Popen
    url: str
    output: Path

    def stop(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def start(command: list[str], url: str, ready: str, output: Path, env: dict | None = None) -> Process:
    """Start `command`, wait until GET url+ready answers 200 (bounded), or fail with its output."""
    with output.open("w") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    running = Process(process, url, output)
    deadline = time.monotonic() + READY_WITHIN
    while get(url + ready) != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"{' '.join(command[:5])}... did not start:\n{output.read_text()[-3000:]}")
        time.sleep(0.2)
    return running


def serve(project: Project, *args: str) -> Server:
    """`<package> serve` in the project, on a free loopback port, once /ready answers."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.uri}
    handle, name = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=project.root)
    os.close(handle)
    output = Path(name)
    try:
        return servers.started(project.root, list(args), env, output)
    except servers.ServerError as err:
        pytest.fail(str(err))


def get(url: str) -> int:
    """The status of GET url (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0
