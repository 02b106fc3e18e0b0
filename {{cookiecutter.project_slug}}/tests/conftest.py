"""Shared fixtures, each made once per session: settings, raw data, contract, split, fitted model.

Everything here is offline and in memory: the stages' pure functions are called
directly, so no DVC, no MLflow and no files are needed (the integration tests
run the real pipeline).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import database
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.config.settings import Settings, load_settings
from {{ cookiecutter.package_name }}.pipeline.evaluate import Evaluation, evaluate
from {{ cookiecutter.package_name }}.pipeline.ingest import ingest
from {{ cookiecutter.package_name }}.pipeline.scoring import class_proba, positive_label
from {{ cookiecutter.package_name }}.pipeline.split import split_frame
from {{ cookiecutter.package_name }}.pipeline.train import fit
from {{ cookiecutter.package_name }}.schema import Contract, load_contract

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"

# Property tests draw the same examples on every run, so CI passes or fails for a reason.
# `pytest --hypothesis-profile=explore -m unit` searches further with fresh random examples.
QUICK = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile("repeatable", max_examples=50, derandomize=True, **QUICK)
hypothesis_settings.register_profile("explore", max_examples=1000, **QUICK)
hypothesis_settings.load_profile("repeatable")
# No DVC remote reaches CI: the CSV is committed to git.
HOW_TO_GET_DATA = "it is committed to git; restore it with `git checkout -- data/external/source.csv`"


def unavailable(reason: str) -> NoReturn:
    """Skip for want of data or a contract on a laptop; fail under CI (CI=true, as every CI service
    sets it), where a skip would turn the checks green having tested nothing."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason} (CI=true: a test that needs it fails rather than skips)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands append to $GITHUB_STEP_SUMMARY and $GITHUB_OUTPUT: the tests' reports and verdicts
    stay out of a CI job's summary and outputs (a test of that sets the variable itself)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)


@pytest.fixture(name="unavailable", scope="session")
def unavailable_fixture() -> Callable[[str], NoReturn]:
    """`unavailable` for test modules, which do not import conftest."""
    return unavailable


@pytest.fixture(scope="session")
def postgresql() -> Iterator[database.Postgres]:
    """A real PostgreSQL on 127.0.0.1 for the session (tests/database.py); each test that needs
    a database makes its own with database.create_database."""
    if database.binaries() is None:
        unavailable("PostgreSQL is not installed (Debian/Ubuntu: apt-get install postgresql)")
    server = database.start()
    try:
        yield server
    finally:
        database.stop(server)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def scratch_repository(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """A git + DVC repository in tmp_path holding these files (path -> text), with this
    project's params.yaml, committed on main. For the report's tests against real git and DVC."""

    def make(files: dict[str, str]) -> Path:
        from dvc.repo import Repo

        for args in (["init", "-q", "-b", "main"], ["config", "user.email", "test@example.com"]):
            subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
        subprocess.run(["git", "config", "user.name", "Test"], cwd=tmp_path, check=True, capture_output=True)
        Repo.init(str(tmp_path)).close()
        files = {"params.yaml": (ROOT / "params.yaml").read_text(encoding="utf-8"), **files}
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True, capture_output=True)
        subprocess.run(["git", "commit", "-qm", "base"], cwd=tmp_path, check=True, capture_output=True)
        return tmp_path

    return make


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def raw(settings: Settings) -> pd.DataFrame:
    """The raw data as the pipeline sees it: ingested, written as CSV and read back."""
    if settings.data.source == "csv" and not (ROOT / str(settings.data.csv_path)).is_file():
        where = f"the raw data is not here ({settings.data.csv_path})"
        unavailable(f"{where}: {HOW_TO_GET_DATA}")
    frame = ingest(settings.data, ROOT)
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


@pytest.fixture(scope="session")
def contract() -> Contract:
    contract = load_contract(ROOT / "schema.yaml")
    if not contract.columns:
        unavailable(f"schema.yaml has no columns yet: run `{PACKAGE} schema infer`, review it and commit it")
    return contract


@pytest.fixture(scope="session")
def split(settings: Settings, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_frame(
        raw,
        settings.split,
        target=settings.data.target,
        time_column=settings.data.time_column,
        stratify=settings.task == "classification",
    )


@pytest.fixture(scope="session")
def train_set(split: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split[0]


@pytest.fixture(scope="session")
def test_set(split: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split[1]


@pytest.fixture(scope="session")
def model(settings: Settings, train_set: pd.DataFrame) -> Pipeline:
    return fit(train_set, settings)


@pytest.fixture(scope="session")
def shuffled_model(settings: Settings, train_set: pd.DataFrame) -> Pipeline:
    """A broken model: trained on shuffled labels. The quality checks must catch it."""
    target = settings.data.target
    labels = np.random.default_rng(settings.train.seed).permutation(train_set[target].to_numpy())
    return fit(train_set.assign(**{target: labels}), settings)


@pytest.fixture(scope="session")
def evaluation(
    model: Pipeline, train_set: pd.DataFrame, test_set: pd.DataFrame, settings: Settings
) -> Evaluation:
    """What the evaluate stage would write for the session's model."""
    return evaluate(model, train_set, test_set, settings)


@pytest.fixture(scope="session")
def output(settings: Settings) -> Callable[..., np.ndarray]:
    """The model's answer per row: the predicted value (regression); a class's probability,
    by default the positive class's (two classes); every class's probability, one column each
    (more classes, no class named)."""

    def model_output(model: Pipeline, frame: pd.DataFrame, label: str | None = None) -> np.ndarray:
        inputs = frame[list(model.feature_names_in_)]
        if settings.task == "regression":
            return np.asarray(model.predict(inputs), dtype=float)
        if label is None:
            label = positive_label(model.classes_, settings.data.positive_class)
        if label is None:
            return model.predict_proba(inputs)
        return class_proba(model, inputs, label)

    return model_output


@pytest.fixture(scope="session")
def bump_lock() -> Callable[[str, str], str]:
    """uv.lock's text with one package a patch release up (its version and file names), as a
    dependency update bot would leave it (no hashes are checked: the export omits them)."""

    def bumped(lock: str, package: str) -> str:
        start = lock.index(f'[[package]]\nname = "{package}"\n')
        end = lock.find("\n[[package]]\n", start + 1)
        end = len(lock) if end < 0 else end
        block = lock[start:end]
        found = re.search(r'^version = "([^"]+)"', block, re.MULTILINE)
        assert found, f"uv.lock: no version for {package}"
        newer = re.sub(r"(\d+)$", lambda digits: str(int(digits.group(1)) + 1), found.group(1))
        return lock[:start] + block.replace(found.group(1), newer) + lock[end:]

    return bumped
