"""The recorded releases and the changelog agree, and each release's commit is reachable; each
check is shown to fail on the fault it exists for."""

from __future__ import annotations

from dataclasses import replace

from releases import (
    ROOT,
    Release,
    changelog_problems,
    history_problems,
    recorded,
    release_problems,
)

CHANGELOG = (ROOT / "CHANGELOG.md").read_text()


def test_the_recorded_releases_are_well_formed_and_in_the_history():
    releases = recorded()
    assert releases[0] == Release("v0.1.0", "9498e7ac11a4a9582e7e9808209df9da4cf7c56e", "2026-11-22")
    assert release_problems(releases) == []
    assert history_problems(releases) == []


def test_the_changelog_has_a_section_for_each_release_that_says_how_to_update():
    assert changelog_problems(CHANGELOG, recorded()) == []


def test_a_commit_outside_the_history_is_found():
    stranger = replace(recorded()[0], commit="0123456789abcdef0123456789abcdef01234567")
    (problem,) = history_problems([stranger])
    assert "v0.1.0: commit 0123456789abcdef0123456789abcdef01234567 is not in HEAD's history" in problem


def test_malformed_or_unordered_releases_are_found():
    first = recorded()[0]
    later = Release("v0.2.0", first.commit, "2026-12-01")
    assert release_problems([first, later]) == []
    assert release_problems([later, first]) == ["v0.1.0 is recorded after v0.2.0: the oldest first"]
    assert release_problems([replace(first, tag="0.1")]) == ["'0.1': a tag is vMAJOR.MINOR.PATCH"]
    assert release_problems([replace(first, commit="9498e7a")]) == [
        "v0.1.0: commit '9498e7a' is not a full 40-character SHA"
    ]
    assert release_problems([replace(first, date="22/11/2026")]) == [
        "v0.1.0: date '22/11/2026' is not YYYY-MM-DD"
    ]


def test_a_changelog_that_misses_a_release_or_the_update_steps_is_found():
    releases = recorded()
    newer = [*releases, Release("v0.2.0", releases[0].commit, "2026-12-24")]
    (missing,) = changelog_problems(CHANGELOG, newer)
    assert "not (in this order) [Unreleased], [0.2.0] 2026-12-24, [0.1.0] 2026-11-22" in missing
    wrong_date = CHANGELOG.replace("## [0.1.0] - 2026-11-22", "## [0.1.0] - 2026-11-23")
    assert len(changelog_problems(wrong_date, releases)) == 1
    no_steps = CHANGELOG.replace("### Updating a baked project\n\n- Nothing", "### Notes\n\n- Nothing")
    assert changelog_problems(no_steps, releases) == ["[0.1.0] has no '### Updating a baked project' part"]
    no_unreleased = CHANGELOG.replace("## [Unreleased]", "## Next")
    assert len(changelog_problems(no_unreleased, releases)) == 1
