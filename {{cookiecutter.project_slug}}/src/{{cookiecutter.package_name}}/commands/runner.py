"""What a command leaves for the workflow runner that runs it: step outputs and the job summary,
appended to the files GitHub Actions names in $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY. Outside
a workflow the variables are unset and nothing is written."""

from __future__ import annotations

import os
import re

# An output's value is one line of plain words: the runner reads `name=value` lines.
OUTPUT_VALUE = re.compile(r"[A-Za-z0-9._-]*")


def append_to_runner_file(variable: str, text: str) -> None:
    """Append to the file the runner names in `variable`, if any."""
    path = os.environ.get(variable)
    if path:
        append_text(path, text)


def append_text(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def step_outputs(values: dict[str, str]) -> str:
    """`name=value` lines; a value that is not one plain word is a defect of the caller."""
    for name, value in values.items():
        if not OUTPUT_VALUE.fullmatch(value):
            raise ValueError(f"step output {name}={value!r}: expected letters, digits, '.', '_' or '-'")
    return "".join(f"{name}={value}\n" for name, value in values.items())


def set_step_outputs(**values: str) -> None:
    append_to_runner_file("GITHUB_OUTPUT", step_outputs(values))


def add_to_job_summary(markdown: str) -> None:
    append_to_runner_file("GITHUB_STEP_SUMMARY", markdown)
