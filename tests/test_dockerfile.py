"""The baked Dockerfile: hadolint clean, non-root, and it ships what the server reads; its
base images are build arguments (defaulting to the answered Python version) so a digest
can be pinned, and the admin token the server needs on 0.0.0.0 is given at run time.
(No Docker engine runs here, so the image is linted and read, not built.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bake

HADOLINT = str(Path(sys.executable).parent / "hadolint")


@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("docker"), init_git="no", python_version="3.12") / "Dockerfile"


def test_hadolint_is_clean(dockerfile):
    result = subprocess.run([HADOLINT, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && apt-get install curl\n")
    result = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_image_runs_the_server_as_a_non_root_user_with_its_inputs(dockerfile):
    lines = dockerfile.read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in lines
    assert "ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.9" in lines
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM ${UV_IMAGE} AS uv",
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE}",
    ]
    assert "COPY --from=uv /uv /bin/uv" in lines
    assert "USER 10001" in final_stage
    for copied in ("COPY params.yaml schema.yaml ./", "COPY models/model ./models/model"):
        assert copied in final_stage
    assert final_stage[-1] == 'CMD ["ml_project", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    assert "--no-dev" in dockerfile.read_text()
    assert "data/" in (dockerfile.parent / ".dockerignore").read_text().splitlines()


def test_the_admin_token_is_documented_and_never_built_in(dockerfile):
    text = dockerfile.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert 'docker run -e SERVE_ADMIN_TOKEN="$(openssl rand -hex 32)"' in comments
    assert "--build-arg PYTHON_IMAGE=python:3.12-slim@sha256:" in comments
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not [line for line in instructions if "TOKEN" in line], "a token must not be built into the image"
    assert '"--host", "0.0.0.0"' in instructions[-1]  # where the server refuses to start without the token
