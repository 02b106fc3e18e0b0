"""The pre-gen hook refuses bad answers with one clear line and writes nothing;
the post-gen hook brings a CSV under DVC."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHURN_CSV, ROOT, bake, subprocess_env


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFAULTS = {
    key: value[0] if isinstance(value, list) else value
    for key, value in json.loads((ROOT / "cookiecutter.json").read_text()).items()
    if not key.startswith("_")
}
VALID = DEFAULTS | {"project_slug": "ml-project", "package_name": "ml_project"}


def errors_for(tmp_path: Path, **changes: str) -> list[str]:
    return load_hook("pre_gen_project").answer_errors(VALID | changes, tmp_path)


def test_default_answers_are_valid(tmp_path):
    assert errors_for(tmp_path) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"project_slug": "My Project"}, "project_slug 'My Project' is invalid"),
        ({"project_slug": "ml--project"}, "project_slug 'ml--project' is invalid"),
        ({"package_name": "ml-project"}, "package_name 'ml-project' is invalid"),
        ({"package_name": "class"}, "package_name 'class' is invalid"),
        ({"python_version": "3.9"}, "python_version '3.9' is not supported: choose one of 3.11, 3.12, 3.13"),
        ({"task": "clustering"}, "task 'clustering' is not supported"),
        ({"dvc_remote": "s3"}, "dvc_remote_url is empty: dvc_remote 's3' needs a URL"),
        ({"dvc_remote": "s3", "dvc_remote_url": "gs://b"}, "it must start with s3://"),
        ({"dvc_remote": "local", "dvc_remote_url": "s3://b"}, "dvc_remote 'local' needs a path"),
        ({"dataset": "csv"}, "csv_path is empty"),
        ({"dataset": "csv", "csv_path": str(CHURN_CSV)}, "target is empty"),
        (
            {"dataset": "csv", "csv_path": "/no/such.csv", "target": "churned"},
            "csv_path '/no/such.csv' does not exist",
        ),
        (
            {"dataset": "csv", "csv_path": str(CHURN_CSV), "target": "label"},
            "target 'label' is not a column of churn.csv",
        ),
        (
            {
                "dataset": "csv",
                "csv_path": str(CHURN_CSV),
                "target": "churned",
                "sensitive_features": "region, age",
            },
            "sensitive_features 'age' is not a column of churn.csv",
        ),
        (
            {"dataset": "csv", "csv_path": str(CHURN_CSV), "target": "churned", "time_column": "date"},
            "time_column 'date' is not a column of churn.csv",
        ),
    ],
)
def test_bad_answer_is_named(tmp_path, changes, expected):
    errors = errors_for(tmp_path, **changes)
    assert len(errors) == 1, errors
    assert expected in errors[0]
    assert "\n" not in errors[0]


def test_relative_csv_path_resolves_against_the_base_dir(tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    assert errors_for(tmp_path, dataset="csv", csv_path="data.csv", target="y") == []


def test_csv_without_header_is_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    errors = errors_for(tmp_path, dataset="csv", csv_path=str(empty), target="y")
    assert errors == [f"csv_path {str(empty)!r} has no header row: the first line must name the columns"]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["project_slug=My Project"], "error: project_slug 'My Project' is invalid"),
        (["package_name=import"], "error: package_name 'import' is invalid"),
        (
            ["dataset=csv", "csv_path=/no/such.csv", "target=y"],
            "error: csv_path '/no/such.csv' does not exist",
        ),
        (["dataset=csv", f"csv_path={CHURN_CSV}", "target=label"], "error: target 'label' is not a column"),
        (
            ["dvc_remote=gs", "dvc_remote_url=s3://x"],
            "error: dvc_remote_url 's3://x' does not fit dvc_remote 'gs'",
        ),
    ],
)
def test_cookiecutter_stops_and_creates_nothing(tmp_path, answers, expected):
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out), str(ROOT), *answers],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert list(out.iterdir()) == []


def test_unlisted_choice_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), str(ROOT), "python_version=2.7"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert result.returncode != 0
    assert "choices are ['3.11', '3.12', '3.13']" in result.stderr
    assert list(out.iterdir()) == []


def test_csv_is_tracked_like_dvc_add(tmp_path):
    project = bake(
        tmp_path,
        dataset="csv",
        csv_path=str(CHURN_CSV),
        target="churned",
        init_git="no",
        sensitive_features="region",
    )
    source = project / "data" / "external" / "source.csv"
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    assert source.read_bytes() == CHURN_CSV.read_bytes()
    dvc_file = (project / "data" / "external" / "source.csv.dvc").read_text()
    assert f"md5: {digest}" in dvc_file
    assert f"size: {source.stat().st_size}" in dvc_file
    assert (
        project / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    ).read_bytes() == source.read_bytes()
    assert (project / "data" / "external" / ".gitignore").read_text() == "/source.csv\n"
