"""`repro`: the argument allowlist, the outputs dvc.yaml declares, and keep-and-restore on failure.

dvc itself is replaced by a function that edits the outputs and fails (or succeeds); the real
pipeline runs in tests/integration/test_failures.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from {{ cookiecutter.package_name }} import repro
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.repro import (
    FLAGS,
    Output,
    ReproError,
    declared_outputs,
    dvc_arguments,
    source_records,
    stage_names,
)

pytestmark = pytest.mark.unit

STAGES = ["check", "ingest", "validate", "split", "tune", "train", "evaluate", "backtest"]
# Shell payloads and near misses: not one is a flag of the list or a stage name.
PAYLOADS = [
    ";",
    "train;",
    "train; id",
    "`id`",
    "$(id)",
    "1'; id; '",
    '1"; id; "',
    "&& id",
    "|",
    "train\nid",
    "-f; id",
    "--force=1",
    "-fx",
    "-i",
    "--interactive",
    "-k",
    "--glob",
    "-R",
    "dvc.yaml:train",
    "../dvc.yaml",
    "TRAIN",
    "",
    "-",
    "--",
]


@pytest.fixture
def pipeline(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("words", "arguments"),
    [
        ([], []),
        (["-f", "-s", "train"], ["--force", "--single-item", "train"]),
        (["-fs", "evaluate"], ["--force", "--single-item", "evaluate"]),
        (["--downstream", "validate", "--pull"], ["--downstream", "validate", "--pull"]),
        (["--dry", "-q", "--allow-missing"], ["--dry", "--quiet", "--allow-missing"]),
        (["check", "ingest"], ["check", "ingest"]),
    ],
)
def test_allowed_words_become_dvc_arguments(words: list[str], arguments: list[str]) -> None:
    assert dvc_arguments(words, STAGES) == arguments


@pytest.mark.parametrize("payload", PAYLOADS)
def test_anything_else_is_refused_in_one_line_naming_it(payload: str) -> None:
    with pytest.raises(ReproError) as caught:
        dvc_arguments(["-f", payload], STAGES)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("repro: unknown argument ")
    assert repr(payload) in message


def test_every_flag_passed_on_is_a_long_dvc_flag() -> None:
    # What reaches dvc is spelled by this module, never copied from the input.
    assert all(value.startswith("--") and value in FLAGS for value in FLAGS.values())


def test_stage_names_come_from_dvc_yaml(pipeline: dict) -> None:
    assert stage_names(pipeline) == STAGES
    assert dvc_arguments(["train"], stage_names(pipeline)) == ["train"]
    with pytest.raises(ReproError, match="stage names"):
        dvc_arguments(["no_such_stage"], stage_names(pipeline))


def test_declared_outputs_are_every_out_metric_and_plot(pipeline: dict) -> None:
    expected = set()
    for stage in pipeline["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind, []):
                expected.add(item if isinstance(item, str) else next(iter(item)))
    outputs = declared_outputs(pipeline)
    assert {output.path for output in outputs} == expected
    assert {"models/model", "metrics.json", "plots", "reports/validation.json"} <= expected
    # Only a persist output is rewritten in place (so kept as a copy, not a link).
    assert [output.path for output in outputs if output.rewritten] == [
        "data/check.json",
        "requirements/runtime.txt",
    ]


def test_declared_outputs_follow_wdir_and_stay_inside_the_project() -> None:
    pipeline = {"stages": {"a": {"wdir": "sub", "outs": ["out.csv", {"m.json": {"persist": True}}]}}}
    assert declared_outputs(pipeline) == [Output("sub/out.csv"), Output("sub/m.json", rewritten=True)]
    for path in ("../elsewhere", "/etc/passwd", "data/${item}.csv"):
        with pytest.raises(ReproError, match="stage 'b'"):
            declared_outputs({"stages": {"b": {"outs": [path]}}})


def test_source_records_are_the_dvc_files_beside_stage_inputs() -> None:
    pipeline = {"stages": {"a": {"deps": ["data/in.csv", "src/x.py"]}, "b": {"wdir": "w", "deps": ["y"]}}}
    assert source_records(pipeline) == ["data/in.csv.dvc", "src/x.py.dvc", "w/y.dvc"]


def test_check_comes_first_and_every_stage_depends_on_it(pipeline: dict) -> None:
    stages = pipeline["stages"]
    assert next(iter(stages)) == "check"
    mark, runtime = stages["check"]["outs"]
    assert mark == {"data/check.json": {"cache": False, "persist": True}}
    assert runtime == {"requirements/runtime.txt": {"cache": False, "persist": True}}
    for name, stage in stages.items():
        if name != "check":
            assert "data/check.json" in stage["deps"], name
    # check runs whenever a stage's params change: it lists every section the stages read.
    read = {str(key).split(".")[0] for stage in stages.values() for key in stage.get("params", [])}
    assert read <= set(stages["check"]["params"])


# --- keep and restore, with dvc replaced -------------------------------------------------------


def make_project(folder: Path) -> Path:
    (folder / ".dvc").mkdir()
    (folder / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "check": {
                        "cmd": "x",
                        "deps": ["data/source.csv"],
                        "outs": [{"data/check.json": {"cache": False, "persist": True}}],
                    },
                    "train": {"cmd": "x", "outs": ["models/model", "data/new.csv"]},
                    "evaluate": {"cmd": "x", "metrics": [{"metrics.json": {"cache": False}}]},
                }
            }
        ),
        encoding="utf-8",
    )
    for name, text in {
        "data/check.json": '{"passed": true}\n',
        "models/model/model.skops": "weights",
        "models/model/sub/MLmodel": "flavors",
        "metrics.json": '{"roc_auc": 0.7}\n',
        "dvc.lock": "schema: '2.0'\n",
        "data/source.csv": "a\n2\n",
        "data/source.csv.dvc": "outs:\n- md5: 1\n",
    }.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    os.symlink("model.skops", folder / "models" / "model" / "link")
    return folder


def state(folder: Path) -> dict[str, str]:
    """Every file and link outside .dvc, with its content."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name.startswith(".dvc"):
            continue
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def failing_dvc(folder: Path, code: int = 1):
    def dvc(root: Path, arguments: list[str]) -> int:
        # What a failed run leaves: an output deleted, one half rewritten, a new one, dvc.lock rewritten.
        (root / "metrics.json").unlink()
        (root / "models" / "model" / "model.skops").unlink()
        (root / "models" / "model" / "model.skops").write_text("half", encoding="utf-8")
        (root / "data" / "new.csv").write_text("a\n1\n", encoding="utf-8")
        with open(root / "dvc.lock", "w", encoding="utf-8") as lock:  # in place, as dvc writes it
            lock.write("changed\n")
        with open(root / "data" / "check.json", "w", encoding="utf-8") as mark:  # persist: in place
            mark.write("rewritten\n")
        with open(root / "data" / "source.csv.dvc", "w", encoding="utf-8") as record:  # re-recorded
            record.write("outs:\n- md5: 2\n")
        return code

    return dvc


