"""mlgate's recorded releases (releases.toml) and what CHANGELOG.md must say of them. A helper
module for the template tests: no tests here.

Tags may not travel with a clone, so each release's commit is recorded beside its tag; the tests
that bake an earlier release check it out from that commit.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
COMMIT = re.compile(r"[0-9a-f]{40}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SECTION = re.compile(r"^## \[([^\]]+)\](?: - (\S+))?$", re.MULTILINE)
UNRELEASED = "Unreleased"
UPDATING = "### Updating a baked project"


@dataclass(frozen=True)
class Release:
    tag: str  # vMAJOR.MINOR.PATCH
    commit: str  # the full SHA the tag stands for
    date: str  # YYYY-MM-DD


def recorded(path: Path = ROOT / "releases.toml") -> list[Release]:
    """The releases in the order recorded: the oldest first."""
    entries = tomllib.loads(path.read_text())["release"]
    return [Release(entry["tag"], entry["commit"], entry["date"]) for entry in entries]


def version(tag: str) -> tuple[int, ...]:
    match = TAG.fullmatch(tag)
    return tuple(int(part) for part in match.groups()) if match else ()


def release_problems(releases: list[Release]) -> list[str]:
    """Each release well formed, tags rising and dates never going back, oldest first."""
    problems = []
    for release in releases:
        if not version(release.tag):
            problems.append(f"{release.tag!r}: a tag is vMAJOR.MINOR.PATCH")
        if not COMMIT.fullmatch(release.commit):
            problems.append(f"{release.tag}: commit {release.commit!r} is not a full 40-character SHA")
        if not DATE.fullmatch(release.date):
            problems.append(f"{release.tag}: date {release.date!r} is not YYYY-MM-DD")
    for earlier, later in itertools.pairwise(releases):
        if version(later.tag) <= version(earlier.tag) or later.date < earlier.date:
            problems.append(f"{later.tag} is recorded after {earlier.tag}: the oldest first")
    return problems


def changelog_problems(changelog: str, releases: list[Release]) -> list[str]:
    """CHANGELOG.md: an Unreleased section first, then one per recorded release, newest first,
    with its date; every section says what updating a baked project takes."""
    headings = SECTION.findall(changelog)
    expected = [(UNRELEASED, "")] + [(release.tag[1:], release.date) for release in reversed(releases)]
    problems = []
    if headings != expected:
        shown = ", ".join(f"[{name}] {date}".strip() for name, date in expected)
        problems.append(f"the sections are {headings}, not (in this order) {shown}")
    bodies = SECTION.split(changelog)[3::3]  # split gives text, name, date, body, name, date, ...
    for (name, _), body in zip(headings, bodies, strict=True):
        if UPDATING not in body:
            problems.append(f"[{name}] has no {UPDATING!r} part")
    return problems


def history_problems(releases: list[Release], repository: Path = ROOT) -> list[str]:
    """Each release's commit is in the repository's history (an ancestor of HEAD)."""
    shallow = git(repository, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    problems = []
    for release in releases:
        if git(repository, "merge-base", "--is-ancestor", release.commit, "HEAD").returncode != 0:
            hint = " (this clone is shallow: `git fetch --unshallow`)" if shallow else ""
            problems.append(f"{release.tag}: commit {release.commit} is not in HEAD's history{hint}")
    return problems


def git(repository: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repository, capture_output=True, text=True)
