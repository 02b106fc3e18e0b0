"""Bake helpers and the answer matrix shared by the template tests."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}"
CHURN_CSV = ROOT / "tests" / "fixtures" / "churn.csv"
ANSWERS = {
    key: value for key, value in json.loads((ROOT / "cookiecutter.json").read_text()).items() if key[0] != "_"
}
# The choice answers and their values, as cookiecutter.json lists them (the first is the default).
CHOICES: dict[str, list[str]] = {key: value for key, value in ANSWERS.items() if isinstance(value, list)}
# cookiecutter.json's defaults with the derived names rendered: what `--no-input` answers.
DEFAULT_ANSWERS = {key: value[0] if isinstance(value, list) else value for key, value in ANSWERS.items()} | {
    "project_slug": "ml-project",
    "package_name": "ml_project",
}

REMOTE_URLS = {
    "none": "",
    "local": "/tmp/dvc-storage",
    "s3": "s3://bucket/project",
    "gs": "gs://bucket/project",
    "azure": "azure://container/project",
}


def csv_answers(task: str) -> dict[str, str]:
    """The churn fixture: a three-class target (stayed, downgraded, left) for classification,
    charges for regression."""
    if task == "classification":
        return {
            "csv_path": str(CHURN_CSV),
            "target": "outcome",
            "sensitive_features": "region",
            "time_column": "signup_year",
        }
    return {"csv_path": str(CHURN_CSV), "target": "monthly_charges", "sensitive_features": "region"}


def answer_matrix() -> list[dict[str, str]]:
    """Every valid task x dataset x model combination; independent answers cycle through their values."""
    independent = ("python_version", "dvc_remote", "init_git")
    cycles = {name: itertools.cycle(CHOICES[name]) for name in independent}
    configs = []
    for task, dataset, model in itertools.product(CHOICES["task"], CHOICES["dataset"], CHOICES["model"]):
        answers = {"task": task, "dataset": dataset, "model": model}
        answers |= {name: next(values) for name, values in cycles.items()}
        answers["dvc_remote_url"] = REMOTE_URLS[answers["dvc_remote"]]
        if dataset == "csv":
            answers |= csv_answers(task)
        configs.append(answers)
    return configs


def config_id(answers: dict[str, str]) -> str:
    return "-".join(answers[k] for k in ("task", "dataset", "model", "python_version", "dvc_remote"))


def subprocess_env() -> dict[str, str]:
    """The environment for baked-project commands: own venv, a git identity, no telemetry.

    Bytecode is written: each bake's fresh venv would otherwise compile MLflow, pandas and
    scikit-learn from source in every one of its hundreds of processes (9 s instead of 2.4 s
    to import scikit-learn and pandas here).
    """
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env |= {
        "GIT_AUTHOR_NAME": "Template Test",
        "GIT_AUTHOR_EMAIL": "template-test@example.com",
        "GIT_COMMITTER_NAME": "Template Test",
        "GIT_COMMITTER_EMAIL": "template-test@example.com",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
    }
    return env


# The first run at bake (`make baseline`: install, the pipeline) costs a minute; the bakes that
# check files and hooks skip it. A test of the first run asks for it (`first_run="yes"`).
NO_FIRST_RUN = {"first_run": "no"}


def bake(output_dir: Path, **answers: str) -> Path:
    """Bake the template with these answers (no first run unless asked); returns the project."""
    answers = NO_FIRST_RUN | answers
    old, env = dict(os.environ), subprocess_env()
    os.environ.clear()
    os.environ.update(env)  # the hooks run git and uv with this environment
    try:
        project = cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return Path(project)


def cookiecutter_cli(
    output_dir: Path, *answers: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """cookiecutter as a user runs it (a separate process), answers given as `key=value`; no first
    run unless asked (`first_run=yes`)."""
    if not any(answer.startswith("first_run=") for answer in answers):
        answers = (*answers, *(f"{key}={value}" for key, value in NO_FIRST_RUN.items()))
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output_dir), str(ROOT), *answers],
        cwd=cwd,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
    )


def load_hook(name: str):
    """A hook file imported as a module (its `main` only runs under cookiecutter)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(
    args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env or subprocess_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed in {cwd} ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def uv_available() -> bool:
    uv = shutil.which("uv")
    return uv is not None and "/shims/" not in uv
