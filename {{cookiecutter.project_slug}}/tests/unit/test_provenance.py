"""What the registry records of a model's origin: the changes a commit would leave out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.provenance import status_paths, uncommitted

pytestmark = pytest.mark.unit


def git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """A repository whose project sits in a subfolder, with its inputs and records committed."""
    git(tmp_path, "init", "-q", "-b", "main")
    root = tmp_path / "project"
    for name in ("params.yaml", "dvc.lock", "metrics.json", "plots/roc.json", "src/a.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("one\n")
    (root / ".gitignore").write_text("mlflow.db\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    return root


def test_a_clean_tree_and_rewritten_records_are_no_change(committed: Path) -> None:
    assert uncommitted(committed) == []
    for record in ("dvc.lock", "metrics.json", "plots/roc.json"):
        (committed / record).write_text("re-run\n")
    (committed / "mlflow.db").write_text("ignored")
    assert uncommitted(committed, Paths(committed).records()) == []
    assert uncommitted(committed) == ["dvc.lock", "metrics.json", "plots/roc.json"], "paths from the project"


def test_changed_staged_deleted_and_new_files_are_named(committed: Path) -> None:
    (committed / "params.yaml").write_text("two\n")
    (committed / "src" / "b.py").write_text("new\n")
    (committed / "src" / "a.py").unlink()
    (committed / "schema.yaml").write_text("staged\n")
    git(committed, "add", "schema.yaml")
    assert sorted(uncommitted(committed, Paths(committed).records()) or []) == [
        "params.yaml",
        "schema.yaml",
        "src/a.py",
        "src/b.py",
    ]


def test_a_renamed_file_is_named_once_by_its_new_path(committed: Path) -> None:
    git(committed, "mv", "src/a.py", "src/c.py")
    assert uncommitted(committed) == ["src/c.py"]
    assert status_paths("R  new.py\0old.py\0 M x.py\0") == ["new.py", "x.py"]


def test_outside_a_repository_there_is_nothing_to_check(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # wherever tmp_path lies
    assert uncommitted(tmp_path) is None
