"""`make test` runs on two workers with `--dist loadgroup`: each act module builds its bake once
because all its tests run on one worker. When pytest and pytest-xdist stop agreeing on test ids,
grouping stops without a word and every bake is built twice; this catches it."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

GROUPED_MODULE = """
import os
import pytest

pytestmark = pytest.mark.xdist_group("{group}")


@pytest.mark.parametrize("case", range(4))
def test_case(case):
    with open("ran.txt", "a") as ran:
        ran.write("{group} " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""


def workers_by_group(ran: str) -> dict[str, set[str]]:
    """The workers each group's tests ran on, from the lines "<group> <worker>"."""
    seen: dict[str, set[str]] = defaultdict(set)
    for line in ran.splitlines():
        group, worker = line.split()
        seen[group].add(worker)
    return dict(seen)


def test_workers_by_group_reads_a_split_group():
    assert workers_by_group("a gw0\na gw1\nb gw1\n") == {"a": {"gw0", "gw1"}, "b": {"gw1"}}


def test_each_group_runs_on_one_worker(tmp_path: Path):
    for group in ("first", "second"):
        (tmp_path / f"test_{group}.py").write_text(GROUPED_MODULE.format(group=group))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = workers_by_group((tmp_path / "ran.txt").read_text())
    assert set(seen) == {"first", "second"}
    assert all(len(workers) == 1 for workers in seen.values()), f"a group ran on more than one worker: {seen}"