def test_a_failed_run_puts_every_output_back_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    project = make_project(tmp_path)
    before = state(project)
    monkeypatch.setattr(repro, "_dvc_repro", failing_dvc(project, code=255))

    assert repro.run(project, ["-f"]) == 255

    assert state(project) == before
    assert not (project / "data" / "new.csv").exists()  # absent before, absent after
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "were kept as they were" in err[0] and "repro-failed" in err[0]
    failed = project / repro.FAILED
    assert (failed / "data" / "new.csv").exists() and (failed / "dvc.lock").read_text() == "changed\n"
    assert not (project / repro.SCRATCH).exists()


def test_unchanged_outputs_stay_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    model = project / "models" / "model" / "sub" / "MLmodel"
    inode = model.stat().st_ino
    monkeypatch.setattr(repro, "_dvc_repro", lambda root, arguments: 1)

    assert repro.run(project, []) == 1

    assert model.stat().st_ino == inode  # linked, compared, left alone
    assert not (project / repro.FAILED).exists()  # nothing new to put aside


def test_a_successful_run_keeps_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)

    def dvc(root: Path, arguments: list[str]) -> int:
        failing_dvc(root)(root, arguments)
        return 0

    monkeypatch.setattr(repro, "_dvc_repro", dvc)

    assert repro.run(project, ["train"]) == 0

    assert (project / "dvc.lock").read_text() == "changed\n"
    assert not (project / repro.SCRATCH).exists()


def test_refused_arguments_run_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    project = make_project(tmp_path)
    calls = []
    monkeypatch.setattr(repro, "_dvc_repro", lambda root, arguments: calls.append(arguments) or 0)

    for payload in ("1'; id; '", "$(id)", "`id`", ";"):
        assert main(["--root", str(project), "repro", "-f", payload]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: repro: unknown argument "), err

    assert calls == []
    assert not (project / repro.SCRATCH).exists()


def test_cli_passes_flags_through_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    calls = []
    monkeypatch.setattr(repro, "_dvc_repro", lambda root, arguments: calls.append(arguments) or 0)

    assert main(["--root", str(project), "repro", "-f", "-s", "train"]) == 0
    assert main(["--root", str(project), "repro", "-h"]) == 0

    assert calls == [["--force", "--single-item", "train"]]


def test_a_second_repro_or_a_running_dvc_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    before = state(project)
    monkeypatch.setattr(repro, "_dvc_repro", lambda root, arguments: pytest.fail("dvc ran"))
    for lock, busy in ((repro.LOCK, "another `repro`"), (repro.DVC_LOCK, "a dvc command is running")):
        with repro._exclusive(project / lock, "held by the test"), pytest.raises(ReproError, match=busy):
            repro.run(project, [])
    assert state(project) == before


def test_outside_a_dvc_project_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    with pytest.raises(ReproError, match="not a DVC project"):
        repro.run(tmp_path, [])
    assert not (tmp_path / ".dvc").exists()


class FakeDvc:
    """subprocess.Popen for dvc: records how it was started; Ctrl-C arrives during the first wait."""

    started: ClassVar[list[FakeDvc]] = []

    def __init__(self, argv: list[str], **options) -> None:
        self.argv, self.options = argv, options
        self.signals: list[int] = []
        self.waits = 0
        FakeDvc.started.append(self)

    def wait(self) -> int:
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt
        return -2

    def send_signal(self, number: int) -> None:
        self.signals.append(number)


def test_dvc_gets_an_argument_list_and_ctrl_c_waits_for_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(repro.subprocess, "Popen", FakeDvc)

    assert repro._dvc_repro(tmp_path, ["--force", "train"]) == 130

    (dvc,) = FakeDvc.started
    assert dvc.argv == [sys.executable, "-m", "dvc", "repro", "--force", "train"]
    assert not dvc.options.get("shell") and dvc.options["cwd"] == tmp_path
    assert dvc.signals == [signal.SIGINT] and dvc.waits == 2  # passed on, then waited for
