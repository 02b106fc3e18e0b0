"""The README's answers table is the one generated from cookiecutter.json (tools/answers_table.py,
`make docs`), every answer has its help text, and the check fails when either drifts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from tools.answers_table import BEGIN, END, missing_help, table, with_table

COOKIECUTTER = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_answer_has_a_help_text():
    assert missing_help(COOKIECUTTER) == []


def test_the_readme_table_is_the_generated_one():
    assert with_table(README, table(COOKIECUTTER)) == README, "run `make docs`"
    result = subprocess.run(
        [sys.executable, "tools/answers_table.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_changed_help_text_or_a_new_answer_is_found():
    changed = json.loads(json.dumps(COOKIECUTTER))
    changed["_help"]["model"] += "; and one more model family"
    assert with_table(README, table(changed)) != README
    assert "and one more model family |" in table(changed)
    new_answer = dict(COOKIECUTTER) | {"licence": "MIT"}
    assert missing_help(new_answer) == ["licence has no _help text"]
    del changed["_help"]["first_run"]
    assert missing_help(changed) == ["first_run has no _help text"]


def test_a_readme_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="has no"):
        with_table(README.replace(BEGIN, ""), table(COOKIECUTTER))
    assert END in README
