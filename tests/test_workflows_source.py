"""Defaults that work: baked with `cookiecutter gh:ORG/REPO` (or a github.com URL), the project's
CI calls mlgate's workflows in that repository at the release baked; baked from anywhere else
with the default answers, the bake says in one line which answers to set.

GitHub is stood in for by git itself: a `url.<mirror>.insteadOf` rule in a git config of the
test's own sends cookiecutter's `git clone https://github.com/acme/mlgate.git` to a bare clone of
this repository, so cookiecutter runs its real remote-template path, offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import NO_FIRST_RUN, ROOT, run, subprocess_env

from mlgate_workflows import github_repository, resolved

sys.path.insert(0, str(ROOT))  # the template's own modules, as cookiecutter puts them on the path

GITHUB_URL = "https://github.com/acme/mlgate.git"
PLACEHOLDER_NOTE = "note: CI calls mlgate's workflows at OWNER/mlgate, a placeholder"


def bake_from(template: str, where: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    answers = [f"{key}={value}" for key, value in NO_FIRST_RUN.items()]
    command = [
        sys.executable,
        "-m",
        "cookiecutter",
        "--no-input",
        "-o",
        str(where),
        template,
        *args,
        *answers,
    ]
    return subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=600)


def called_workflows(project: Path) -> set[str]:
    """Every `uses:` of the project's workflow callers: owner/name/.github/workflows/x.yml@ref."""
    uses = set()
    for caller in (project / ".github" / "workflows").glob("*.yml"):
        for job in yaml.safe_load(caller.read_text())["jobs"].values():
            if "uses" in job:
                uses.add(job["uses"])
    return uses


@pytest.fixture
def github(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A bare clone of this repository standing in for github.com/acme/mlgate, and the environment
    (git config, cookiecutter config) that sends cookiecutter there."""
    mirror = tmp_path / "mirror.git"
    run(["git", "clone", "-q", "--bare", str(ROOT), str(mirror)], cwd=tmp_path)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{mirror.as_uri()}"]\n\tinsteadOf = {GITHUB_URL}\n')
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'templates'}\nreplay_dir: {tmp_path / 'replay'}\n")
    env = subprocess_env() | {"GIT_CONFIG_GLOBAL": str(gitconfig), "COOKIECUTTER_CONFIG": str(config)}
    return mirror, env


def test_baked_from_github_the_ci_calls_that_repository_at_the_release_baked(github, tmp_path):
    mirror, env = github
    head = run(["git", "--git-dir", str(mirror), "rev-parse", "HEAD"], cwd=tmp_path).stdout.strip()

    (tmp_path / "untagged").mkdir()
    untagged = bake_from(GITHUB_URL, tmp_path / "untagged", env)
    assert untagged.returncode == 0, untagged.stderr
    uses = called_workflows(tmp_path / "untagged" / "ml-project")
    assert uses and all(use.startswith("acme/mlgate/.github/workflows/") for use in uses), uses
    assert {use.split("@")[1] for use in uses} == {head}, "the commit baked, as a full SHA"
    assert PLACEHOLDER_NOTE not in untagged.stderr

    run(["git", "--git-dir", str(mirror), "tag", "v0.9.0", head], cwd=tmp_path)
    (tmp_path / "tagged").mkdir()
    tagged = bake_from("gh:acme/mlgate", tmp_path / "tagged", env, "--checkout", "v0.9.0")
    assert tagged.returncode == 0, tagged.stderr
    project = tmp_path / "tagged" / "ml-project"
    assert {use.split("@")[1] for use in called_workflows(project)} == {"v0.9.0"}
    zizmor = (project / ".github" / "zizmor.yml").read_text()
    assert '"acme/mlgate/*": ref-pin' in zizmor, "the tag-pinned calls are allowed for that repository"
    assert PLACEHOLDER_NOTE not in tagged.stderr
    # Where an update (`cruft update`) fetches the template from, and what was baked.
    state = json.loads((project / ".cruft.json").read_text())
    assert (state["template"], state["commit"], state["checkout"]) == (GITHUB_URL, head, "v0.9.0")
    assert state["context"]["cookiecutter"]["first_run"] == "no", "an update's render runs no first run"


def test_baked_from_a_folder_with_the_defaults_the_bake_says_what_to_set(tmp_path):
    result = bake_from(str(ROOT), tmp_path, subprocess_env())
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith(PLACEHOLDER_NOTE)]
    assert len(notes) == 1, result.stderr
    assert "workflows_repo" in notes[0] and "workflows_ref" in notes[0]
    assert {use.split("/.github/")[0] for use in called_workflows(tmp_path / "ml-project")} == {
        "OWNER/mlgate"
    }


def test_answers_win_over_the_repository_baked_from(tmp_path):
    def valid(_: str) -> bool:
        return True

    assert resolved("team/workflows", "v2.1.0", "gh:acme/mlgate", str(tmp_path), "", valid, valid) == (
        "team/workflows",
        "v2.1.0",
    )
    # One answer given, the other a default: only the default is resolved (no git here: ref stays).
    assert resolved("team/workflows", "v1", "gh:acme/mlgate", str(tmp_path), "", valid, valid) == (
        "team/workflows",
        "v1",
    )
    assert resolved("OWNER/mlgate", "v3.0.0", "gh:acme/mlgate", str(tmp_path), "", valid, valid) == (
        "acme/mlgate",
        "v3.0.0",
    )


@pytest.mark.parametrize(
    ("template", "repository"),
    [
        ("gh:acme/mlgate", "acme/mlgate"),
        ("https://github.com/acme/mlgate", "acme/mlgate"),
        ("https://github.com/acme/mlgate.git", "acme/mlgate"),
        ("git+https://github.com/acme/ml.gate.git", "acme/ml.gate"),
        ("git@github.com:acme/mlgate.git", "acme/mlgate"),
        ("ssh://git@github.com/acme/mlgate", "acme/mlgate"),
        ("gl:acme/mlgate", None),
        ("https://gitlab.com/acme/mlgate.git", None),
        ("/home/me/mlgate", None),
        ("https://github.com/acme/mlgate/tree/main", None),
    ],
)
def test_which_templates_are_github_repositories(template, repository):
    assert github_repository(template) == repository
