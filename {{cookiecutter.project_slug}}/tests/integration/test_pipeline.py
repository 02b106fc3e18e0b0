"""The whole pipeline, run by DVC in a temporary copy of the project (slow).

The copy gets its own git repository and MLflow store, so the project's own
data, models and runs are never touched.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import load_settings, metric_names
from {{ cookiecutter.package_name }}.schema import load_contract
from {{ cookiecutter.package_name }}.train import load_model

pytestmark = pytest.mark.integration

PACKAGE = "{{ cookiecutter.package_name }}"
BIN = Path(sys.executable).parent  # dvc and the project's command live beside this Python
# Local state and outputs that the copy must make for itself.
NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "mlruns",
    "mlartifacts",
    "mlflow.db",
    ".mlgate",  # the record of the registry used: a copy starts without one
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "logs",
    "metrics.json",
    "plots",
    "reports",
)
NOT_COPIED_PATHS = ("data/raw", "data/prepared", "models", ".dvc/cache", ".dvc/tmp")


def ignore(root: Path):
    def ignored(directory: str, names: list[str]) -> set[str]:
        skipped = set(NOT_COPIED(directory, names))
        here = Path(directory).relative_to(root)
        skipped.update(name for name in names if (here / name).as_posix() in NOT_COPIED_PATHS)
        return skipped

    return ignored


def environment(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "mlgate tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "mlgate tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
    }


def run(project: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / command[0]) if (BIN / command[0]).exists() else command[0], *command[1:]],
        cwd=project,
        env=environment(project),
        capture_output=True,
        text=True,
        timeout=900,
    )


def succeeded(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0


def explain(result: subprocess.CompletedProcess) -> str:
    return f"`{' '.join(result.args)}` exited {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    """A copy of the project after a successful `dvc repro`."""
    copy = tmp_path_factory.mktemp("pipeline") / root.name
    shutil.copytree(root, copy, ignore=ignore(root), symlinks=True)
    result = run(copy, "git", "init", "--quiet")  # DVC works inside a git repository
    assert succeeded(result), explain(result)
    if not load_contract(copy / "schema.yaml").columns:
        # A project baked for its own CSV has no contract until `schema infer` writes one.
        result = run(copy, PACKAGE, "schema", "infer")
        assert succeeded(result), explain(result)
    result = run(copy, "dvc", "repro")
    assert succeeded(result), explain(result)
    return copy


def test_dvc_repro_leaves_the_pipeline_up_to_date(project: Path) -> None:
    result = run(project, "dvc", "status", "--json")
    assert succeeded(result), explain(result)
    assert json.loads(result.stdout) == {}, result.stdout


def test_metrics_hold_model_and_baseline(project: Path) -> None:
    settings = load_settings(project / "params.yaml")
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    for who in ("model", "baseline"):
        assert set(metrics[who]) == set(metric_names(settings.task)), who
        assert all(math.isfinite(value) for value in metrics[who].values()), who
    assert metrics["test_rows"] == len(pd.read_csv(project / "data" / "prepared" / "test.csv"))
    assert json.loads((project / "reports" / "validation.json").read_text(encoding="utf-8"))["passed"]


def test_pipeline_metrics_match_the_in_memory_evaluation(project: Path, evaluation) -> None:
    # The commands must do what the pure functions do: same data, same split, same seed.
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["model"] == pytest.approx(evaluation.metrics["model"], abs=1e-6)
    assert metrics["baseline"] == pytest.approx(evaluation.metrics["baseline"], abs=1e-6)


def test_saved_model_predicts_raw_rows(project: Path) -> None:
    settings = load_settings(project / "params.yaml")
    model = load_model(project / "models" / "model")
    raw = pd.read_csv(project / "data" / "raw" / "data.csv")
    rows = raw.drop(columns=[settings.data.target]).head(200)
    predictions = model.predict(rows)
    assert len(predictions) == len(rows)
    if settings.task == "classification":
        assert set(predictions) <= set(raw[settings.data.target])
    else:
        assert pd.Series(predictions, dtype=float).map(math.isfinite).all()


def fingerprint(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_corrupt_raw_data_stops_the_pipeline_before_training(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / project.name
    shutil.copytree(project, copy, symlinks=True)
    settings = load_settings(copy / "params.yaml")
    model_before = fingerprint(copy / "models" / "model")
    metrics_before = (copy / "metrics.json").read_text(encoding="utf-8")
    raw_path = copy / "data" / "raw" / "data.csv"
    raw = pd.read_csv(raw_path)
    raw.loc[0, settings.data.target] = None  # a missing label: the contract forbids it
    raw.to_csv(raw_path, index=False)

    result = run(copy, PACKAGE, "validate")

    assert result.returncode != 0, explain(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.rstrip().splitlines()[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads((copy / "reports" / "validation.json").read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert settings.data.target in {failure["column"] for failure in report["failures"]}

    # Through DVC: validate and everything after it, on the corrupted data (ingest would restore it).
    result = run(copy, "dvc", "repro", "--downstream", "validate")

    assert result.returncode != 0, explain(result)
    assert fingerprint(copy / "models" / "model") == model_before
    assert (copy / "metrics.json").read_text(encoding="utf-8") == metrics_before
