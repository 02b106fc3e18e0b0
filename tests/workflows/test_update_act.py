"""Updates that work: a project baked from the previous release (releases.toml), reproduced and
committed, is linked to mlgate with cruft and updated to this commit as the README says; then its
tests, `dvc repro` and the PR workflow under act run on it. A local edit away from the template's
changes is kept; one where the template changed too is reported as a conflict, never overwritten.

The template is served from a bare clone of this repository (the previous release's commit and
this one), as a user's `cruft update` fetches it from GitHub.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from act_helpers import ci_caller, edit_readme, open_pull_request, run_act
from conftest import ROOT, load_hook, run, subprocess_env
from contract import project_gaps
from releases import recorded

pytestmark = [pytest.mark.act, pytest.mark.slow, pytest.mark.xdist_group("update")]

CRUFT = str(Path(sys.executable).parent / "cruft")
# A team's edit in a part of params.yaml the update leaves alone, and one in a part it changes.
KEPT_EDIT = "# Team note: the split stays at 0.25 until the data review (kept by updates).\n"
CONFLICTING = ("  use_sensitive_features: false\n", "  use_sensitive_features: false  # the team's reason\n")
# As the README says, for a project baked before the bake wrote .cruft.json: what a bake's
# .cruft.json records (the post-gen hook's own values).
POST_GEN = load_hook("post_gen_project")


@dataclass(frozen=True)
class Previous:
    project: Path  # baked from the previous release, installed, reproduced, pushed, committed
    copy: Path  # a clone of it, made before any test changed it
    release_commit: str  # the previous release's commit in mlgate
    template: Path  # a bare clone of mlgate: that release and this commit
    this_commit: str  # what the project is updated to


def cruft(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CRUFT, *args], cwd=project, env=subprocess_env(), capture_output=True, text=True)


def link_and_update(project: Path, release: Previous) -> subprocess.CompletedProcess:
    """The README's steps: link the project to the release it was baked from, then update."""
    linked = cruft(
        project, "link", str(release.template), "--checkout", release.release_commit, "-y",
        "--extra-context", json.dumps(POST_GEN.BAKE_ACTIONS_DONE),
    )  # fmt: skip
    assert linked.returncode == 0, linked.stdout + linked.stderr
    state = json.loads((project / ".cruft.json").read_text())
    (project / ".cruft.json").write_text(json.dumps(state | {"skip": POST_GEN.UPDATE_SKIPS}, indent=2) + "\n")
    run(["git", "add", ".cruft.json"], cwd=project)
    run(["git", "commit", "-qm", "Link the project to the mlgate release it was baked from"], cwd=project)
    return cruft(project, "update", "-y", "--checkout", release.this_commit)


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Previous:
    where = tmp_path_factory.mktemp("previous-release")
    release = recorded()[-1]
    template = where / "mlgate.git"
    run(["git", "clone", "-q", "--bare", str(ROOT), str(template)], cwd=where)
    this_commit = run(["git", "rev-parse", "HEAD"], cwd=template).stdout.strip()
    old = where / f"mlgate-{release.tag}"
    old.mkdir()
    archive = subprocess.run(["git", "archive", release.commit], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    storage = where / "dvc-storage"
    bake = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(where), str(old)]
    baked = subprocess.run(
        [*bake, "dvc_remote=local", f"dvc_remote_url={storage}"],
        cwd=where, env=subprocess_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert baked.returncode == 0, baked.stderr
    project = where / "ml-project"
    for command in (["make", "install"], ["uv", "run", "dvc", "repro"], ["uv", "run", "dvc", "push"]):
        run(command, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline"], cwd=project)
    copy = where / "copy"
    run(["git", "clone", "-q", str(project), str(copy)], cwd=where)
    return Previous(project, copy, release.commit, template, this_commit)


def test_the_previous_release_updates_keeps_a_local_edit_and_passes_the_gate(previous, tmp_path):
    project = previous.project
    assert project_gaps(project), "the previous release lacks what this commit's workflows run"
    params = project / "params.yaml"
    lines = params.read_text().splitlines(keepends=True)
    params.write_text("".join(lines[:2]) + KEPT_EDIT + "".join(lines[2:]))
    run(["git", "commit", "-qam", "A team's own note"], cwd=project)

    updated = link_and_update(project, previous)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert not list(project.rglob("*.rej")), updated.stdout
    assert KEPT_EDIT in params.read_text()
    assert "tune" in yaml.safe_load(params.read_text()), "the template's new sections came in"
    assert project_gaps(project) == []

    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Update to this mlgate commit"], cwd=project)
    for command in (["make", "install"], ["make", "test-fast"], ["make", "repro"], ["make", "push"]):
        run(command, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline after the update"], cwd=project)

    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], cwd=tmp_path)
    clone, event = open_pull_request(origin, tmp_path, edit_readme)
    workflow = ci_caller(clone, tmp_path / "caller.yml", jobs=("report",))
    outcome = run_act(clone, event, workflow, tmp_path / "record")
    assert outcome.returncode == 0, outcome.tail()
    assert "Running stage" not in outcome.output, "the updated project's outputs came from its remote"
    assert outcome.comment and "No changes to the model" in outcome.comment, outcome.comment


def test_a_local_edit_where_the_template_changed_is_reported_not_overwritten(previous):
    """The template changed the line the team edited: the update leaves the team's line and
    reports the conflict, as conflict markers (git's three-way merge) or, when git lacks the
    template's old version of the file, as the template's hunk in params.yaml.rej."""
    project = previous.copy
    params = project / "params.yaml"
    before, after = CONFLICTING
    assert before in params.read_text()
    params.write_text(params.read_text().replace(before, after))
    run(["git", "commit", "-qam", "The team's own note on sensitive features"], cwd=project)

    updated = link_and_update(project, previous)
    said = updated.stdout + updated.stderr
    assert updated.returncode == 0, said
    assert "conflict" in said, said
    assert (project / "params.yaml.rej").exists() or "<<<<<<<" in params.read_text(), said
    assert after in params.read_text(), "the team's edit is never overwritten"
