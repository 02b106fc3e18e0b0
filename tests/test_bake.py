"""Bake every valid answer combination and check what comes out, without installing it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import (
    CHOICES,
    DEFAULT_ANSWERS,
    ROOT,
    TEMPLATE,
    answer_matrix,
    bake,
    config_id,
    load_hook,
    run,
    uv_available,
)

CONFIGS = answer_matrix()
TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#")
# What the post-gen hook adds for a CSV: the file, committed to git without a shared DVC remote
# (the hook's GIT_REMOTES), else DVC-tracked (its .dvc file, and git ignores the data).
GIT_REMOTES = load_hook("post_gen_project").GIT_REMOTES
HOOK_FILES_CSV = {"data/external/source.csv"}
HOOK_FILES_DVC = {"data/external/source.csv.dvc", "data/external/.gitignore"}
RUFF = Path(sys.executable).parent / "ruff"


# --- the checks, as functions, each with a test below showing it catches its fault ---


def template_leftovers(text: str) -> list[str]:
    """Jinja syntax left in a baked file; GitHub's `${{` is not Jinja."""
    return [match.group() for match in TEMPLATE_SYNTAX.finditer(text)]


def project_files(project: Path) -> set[str]:
    """Files of a baked project, without git's store, DVC's cache and bytecode."""
    files = set()
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        if not path.is_file() or {".git", "__pycache__"} & set(relative.parts):
            continue
        if relative.as_posix().startswith(".dvc/cache/"):
            continue
        files.add(relative.as_posix())
    return files


