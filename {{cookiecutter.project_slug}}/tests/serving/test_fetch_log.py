"""`fetch-log`: the window of a shipped prediction log, and its labels, copied from monitor.log_uri
(here a file:// URL, through fsspec as an s3:// one would be) into logs/ for `monitor`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.feedback import LABELS_PREFIX
from {{ cookiecutter.package_name }}.monitoring.fetch import in_window
from {{ cookiecutter.package_name }}.served_log import PREFIX, file_name

pytestmark = pytest.mark.serving

HOUR = 3600.0


def shipped(folder: Path, hours_ago: float, pid: int, prefix: str = PREFIX) -> str:
    """A closed file another server shipped, opened `hours_ago`."""
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(time.time() - hours_ago * HOUR, "server", pid, 1, prefix)
    (folder / name).write_text(json.dumps({"request_id": str(pid)}) + "\n")
    return name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    here = Path.cwd()
    root = tmp_path / "project"
    root.mkdir()
    for name in ("params.yaml", "schema.yaml"):
        shutil.copy(here / name, root / name)
    return root


def with_log_uri(project: Path, uri: str) -> None:
    params = project / "params.yaml"
    text = params.read_text()
    assert text.count('  log_uri: ""\n') == 1
    params.write_text(text.replace('  log_uri: ""\n', f"  log_uri: {uri}\n"))


def fetched(project: Path, capsys, *args: str) -> tuple[int, str]:
    code = main(["--root", str(project), "fetch-log", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_only_files_that_can_hold_the_window_are_chosen():
    now, opened_every = 100 * HOUR, HOUR
    names = [file_name(now - hours * HOUR, "h", hours, 1) for hours in (30, 25.5, 24.5, 2)]
    names += ["notes.txt", file_name(now, "h", 9, 1, LABELS_PREFIX)]
    # The window starts 24 h ago; a file opened up to one hour before can still be open in it.
    assert in_window(names, PREFIX, now - 24 * HOUR, opened_every) == sorted(names[2:4])
    assert in_window(names, LABELS_PREFIX, now - 24 * HOUR, opened_every) == [names[-1]]


def test_the_window_and_its_labels_are_copied_once(project, tmp_path, capsys):
    store = tmp_path / "store"
    recent = [shipped(store / "predictions", hours, pid) for hours, pid in ((0.5, 1), (3, 2))]
    old = shipped(store / "predictions", 48, 3)
    labels = shipped(store / "labels", 0.2, 4, LABELS_PREFIX)
    (store / "predictions" / "notes.txt").write_text("not a log file")
    with_log_uri(project, f"file://{store}")

    code, out = fetched(project, capsys)
    assert code == 0, out
    assert "3 file(s) of the last 24 h copied" in out and "(0 already here) -> logs" in out, out
    logs = project / "logs"
    assert sorted(path.name for path in (logs / "predictions").iterdir()) == sorted(recent)
    assert [path.name for path in (logs / "labels").iterdir()] == [labels]
    assert not (logs / "predictions" / old).exists()

    (store / "predictions" / recent[0]).write_text('{"request_id": "1"}\n{"request_id": "1b"}\n')
    code, out = fetched(project, capsys, "--hours", "1")  # grown since: copied again, the other not
    assert code == 0 and "1 file(s) of the last 1 h copied" in out and "(1 already here)" in out, out
    assert (logs / "predictions" / recent[0]).read_text().count("request_id") == 2


def test_a_log_uri_without_a_log_is_one_clear_error(project, tmp_path, capsys):
    with_log_uri(project, f"file://{tmp_path / 'nothing-here'}")
    code, out = fetched(project, capsys)
    assert code == 1
    assert out.strip().splitlines() == [
        f"error: fetch-log: no prediction log at file://{tmp_path}/nothing-here/predictions"
    ]
    assert "Traceback" not in out and not (project / "logs").exists()


def test_without_a_log_uri_nothing_is_fetched(project, capsys):
    code, out = fetched(project, capsys)
    assert (code, out) == (
        0,
        "fetch-log: monitor.log_uri is empty: the monitor reads this machine's log only\n",
    )
