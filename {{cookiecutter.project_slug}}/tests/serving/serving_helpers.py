"""The model server as a process for the tests, on the canary's own helpers (deploy.servers)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.deploy.servers import STOP_WITHIN, Server, ServerError, started
from {{ cookiecutter.package_name }}.serving.sources import Served

PACKAGE = "{{ cookiecutter.package_name }}"
LOOPBACK_CLIENT = ("127.0.0.1", 50000)  # a TestClient's address as a client on this machine
__all__ = ["LOOPBACK_CLIENT", "PACKAGE", "STOP_WITHIN", "answering_nan", "start_server", "stop"]


def start_server(
    root: Path, model: Path, output: Path, *args: str, env: dict[str, str] | None = None
) -> Server:
    """`<package> serve --model MODEL` on a free loopback port, once /ready answers; its output to OUTPUT.
    `env` adds to the environment."""
    try:
        return started(
            root, ["--model", str(model), "--no-log", *args], {**os.environ, **(env or {})}, output
        )
    except ServerError as err:
        pytest.fail(str(err))


def stop(server: Server) -> int:
    """SIGTERM, then wait: the exit code; a failed test if the server had to be killed."""
    if not server.stop():
        pytest.fail(f"the server did not stop within {STOP_WITHIN:.0f} s of SIGTERM")
    return server.process.returncode


def answering_nan(served: Served) -> Served:
    """The model, but every answer NaN: a classifier's probabilities, a regressor's predictions."""

    def nan(batch: list[dict]) -> tuple[list, list | None]:
        predictions, probabilities = served.predict(batch)
        if probabilities is not None:
            return predictions, [[float("nan")] * len(p) for p in probabilities]
        return [float("nan")] * len(predictions), None

    return dataclasses.replace(served, fast=nan)
