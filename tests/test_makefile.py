"""The baked Makefile passes every value to its command as one literal argument.

Each target runs with a stand-in `uv` first on PATH that records the arguments it was
given, so no install is needed: shell payloads (`;`, backticks, `$(...)`, quote breakers)
and make payloads (`$(shell ...)`) are given to every input variable, on make's command
line and through the environment, and must arrive as text, never run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import bake, subprocess_env

# Each payload would create MARKER in the working directory if any shell or make ran it.
PAYLOADS = [
    "1; touch MARKER; echo",
    "1`touch MARKER`",
    "$(touch MARKER)",
    "1'; touch MARKER; '",
    '1"; touch MARKER; "',
    "$(shell touch MARKER)",
    "1 && touch MARKER",
    "1\ntouch MARKER",
]
# Variable -> (target, the argument it becomes, or None: split into words by the recipe).
VARIABLES = {
    "VERSION": ("rollback", "--version"),
    "RELOAD": ("promote", "--reload"),
    "FORCE": ("promote", "--force"),
    "BASE": ("report", "--base"),
    "REPORT": ("report", "--output"),
    "POLICY": ("report", "--policy"),
    "RESULTS": ("report", "--results"),
    "MODEL": ("serve", "--model"),
    "PORT": ("serve", "--port"),
    "REPRO_ARGS": ("repro", None),
    "CANARY_ARGS": ("canary", None),
    "HOURS": ("monitor", "--hours"),
    "INPUT": ("predict", "--input"),
    "OUTPUT": ("predict", "--output"),
}
# Variable -> the target whose command reads it from its environment (a secret stays out of argv).
READ_FROM_ENVIRONMENT = {"PUSHGATEWAY_URL": "push-gauges"}
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["UV_RECORD"], "a") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
with open(os.environ["UV_RECORD"] + ".env", "a") as record:
    record.write(json.dumps({name: os.environ.get(name) for name in NAMES}) + "\\n")
""".replace("NAMES", repr(sorted(READ_FROM_ENVIRONMENT)))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("makefile"), init_git="no")


@pytest.fixture(scope="module")
def recorder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bin")
    (folder / "uv").write_text(RECORDER)
    (folder / "uv").chmod(0o755)
    return folder


def make(project: Path, recorder: Path, target: str, variable: str, value: str, via: str) -> list[list[str]]:
    """Run `make target` with the variable set on the command line or in the environment;
    what `uv` was called with."""
    record = project / "uv-calls.jsonl"
    record.unlink(missing_ok=True)
    Path(f"{record}.env").unlink(missing_ok=True)
    env = subprocess_env() | {"PATH": f"{recorder}{os.pathsep}{os.environ['PATH']}", "UV_RECORD": str(record)}
    command = ["make", "-s", target]
    if via == "command line":
        command.append(f"{variable}={value}")
    else:
        env[variable] = value
    subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def environments(project: Path) -> list[dict[str, str | None]]:
    """What each `uv` call of the last `make` found in its environment, of READ_FROM_ENVIRONMENT."""
    record = project / "uv-calls.jsonl.env"
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def markers(project: Path) -> list[Path]:
    return [path for path in project.rglob("MARKER*")]


REMOTE_CHECK = ["run", "dvc", "remote", "list"]
# A variable that more than one target takes: each of the others as well.
ALSO_USED: list[tuple[str, str, str | None]] = [
    ("BASE", "plots", "--base"),
    ("HOURS", "fetch-log", "--hours"),
]


@pytest.mark.parametrize("via", ["command line", "environment"])
@pytest.mark.parametrize(
    ("variable", "target", "option"), [(name, *VARIABLES[name]) for name in VARIABLES] + ALSO_USED
)
def test_no_value_reaches_a_shell(project, recorder, variable, target, option, via):
    for payload in PAYLOADS:
        calls = make(project, recorder, target, variable, payload, via)
        assert markers(project) == [], f"{variable}={payload!r} via the {via} ran a command"
        *before, arguments = calls
        assert all(call == REMOTE_CHECK for call in before), calls  # repro asks DVC for a remote first
        if option is None:
            # Split into words without any evaluation: the words are the payload's own.
            assert arguments[3:] == payload.split(), arguments
        else:
            assert arguments[arguments.index(option) + 1] == payload, arguments


@pytest.mark.parametrize("via", ["command line", "environment"])
@pytest.mark.parametrize(("variable", "target"), sorted(READ_FROM_ENVIRONMENT.items()))
def test_a_value_the_command_reads_from_its_environment_arrives_literally(
    project, recorder, variable, target, via
):
    for payload in PAYLOADS:
        calls = make(project, recorder, target, variable, payload, via)
        assert markers(project) == [], f"{variable}={payload!r} via the {via} ran a command"
        assert len(calls) == 1 and payload not in calls[0], calls
        assert environments(project) == [{variable: payload}]


def test_the_recorder_sees_what_make_passes(project, recorder):
    """The check above is only as good as its recorder: a plain value arrives as it was given."""
    calls = make(project, recorder, "rollback", "VERSION", "7", "command line")
    assert calls == [["run", "ml_project", "rollback", "--version", "7"]]
    assert make(project, recorder, "rollback", "VERSION", "", "environment") == [
        ["run", "ml_project", "rollback"]
    ]


def test_the_marker_check_catches_an_expanding_makefile(project, recorder, tmp_path):
    """A Makefile that expands the value into its recipe, as the template once did, is caught."""
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    text = (project / "Makefile").read_text()
    text = re.sub(r"(?m)^\$\(foreach name.*\n", "", text)
    text = text.replace('$${VERSION:+--version "$$VERSION"}', "$(if $(VERSION),--version $(VERSION))")
    (unsafe / "Makefile").write_text(text)
    make(unsafe, recorder, "rollback", "VERSION", "1; touch MARKER; echo", "command line")
    assert markers(unsafe) != []


def test_make_alone_lists_every_target_with_its_help(project: Path) -> None:
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^([a-z][a-z-]*):.*?## (.+)$", makefile, flags=re.M))
    declared = re.search(r"^\.PHONY: (.+)$", makefile, flags=re.M)
    assert declared, "the Makefile declares its targets .PHONY"
    phony = set(declared[1].split())
    assert set(documented) == phony, "every target has its ## text, and only targets are listed"
    # As typed at a prompt: not as a sub-make of `make test`, which prints the directories it enters.
    prompt = {k: v for k, v in subprocess_env().items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(["make"], cwd=project, env=prompt, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shown = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in result.stdout.splitlines()}
    assert shown == documented