def expected_files(answers: dict[str, str]) -> set[str]:
    """The template tree with its names rendered, plus what the post-gen hook adds."""
    package = answers.get("package_name", "ml_project")
    files = {
        path.relative_to(TEMPLATE).as_posix().replace("{{cookiecutter.package_name}}", package)
        for path in TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    if uv_available():
        files.add("uv.lock")
    if (ROOT / ".git").exists():  # baked from a git checkout: where an update fetches it from
        files.add(".cruft.json")
    if answers["dataset"] == "csv":
        files |= HOOK_FILES_CSV | (set() if answers["dvc_remote"] in GIT_REMOTES else HOOK_FILES_DVC)
    return files


def ruff_problems(project: Path) -> list[str]:
    """What `ruff check` and `ruff format --check` report on a tree (empty when clean)."""
    problems = []
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([str(RUFF), *args], cwd=project, capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"ruff {' '.join(args)}:\n{result.stdout}{result.stderr}")
    return problems


def lost_github_expressions(template_text: str, baked_text: str) -> int:
    """How many `${{ ... }}` expressions of the template file are missing from the baked file."""
    return template_text.count("${{") - baked_text.count("${{")


def test_template_syntax_check_catches_jinja_but_not_github_expressions():
    assert template_leftovers("a {{ cookiecutter.x }} b {% if x %} c {# note #}") == ["{{", "{%", "{#"]
    assert template_leftovers("run: echo ${{ github.sha }} and ${{ inputs.x }}") == []


def test_github_expression_check_counts_each_expression():
    template = "a: ${{ github.sha }}\nb: ${{ inputs.python-version }}\n"
    assert lost_github_expressions(template, template) == 0
    assert lost_github_expressions(template, "a: ${{ github.sha }}\nb: \n") == 1


def test_ruff_check_catches_lint_and_format_faults(tmp_path):
    (tmp_path / "ok.py").write_text('"""Fine."""\n\nVALUE = 1\n')
    assert ruff_problems(tmp_path) == []
    (tmp_path / "bad.py").write_text("import os\nx=1\n")
    problems = ruff_problems(tmp_path)
    assert len(problems) == 2
    assert "F401" in problems[0]
    assert "bad.py" in problems[1]


def test_answer_matrix_covers_every_value_and_is_valid(tmp_path):
    dependent = Counter((c["task"], c["dataset"], c["model"]) for c in CONFIGS)
    assert len(dependent) == 12
    assert set(dependent.values()) == {1}
    for name in ("python_version", "dvc_remote", "init_git", "task", "dataset", "model"):
        assert {c[name] for c in CONFIGS} == set(CHOICES[name]), name
    hook = load_hook("pre_gen_project")
    for answers in CONFIGS:
        assert hook.answer_errors(DEFAULT_ANSWERS | answers, tmp_path) == [], config_id(answers)


# --- the bakes ---


@pytest.fixture(scope="module", params=CONFIGS, ids=config_id)
def baked(request, tmp_path_factory) -> tuple[dict[str, str], Path]:
    answers = request.param
    return answers, bake(tmp_path_factory.mktemp("bake"), **answers)


def test_no_template_syntax_left(baked):
    _, project = baked
    leftovers = {
        name: found
        for name in sorted(project_files(project) - {"uv.lock"})
        if (found := template_leftovers((project / name).read_text(encoding="utf-8", errors="replace")))
    }
    assert leftovers == {}


def test_github_expressions_survive(baked):
    _, project = baked
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        template_text = (TEMPLATE / ".github" / "workflows" / workflow.name).read_text(encoding="utf-8")
        baked_text = workflow.read_text(encoding="utf-8")
        if "${{" in template_text:
            assert "${{" in baked_text, f"{workflow.name} lost its GitHub expressions"
        assert lost_github_expressions(template_text, baked_text) == 0, workflow.name
        assert isinstance(yaml.safe_load(baked_text), dict), workflow.name


def test_expected_file_set(baked):
    answers, project = baked
    assert project_files(project) == expected_files(answers)
    assert (project / ".git").is_dir() == (answers["init_git"] == "yes")


def test_ruff_clean(baked):
    _, project = baked
    assert ruff_problems(project) == []


def test_yaml_files_parse_and_carry_answers(baked):
    answers, project = baked
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == answers["task"]
    assert params["train"]["model"]["kind"] == answers["model"]
    if answers["dataset"] == "csv":
        assert params["data"]["source"] == "csv"
        assert params["data"]["target"] == answers["target"]
        assert params["data"]["csv_path"] == "data/external/source.csv"
        assert params["data"]["sensitive_features"] == answers["sensitive_features"].split(",")
        assert params["data"]["time_column"] == (answers.get("time_column") or None)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["check", "ingest", "validate", "split", "tune", "train", "evaluate", "backtest"]
    assert all(stage["cmd"] == f"python -m ml_project.pipeline {name}" for name, stage in stages.items())
    # Every stage waits for the check, so a bad param or input fails before DVC deletes an output.
    assert all("data/check.json" in stage["deps"] for name, stage in stages.items() if name != "check")
    if answers["dataset"] == "csv":
        assert "data/external/source.csv" in stages["ingest"]["deps"]
        assert "data/external/source.csv" in stages["check"]["deps"]
    assert "columns" in yaml.safe_load((project / "schema.yaml").read_text())


def test_answers_recorded_for_cruft(baked):
    answers, project = baked
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    assert {key: recorded[key] for key in answers} == answers
    assert recorded["_template"]


def test_dvc_remote_configured(baked):
    answers, project = baked
    config = (project / ".dvc" / "config").read_text()
    if answers["dvc_remote"] == "none":
        assert "remote" not in config
    else:
        assert f"url = {answers['dvc_remote_url']}" in config
        assert "remote = storage" in config
    if answers["dvc_remote"] in ("s3", "gs", "azure"):
        assert f'"dvc[{answers["dvc_remote"]}]' in (project / "pyproject.toml").read_text()


def test_python_version_pinned(baked):
    answers, project = baked
    assert (project / ".python-version").read_text().strip() == answers["python_version"]
    pyproject = (project / "pyproject.toml").read_text()
    assert f'requires-python = ">={answers["python_version"]}"' in pyproject
    ci = (project / ".github" / "workflows" / "ci.yml").read_text()
    assert f'python-version: "{answers["python_version"]}"' in ci


def test_git_initialised_with_one_clean_commit(baked):
    answers, project = baked
    if answers["init_git"] == "no":
        assert not (project / ".git").exists()
        return
    assert run(["git", "branch", "--show-current"], cwd=project).stdout.strip() == "main"
    assert run(["git", "rev-list", "--count", "HEAD"], cwd=project).stdout.strip() == "1"
    assert run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project).stdout == ""
    tracked = set(run(["git", "ls-files"], cwd=project).stdout.splitlines())
    in_dvc = {"data/external/source.csv"} if answers["dvc_remote"] not in GIT_REMOTES else set()
    assert tracked == expected_files(answers) - in_dvc
    for output in ("data/raw/data.csv", "data/prepared/train.csv", "models/model", "mlflow.db"):
        ignored = subprocess.run(["git", "check-ignore", "-q", output], cwd=project)
        assert ignored.returncode == 0, f"{output} must be ignored by git"


def test_modules_imported_by_a_test_module(tmp_path):
    source = "from test_b import helper\nimport conftest\nfrom a_helpers import x\n    import test_c as c\n"
    (tmp_path / "test_a.py").write_text(source)
    assert imported_test_modules(tmp_path / "test_a.py") == ["test_b", "test_c"]


def imported_test_modules(path: Path) -> list[str]:
    """The test modules `path` imports: shared helpers belong in a helper module or conftest.

    Read as text, not parsed: the template's test files hold Jinja.
    """
    text = path.read_text(encoding="utf-8")
    return re.findall(r"(?m)^\s*(?:from|import) (test_\w+)", text)


def test_no_test_module_imports_another():
    files = sorted(ROOT.glob("tests/**/test_*.py")) + sorted(TEMPLATE.glob("tests/**/test_*.py"))
    assert len(files) > 20
    found = {str(path.relative_to(ROOT)): imported_test_modules(path) for path in files}
    assert {path: names for path, names in found.items() if names} == {}
