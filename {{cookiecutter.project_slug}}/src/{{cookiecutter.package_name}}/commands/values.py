"""Command-line values, checked before use: they arrive from people, make and workflows
(a dispatch input, a branch name), so anything but the expected form is refused in one line."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from ..pipeline.stage import StageFailed

# What command-line values may be. They arrive from people, make and workflows (a dispatch
# input, a branch name): anything else is refused before it is used.
VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
# A branch, tag or commit, optionally with ~n / ^n: git allows more (backticks, `$(`, `;`),
# which no gate needs.
GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]{1,200}(?:[~^][0-9]{0,3})*$")
# A reason recorded as an MLflow tag: printable, no line break, no control character.
REASON = re.compile(r"^[^\x00-\x1f\x7f]{3,200}$")
RELOAD_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(?::[0-9]{1,5})?/?$")


def checked_version(text: str | None, allow_previous: bool = False) -> str | None:
    """A registered version number (or, for rollback, "previous" = None); else StageFailed."""
    if text in (None, "") or (allow_previous and text == "previous"):
        return None
    if not VERSION.fullmatch(text):
        also = " or 'previous'" if allow_previous else ""
        raise StageFailed(f"--version {quoted(text)} is not a version: use a number (e.g. 3){also}")
    return text


def checked_reason(text: str) -> str:
    """Why a version is promoted without the canary: one line of plain text, recorded as a tag."""
    if not REASON.fullmatch(text):
        raise StageFailed(
            f"--force {quoted(text)} is not a reason: give one line of 3 to 200 printable characters, "
            'e.g. --force "hotfix for incident 42, canary skipped"'
        )
    return text


def checked_ref(text: str) -> str:
    if not GIT_REF.fullmatch(text) or text.endswith((".", "/", ".lock")):
        raise StageFailed(
            f"--base {quoted(text)} is not a ref the gate takes: a branch, tag or commit of letters, "
            "digits, '.', '_', '-' and '/' (optionally ~n), e.g. main or HEAD~1"
        )
    return text


def checked_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not RELOAD_URL.fullmatch(url):
            raise StageFailed(
                f"--reload {quoted(url)} is not a server address: use http(s)://host:port, e.g. "
                "http://127.0.0.1:8000"
            )
    return urls


def quoted(text: str, width: int = 60) -> str:
    """A value for an error line: quoted, control characters escaped, cut when long."""
    return repr(text if len(text) <= width else text[:width] + "…")


def count_between(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, else one line saying so."""

    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number of {what} from {low} to {high}")
        return int(text)

    return parse
