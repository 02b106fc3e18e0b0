"""Where a baked project's CI finds mlgate's reusable workflows: `workflows_repo` and
`workflows_ref` as answered, or, left at their defaults and baked from GitHub
(`cookiecutter gh:ORG/REPO`, a github.com URL), that repository at the release being baked.

cookiecutter knows the template's source only after the prompts (`_template`, `_repo_dir`,
`_checkout`), so the defaults are resolved where the workflow files are written, by filters.
A resolved value passes the same checks as an answer; anything else keeps the defaults, and the
post-gen hook says which answers to set.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

GITHUB_TEMPLATE = re.compile(
    r"^(?:gh:|(?:git\+)?https://github\.com/|(?:git\+)?ssh://git@github\.com/|git@github\.com:)"
    r"(?P<repo>[^/\s]+/[^/\s]+?)(?:\.git)?/?$"
)


@functools.cache
def defaults() -> tuple[str, str]:
    """cookiecutter.json's workflows_repo and workflows_ref: placeholders."""
    answers = json.loads((Path(__file__).resolve().parent / "cookiecutter.json").read_text(encoding="utf-8"))
    return answers["workflows_repo"], answers["workflows_ref"]


def github_repository(template: str) -> str | None:
    """owner/name of a template given as gh:owner/name or a github.com URL; None otherwise."""
    match = GITHUB_TEMPLATE.match(template.strip())
    return match.group("repo") if match else None


def git_output(folder: str, *args: str) -> str:
    """A git command's output in `folder`; empty when it fails (not a repository, no tag)."""
    try:
        result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def baked_release(repo_dir: str, checkout: str, valid_ref: Callable[[str], bool]) -> str | None:
    """The release being baked: the --checkout given (a tag or commit), the tag on the checked-out
    commit, or that commit's SHA."""
    for candidate in (
        checkout,
        git_output(repo_dir, "describe", "--tags", "--exact-match", "HEAD"),
        git_output(repo_dir, "rev-parse", "HEAD"),
    ):
        if candidate and valid_ref(candidate):
            return candidate
    return None


@functools.cache
def resolved(
    repo: str,
    ref: str,
    template: str,
    repo_dir: str,
    checkout: str,
    valid_repo: Callable[[str], bool],
    valid_ref: Callable[[str], bool],
) -> tuple[str, str]:
    """(workflows_repo, workflows_ref): an answer that is not the default wins; a default is
    replaced by the GitHub repository the template came from and the release being baked."""
    found = github_repository(template)
    if not found or not valid_repo(found):
        return repo, ref
    default_repo, default_ref = defaults()
    if repo == default_repo:
        repo = found
    if ref == default_ref:
        ref = baked_release(repo_dir, checkout, valid_ref) or ref
    return repo, ref


def workflows_source(
    answers: Mapping[str, object], valid_repo: Callable[[str], bool], valid_ref: Callable[[str], bool]
) -> tuple[str, str]:
    def text(key: str) -> str:
        value = answers.get(key)
        return value if isinstance(value, str) else ""

    return resolved(
        text("workflows_repo"),
        text("workflows_ref"),
        text("_template"),
        text("_repo_dir"),
        text("_checkout"),
        valid_repo,
        valid_ref,
    )
