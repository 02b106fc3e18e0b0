"""Answers are data, never templates; and the filters that escape them for each file format.

cookiecutter passes every answer given as `key=value`, with `--no-input` or in a user
config's `default_context` through Jinja (`prompt.render_variable`) before any hook runs,
so a project name holding `{{ ... }}` would run code during the bake. `LiteralAnswers`
is this template's one reach into the engine, through Jinja's own extension hook
`preprocess`: Jinja parses only the template's own text (cookiecutter.json's strings,
the hooks, the files and the paths under the project folder); any other string becomes
a template that prints it as it is, whatever it holds. Two more small things are done
here because no hook runs early enough: the project folder is only made for a valid
`project_slug` (a `/`, `..` or 10,000 characters would escape the output folder or
crash before the pre-gen hook), and cookiecutter's traceback after a refusing hook is
left out (the hook has printed why, one line per answer).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2 import pass_context
from jinja2.ext import Extension

from mlgate_workflows import workflows_source

ROOT = Path(__file__).resolve().parent
PROJECT = "{{cookiecutter.project_slug}}"  # the project folder's name, as cookiecutter renders it
HOOKS = ("pre_prompt", "pre_gen_project", "post_gen_project")
FOLDER_GUARD = "{{ cookiecutter.project_slug | mlgate_project_folder }}"
LINE_LENGTH = 110  # the baked project's ruff line length
MARKDOWN_PUNCTUATION = set("\\`*_[]<>|~$&#")


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@functools.cache
def template_text(root: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    """The template author's strings, and the paths under the project folder that hold Jinja."""
    own = set(strings(json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))))
    own |= {
        path.read_text(encoding="utf-8")
        for path in (root / "hooks").iterdir()
        if path.is_file() and path.stem in HOOKS and not path.name.endswith("~")
    }
    paths = {os.path.normpath(path.relative_to(root / PROJECT)) for path in (root / PROJECT).rglob("*")}
    own |= paths | {PROJECT}
    jinja_paths = sorted((path for path in paths if "{" in path), key=len, reverse=True)
    return frozenset(own), tuple(jinja_paths)


def literal(text: str) -> str:
    """A template that prints `text` as it is: one Jinja string literal with every other character escaped."""
    if not text:
        return text
    body = "".join(char if char.isascii() and char.isalnum() else f"\\U{ord(char):08x}" for char in text)
    return "{{ '" + body + "' }}"


def preprocess_source(source: str, name: str | None) -> str:
    if name is not None:  # a file of the template, loaded by name
        return source
    if source == PROJECT:
        return FOLDER_GUARD
    own_text, jinja_paths = template_text(ROOT)
    if source in own_text:
        return source
    # A folder cookiecutter creates: the project's rendered (so literal) path, then a template path.
    for path in jinja_paths:
        if source.endswith(os.sep + path):
            return literal(source[: -len(path)]) + path
    return literal(source)


@functools.cache
def pre_gen_hook():
    """The pre-gen hook as a module: its checks are the ones the project folder's name must pass."""
    path = ROOT / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("mlgate_pre_gen_project", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AnswersRefused(FailedHookException):
    """Shown by cookiecutter's command line as its message alone, like a refusing hook."""


@pass_context
def project_folder(context, slug: object) -> str:
    """The project folder's name, once project_slug is valid; else every refusal, and stop."""
    hook = pre_gen_hook()
    if isinstance(slug, str) and hook.slug_error(slug) is None:
        return slug
    for error in hook.answer_errors(dict(context["cookiecutter"]), hook.start_dir()):
        print(f"error: {error}", file=sys.stderr)
    raise AnswersRefused("Stopping: nothing was written")


def valid_repo(repo: str) -> bool:
    return pre_gen_hook().repo_error(repo) is None


def valid_ref(ref: str) -> bool:
    return pre_gen_hook().ref_error(ref) is None


def workflows_repo(answers: dict) -> str:
    """workflows_repo, or the GitHub repository baked from when left at its default."""
    return workflows_source(answers, valid_repo, valid_ref)[0]


def workflows_ref(answers: dict) -> str:
    """workflows_ref, or the release baked when left at its default (and baked from GitHub)."""
    return workflows_source(answers, valid_repo, valid_ref)[1]


def recorded(answers: dict) -> dict:
    """The context kept in the baked .cookiecutter.json: all of it but the README's help texts."""
    return {name: value for name, value in answers.items() if name != "_help"}


def escaped(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def quoted_string(value: object) -> str:
    """A TOML basic string and a YAML double-quoted scalar (both read these escapes back exactly)."""
    text = str(value)
    return '"' + "".join("\\" + c if c in '"\\' else c if c.isprintable() else escaped(c) for c in text) + '"'


def python_docstring(value: object) -> str:
    """A module docstring whose value is `value`: ASCII (ruff flags look-alike letters), `# noqa` if long."""
    body = "".join("\\" + c if c in '"\\' else c if " " <= c <= "~" else escaped(c) for c in str(value))
    line = f'"""{body}"""'
    return line if len(line) <= LINE_LENGTH else f"{line}  # noqa: E501"


def markdown_text(value: object) -> str:
    """Markdown that shows `value` as written: the punctuation Markdown reads is backslash-escaped."""
    text = "".join("\\" + c if c in MARKDOWN_PUNCTUATION else c for c in str(value))
    start = len(text) - len(text.lstrip("0123456789"))
    if text[:1] in ("-", "+", "=") or (start and text[start : start + 1] in (".", ")")):
        text = text[:start] + "\\" + text[start:]  # not a list item or a heading underline
    return text


def dvc_config_value(value: object) -> str:
    """A value DVC's config (configobj) reads back as it is: plain when it can be, else quoted."""
    text = str(value)
    if text == text.strip() and not set(text) & set("\"'#,"):
        return text
    for quote in ('"', "'"):
        if quote not in text and text.isprintable():
            return quote + text + quote
    raise ValueError(f"{text!r} cannot be written to DVC's config")  # the pre-gen hook refuses it first


class LiteralAnswers(Extension):
    """Only the template's own text is Jinja; answers are printed as they are."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        hooks_log = logging.getLogger("cookiecutter.hooks")
        if not any(isinstance(f, QuietRefusal) for f in hooks_log.filters):
            hooks_log.addFilter(QuietRefusal())
        environment.filters |= {
            "mlgate_project_folder": project_folder,
            "toml_string": quoted_string,
            "yaml_string": quoted_string,
            "python_docstring": python_docstring,
            "markdown_text": markdown_text,
            "shell_quote": lambda value: shlex.quote(str(value)),
            "dvc_config_value": dvc_config_value,
            "mlgate_workflows_repo": workflows_repo,
            "mlgate_workflows_ref": workflows_ref,
            "mlgate_recorded": recorded,
        }

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return preprocess_source(source, name)


class QuietRefusal(logging.Filter):
    """cookiecutter logs a traceback when a hook exits non-zero; the hook has already said why."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Stopping generation because"):
            record.exc_info = record.exc_text = None
        return True
