"""Updates that work: a project baked from the previous release (releases.toml), reproduced and
committed, is linked to mlgate with cruft and updated to this commit as the README says; then its
tests, `dvc repro` and the PR workflow under act run on it. A local edit away from the template's
changes is kept; one where the template changed too is reported as a conflict, never overwritten.
A later release that changes the gate's policy reaches the project as a pull request that the
base's policy judges until someone other than its author approves the change.

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
from act_helpers import APPROVAL_LABEL, ci_caller, edit_readme, open_pull_request, run_act, table_after
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


@dataclass(frozen=True)
class Updated:
    project: Path  # the previous release's project, updated to this commit, reproduced and pushed
    origin: Path  # a bare clone of it: main for the pull requests
    gaps_before: list[str]  # what this commit's workflows would have missed before the update
    said: str  # cruft's output


@pytest.fixture(scope="module")
def updated(previous: Previous, tmp_path_factory) -> Updated:
    """The README's update with a team's note in params.yaml, committed, installed, tested,
    reproduced and pushed, as the pull request that takes the update would be once merged."""
    project = previous.project
    gaps_before = project_gaps(project)
    params = project / "params.yaml"
    lines = params.read_text().splitlines(keepends=True)
    params.write_text("".join(lines[:2]) + KEPT_EDIT + "".join(lines[2:]))
    run(["git", "commit", "-qam", "A team's own note"], cwd=project)

    update = link_and_update(project, previous)
    assert update.returncode == 0, update.stdout + update.stderr
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Update to this mlgate commit"], cwd=project)
    for command in (["make", "install"], ["make", "test-fast"], ["make", "repro"], ["make", "push"]):
        run(command, cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run(["git", "commit", "-qm", "Reproduce the pipeline after the update"], cwd=project)
    origin = tmp_path_factory.mktemp("updated") / "origin.git"
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], cwd=origin.parent)
    return Updated(project, origin, gaps_before, update.stdout + update.stderr)


def test_the_previous_release_updates_keeps_a_local_edit_and_passes_the_gate(updated, tmp_path):
    project = updated.project
    assert updated.gaps_before, "the previous release lacks what this commit's workflows run"
    assert not list(project.rglob("*.rej")), updated.said
    params = (project / "params.yaml").read_text()
    assert KEPT_EDIT in params
    assert "tune" in yaml.safe_load(params), "the template's new sections came in"
    assert project_gaps(project) == []

    clone, event = open_pull_request(updated.origin, tmp_path, edit_readme)
    workflow = ci_caller(clone, tmp_path / "caller.yml", jobs=("report",))
    outcome = run_act(clone, event, workflow, tmp_path / "record")
    assert outcome.returncode == 0, outcome.tail()
    assert "Running stage" not in outcome.output, "the updated project's outputs came from its remote"
    assert outcome.comment and "No changes to the model" in outcome.comment, outcome.comment


# A later release that changes the gate's policy: it tightens a tolerance in the template's params.yaml.
POLICY_KEY = "gate.metrics.balanced_accuracy.tolerance"
POLICY_CHANGE = ("    balanced_accuracy: {tolerance: 0.025}\n", "    balanced_accuracy: {tolerance: 0.02}\n")


def release_changing_the_policy(template: Path, where: Path) -> str:
    """A commit on the template's main that changes the gate's policy, as a later release might."""
    work = where / "mlgate"
    run(["git", "clone", "-q", str(template), str(work)], cwd=where)
    params = work / "{{cookiecutter.project_slug}}" / "params.yaml"
    before, after = POLICY_CHANGE
    assert before in params.read_text()
    params.write_text(params.read_text().replace(before, after))
    run(
        ["git", "-c", "user.name=mlgate", "-c", "user.email=mlgate@example.com", "commit", "-qam", "Tighten"],
        cwd=work,
    )
    run(["git", "push", "-q", "origin", "HEAD"], cwd=work)
    return run(["git", "rev-parse", "HEAD"], cwd=work).stdout.strip()


def test_an_update_that_changes_the_gate_policy_needs_someone_elses_approval(updated, previous, tmp_path):
    """The pull request taking a release that changes the policy is judged with the base's policy
    and shows the change, until someone other than its author adds the approval label; the run
    that label starts applies the new policy."""
    release = release_changing_the_policy(previous.template, tmp_path)

    def take_the_release(clone: Path) -> None:
        update = cruft(clone, "update", "-y", "--checkout", release)
        assert update.returncode == 0, update.stdout + update.stderr
        assert POLICY_CHANGE[1] in (clone / "params.yaml").read_text()

    unlabeled = policy_report(updated.origin, tmp_path / "unlabeled", take_the_release)
    assert "Not applied: this pull request was judged with the base's policy" in unlabeled
    approval = {"action": "labeled", "label": {"name": APPROVAL_LABEL}, "sender": {"login": "maintainer"}}
    approved = policy_report(updated.origin, tmp_path / "approved", take_the_release, approval)
    assert "Applied: approved by `maintainer`" in approved


def policy_report(origin: Path, where: Path, change, event_fields=None) -> str:
    """The report comment on a pull request that changes the policy, its verdict a pass; the
    change it shows is the release's, and only it."""
    where.mkdir()
    clone, event = open_pull_request(origin, where, change, **(event_fields or {}))
    outcome = run_act(
        clone, event, ci_caller(clone, where / "caller.yml", jobs=("report",)), where / "record"
    )
    assert outcome.returncode == 0, outcome.tail()
    comment = outcome.comment or ""
    assert "This pull request changes the gate's policy" in comment, outcome.tail()
    changed = table_after(comment, "changes the gate's policy")
    assert [(row["policy key"], row["base"], row["this PR"]) for row in changed] == [
        (POLICY_KEY, "0.025", "0.02")
    ]
    return comment


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
