"""The pre-gen hook refuses bad answers with one clear line and writes nothing; the post-gen
hook brings a CSV in (git, or DVC the way `dvc add` does), and its first run never fails a bake."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import CHURN_CSV, DEFAULT_ANSWERS, cookiecutter_cli, load_hook, subprocess_env

CSV = {"dataset": "csv", "csv_path": str(CHURN_CSV), "target": "outcome"}
CHURN_COLUMNS = "tenure_months, plan, monthly_charges, region, signup_year, outcome"
HINT_SLUG = (
    "use lowercase letters, digits and single '-' between them, starting with a letter (e.g. 'churn-model')"
)
HINT_PACKAGE = "use lowercase letters, digits and '_', starting with a letter (e.g. 'churn_model')"

# Each kind of bad answer and the exact line the hook prints for it.
REFUSALS = {
    "slug": ({"project_slug": "My Project"}, f"project_slug 'My Project' is invalid: {HINT_SLUG}"),
    "slug-dashes": ({"project_slug": "ml--project"}, f"project_slug 'ml--project' is invalid: {HINT_SLUG}"),
    "package": ({"package_name": "ml-project"}, f"package_name 'ml-project' is invalid: {HINT_PACKAGE}"),
    "package-keyword": ({"package_name": "class"}, f"package_name 'class' is invalid: {HINT_PACKAGE}"),
    "python": (
        {"python_version": "3.9"},
        "python_version '3.9' is not supported: choose one of 3.11, 3.12, 3.13",
    ),
    "csv-no-path": ({"dataset": "csv"}, "csv_path is empty: dataset 'csv' needs the path of your CSV file"),
    "csv-no-target": (
        {"dataset": "csv", "csv_path": str(CHURN_CSV)},
        "target is empty: dataset 'csv' needs the name of the target column",
    ),
    "csv-missing": (
        {"dataset": "csv", "csv_path": "/no/such.csv", "target": "outcome"},
        "csv_path '/no/such.csv' does not exist (looked at /no/such.csv)",
    ),
    "csv-target-column": (
        CSV | {"target": "label"},
        f"target 'label' is not a column of churn.csv: columns are {CHURN_COLUMNS}",
    ),
    "csv-sensitive-column": (
        CSV | {"sensitive_features": "region, age"},
        f"sensitive_features 'age' is not a column of churn.csv: columns are {CHURN_COLUMNS}",
    ),
    "csv-time-column": (
        CSV | {"time_column": "date"},
        f"time_column 'date' is not a column of churn.csv: columns are {CHURN_COLUMNS}",
    ),
    "remote-no-url": ({"dvc_remote": "s3"}, "dvc_remote_url is empty: dvc_remote 's3' needs a URL"),
    "remote-scheme": (
        {"dvc_remote": "gs", "dvc_remote_url": "s3://b/p"},
        "dvc_remote_url 's3://b/p' does not fit dvc_remote 'gs': it must start with gs://",
    ),
    "remote-local-url": (
        {"dvc_remote": "local", "dvc_remote_url": "s3://b"},
        "dvc_remote_url 's3://b' is not a folder: dvc_remote 'local' needs a path",
    ),
}
# cookiecutter itself refuses a value outside a choice list, before the hook runs.
REFUSED_BY_COOKIECUTTER = {"python"}


def errors_for(base_dir: Path, **changes: str) -> list[str]:
    return load_hook("pre_gen_project").answer_errors(DEFAULT_ANSWERS | changes, base_dir)


def test_default_answers_are_valid(tmp_path):
    assert errors_for(tmp_path) == []


@pytest.mark.parametrize(("changes", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_bad_answer_gets_its_one_line(tmp_path, changes, expected):
    assert errors_for(tmp_path, **changes) == [expected]


def test_every_bad_answer_is_reported_at_once(tmp_path):
    errors = errors_for(tmp_path, project_slug="Bad Slug", dvc_remote="azure", **(CSV | {"time_column": "t"}))
    assert [error.split(" ", 1)[0] for error in errors] == ["project_slug", "dvc_remote_url", "time_column"]


def test_relative_csv_path_resolves_against_the_base_dir(tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    assert errors_for(tmp_path, dataset="csv", csv_path="data.csv", target="y") == []
    assert errors_for(tmp_path.parent, dataset="csv", csv_path="data.csv", target="y") != []


def test_csv_without_header_is_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    errors = errors_for(tmp_path, dataset="csv", csv_path=str(empty), target="y")
    assert errors == [f"csv_path {str(empty)!r} has no header row: the first line must name the columns"]


@pytest.mark.parametrize(("changes", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_cookiecutter_stops_with_the_line_and_creates_nothing(tmp_path, request, changes, expected):
    out = tmp_path / "out"
    out.mkdir()
    result = cookiecutter_cli(out, *(f"{key}={value}" for key, value in changes.items()))
    assert result.returncode != 0
    if request.node.callspec.id in REFUSED_BY_COOKIECUTTER:
        assert "choices are ['3.11', '3.12', '3.13']" in result.stderr
    else:
        assert f"error: {expected}" in result.stderr.splitlines(), result.stderr
    assert list(out.iterdir()) == []


def baked_csv(tmp_path: Path, *answers: str) -> Path:
    """A CSV bake from a relative csv_path: relative to where cookiecutter was started (the PWD)."""
    start = tmp_path / "start"
    (start / "in").mkdir(parents=True)
    shutil.copyfile(CHURN_CSV, start / "in" / "churn.csv")
    out = tmp_path / "out"
    answers = ("dataset=csv", "csv_path=in/churn.csv", "target=outcome", "init_git=no", *answers)
    result = cookiecutter_cli(out, *answers, cwd=start, env=subprocess_env() | {"PWD": str(start)})
    assert result.returncode == 0, result.stderr
    return out / "ml-project"


def test_csv_with_a_shared_remote_is_tracked_like_dvc_add(tmp_path):
    project = baked_csv(tmp_path, "dvc_remote=s3", "dvc_remote_url=s3://bucket/project")
    source = project / "data" / "external" / "source.csv"
    assert source.read_bytes() == CHURN_CSV.read_bytes()
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    dvc_file = yaml.safe_load((project / "data" / "external" / "source.csv.dvc").read_text())
    entry = {"md5": digest, "size": source.stat().st_size, "hash": "md5", "path": "source.csv"}
    assert dvc_file == {"outs": [entry]}
    cached = project / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    assert cached.read_bytes() == source.read_bytes()
    assert (project / "data" / "external" / ".gitignore").read_text() == "/source.csv\n"


@pytest.mark.parametrize("remote", ["none", "local"])
def test_csv_without_a_shared_remote_is_a_file_for_git(tmp_path, remote):
    """No remote reaches CI (a local one is a folder on this machine): the data goes into git."""
    extra = ("dvc_remote_url=/tmp/remote",) if remote == "local" else ()
    project = baked_csv(tmp_path, f"dvc_remote={remote}", *extra)
    external = project / "data" / "external"
    assert (external / "source.csv").read_bytes() == CHURN_CSV.read_bytes()
    assert sorted(path.name for path in external.iterdir()) == ["source.csv"]
    assert not (project / ".dvc" / "cache").exists()


def test_both_hooks_agree_on_which_remotes_put_the_csv_in_git():
    # pre_gen refuses a CSV too large for git by this rule, post_gen commits it by the same one;
    # cookiecutter runs each hook as a lone script, so neither can import the other.
    assert load_hook("pre_gen_project").GIT_REMOTES == load_hook("post_gen_project").GIT_REMOTES


def test_a_csv_too_large_for_git_is_refused_without_a_shared_remote(tmp_path):
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as handle:
        handle.write("x,label\n")
        line = "1," + "a" * 98 + "\n"  # 101 bytes
        handle.writelines(line for _ in range(500_000))  # 50.5 MB
    answers = ["dataset=csv", f"csv_path={big}", "target=label", "init_git=no"]
    out = tmp_path / "out"
    result = cookiecutter_cli(out, *answers, env=subprocess_env())
    assert result.returncode != 0
    expected = (
        f"error: csv_path '{big}' is 50.5 MB: with dvc_remote 'none' the CSV is committed to git, "
        "which is for files up to 50 MB; choose dvc_remote s3, gs, azure "
        "(the data then reaches CI through that remote)"
    )
    assert expected in result.stderr.splitlines(), result.stderr
    assert not out.exists() or list(out.iterdir()) == []
    shared = cookiecutter_cli(out, *answers, "dvc_remote=s3", "dvc_remote_url=s3://b/p", env=subprocess_env())
    assert shared.returncode == 0, shared.stderr


# A stand-in `make` whose first run fails the way a failing stage does: the command's error,
# then make's own line naming the target.
FAILING_MAKE = """#!/bin/sh
echo "error: data.target 'outcome' has 1 class" >&2
echo "make: *** [Makefile:26: baseline] Error 1" >&2
exit 2
"""


def test_a_failed_first_run_is_a_note_and_the_bake_commits_the_template(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "make").write_text(FAILING_MAKE)
    (tools / "make").chmod(0o755)
    env = subprocess_env()
    env["PATH"] = f"{tools}:{env['PATH']}"
    result = cookiecutter_cli(tmp_path / "out", "first_run=yes", env=env)
    assert result.returncode == 0, result.stderr
    note = (
        "note: the first run failed (error: data.target 'outcome' has 1 class): "
        "run `make baseline` in the project, then commit what it wrote"
    )
    assert note in result.stderr.splitlines(), result.stderr
    project = tmp_path / "out" / "ml-project"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True)
    assert log.stdout.splitlines() == ["Initial project from the mlgate template"]
    assert not (project / "dvc.lock").exists()


def test_without_git_the_first_run_is_skipped_with_a_note(tmp_path):
    result = cookiecutter_cli(tmp_path / "out", "first_run=yes", "init_git=no")
    assert result.returncode == 0, result.stderr
    assert (
        "note: first run skipped, DVC needs a git repository (init_git=no): "
        "run `git init` and `make baseline` in the project, then commit what it wrote"
    ) in result.stderr.splitlines(), result.stderr
    assert not (tmp_path / "out" / "ml-project" / "dvc.lock").exists()
