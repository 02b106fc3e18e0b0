"""Bake every valid answer combination and check what comes out, without installing it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, answer_matrix, bake, config_id, run, uv_available

CONFIGS = answer_matrix()
TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#")
HOOK_FILES_CSV = {"data/external/source.csv", "data/external/source.csv.dvc", "data/external/.gitignore"}


@pytest.fixture(scope="module", params=CONFIGS, ids=config_id)
def baked(request, tmp_path_factory) -> tuple[dict[str, str], Path]:
    answers = request.param
    return answers, bake(tmp_path_factory.mktemp("bake"), **answers)


def project_files(project: Path) -> set[str]:
    """Files of a baked project, without git's and DVC's own stores."""
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
        and not ({".git", "__pycache__"} & set(path.relative_to(project).parts))
        and not path.relative_to(project).as_posix().startswith(".dvc/cache/")
    }


def expected_files(answers: dict[str, str]) -> set[str]:
    """The template tree with names rendered, plus what the hooks add."""
    files = {
        path.relative_to(TEMPLATE).as_posix().replace("{{cookiecutter.package_name}}", "ml_project")
        for path in TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    if uv_available():
        files.add("uv.lock")
    if answers["dataset"] == "csv":
        files |= HOOK_FILES_CSV
    return files


def test_no_template_syntax_left(baked):
    _, project = baked
    leftovers = [
        f"{name}: {match.group()}"
        for name in project_files(project)
        if name != "uv.lock"
        for match in [TEMPLATE_SYNTAX.search((project / name).read_text(encoding="utf-8", errors="replace"))]
        if match
    ]
    assert leftovers == []


def test_github_expressions_survive(baked):
    _, project = baked
    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    for workflow in workflows:
        assert "${{" in workflow.read_text(encoding="utf-8"), f"{workflow.name} lost its GitHub expressions"


def test_expected_file_set(baked):
    answers, project = baked
    assert project_files(project) == expected_files(answers)


def test_ruff_clean(baked):
    _, project = baked
    ruff = str(Path(sys.executable).parent / "ruff")
    run([ruff, "check", "--no-cache", "."], cwd=project)
    run([ruff, "format", "--check", "--no-cache", "."], cwd=project)


def test_yaml_files_parse_and_carry_answers(baked):
    answers, project = baked
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == answers["task"]
    assert params["train"]["model"]["kind"] == answers["model"]
    if answers["dataset"] == "csv":
        assert params["data"]["target"] == answers["target"]
        assert params["data"]["csv_path"] == "data/external/source.csv"
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["ingest", "validate", "split", "train", "evaluate"]
    assert yaml.safe_load((project / "schema.yaml").read_text())["columns"] is not None


def test_answers_recorded_for_cruft(baked):
    answers, project = baked
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    assert {key: recorded[key] for key in answers} == answers


def test_dvc_remote_configured(baked):
    answers, project = baked
    config = (project / ".dvc" / "config").read_text()
    if answers["dvc_remote"] == "none":
        assert "remote" not in config
    else:
        assert f"url = {answers['dvc_remote_url']}" in config
        assert "remote = storage" in config


def test_python_version_pinned(baked):
    answers, project = baked
    assert (project / ".python-version").read_text().strip() == answers["python_version"]
    assert f'requires-python = ">={answers["python_version"]}"' in (project / "pyproject.toml").read_text()


def test_git_initialised_with_one_clean_commit(baked):
    answers, project = baked
    if answers["init_git"] == "no":
        assert not (project / ".git").exists()
        return
    assert run(["git", "branch", "--show-current"], cwd=project).stdout.strip() == "main"
    assert run(["git", "rev-list", "--count", "HEAD"], cwd=project).stdout.strip() == "1"
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", "data/raw/data.csv"], cwd=project)
    assert ignored.returncode == 0, "DVC outputs must be ignored by git"
