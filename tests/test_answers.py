"""Answers are data: Jinja never runs them, the pre-gen hook checks each one, and the
template escapes them for every file format they land in."""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import (
    CHURN_CSV,
    DEFAULT_ANSWERS,
    ROOT,
    TEMPLATE,
    cookiecutter_cli,
    load_hook,
    subprocess_env,
    uv_available,
)
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

COOKIECUTTER = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
TEXT_ANSWERS = [name for name, value in COOKIECUTTER.items() if isinstance(value, str) and name[0] != "_"]
CHOICES = {name: value for name, value in COOKIECUTTER.items() if isinstance(value, list) and name[0] != "_"}
LITERAL = {"project_name", "description", "author_name"}  # free text: baked as written, escaped per file
CSV = {"dataset": "csv", "csv_path": str(CHURN_CSV), "target": "outcome"}
HOOK = load_hook("pre_gen_project")


def errors_for(base_dir: Path, **changes) -> list[str]:
    return HOOK.answer_errors(DEFAULT_ANSWERS | changes, base_dir)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def env_without_uv() -> dict[str, str]:
    """For bakes whose lock file no test reads: without uv, the post-gen hook skips `uv lock`."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "uv").exists())
    return subprocess_env() | {"PATH": path}


# --- answers are never Jinja --------------------------------------------------------------


def payloads(marker: Path) -> dict[str, str]:
    """Each of these runs a shell command when rendered: it creates `marker` (and one in the cwd)."""
    run = f"lipsum.__globals__.os.popen('touch {marker.name} {marker}').read()"
    return {
        "expression": "{{ " + run + " }}",
        "statement": "{% if " + run + " %}{% endif %}",
        "comment": "{# hidden #}{{ " + run + " }}",
    }


KINDS = list(payloads(Path("/m")))


def markers_left(marker: Path, start: Path, out: Path) -> list[Path]:
    """Marker files wherever rendering could have run: cwd, template, hooks, the output, /tmp."""
    places = [start, ROOT, TEMPLATE, ROOT / "hooks", marker.parent]
    found = [place / marker.name for place in places if (place / marker.name).exists()]
    return found + list(out.rglob(marker.name))


@pytest.fixture
def scene(tmp_path, monkeypatch):
    """A start folder (the cwd), an empty output folder and a marker path of its own in /tmp."""
    marker = Path("/tmp") / f"mlgate-{uuid.uuid4().hex[:8]}"
    start, out = tmp_path / "start", tmp_path / "out"
    start.mkdir()
    out.mkdir()
    monkeypatch.chdir(start)  # the in-process bakes render here
    yield start, out, marker
    marker.unlink(missing_ok=True)


@pytest.mark.parametrize("kind", KINDS)
def test_the_payloads_do_run_under_plain_jinja(scene, kind):
    """Without the extension, cookiecutter's Jinja runs each payload: the tests below are real."""
    start, out, marker = scene
    environment = StrictEnvironment(context={"cookiecutter": {}}, keep_trailing_newline=True)
    environment.from_string(payloads(marker)[kind]).render(cookiecutter={})
    assert markers_left(marker, start, out) == [start / marker.name, marker]


def test_the_payloads_fit_the_free_text_answers(scene):
    assert all(len(payload) <= 100 for payload in payloads(scene[2]).values())


def bake_by(channel: str, start: Path, out: Path, answers: dict) -> tuple[int, str]:
    """Bake from `start` as a user would, the answers given one of three ways: (exit code, output)."""
    config = start.parent / "config.yaml"  # keeps cookiecutter's replay files in the test's folder
    settings: dict[str, object] = {
        "replay_dir": str(start.parent / "replay"),
        "cookiecutters_dir": str(start.parent / "cc"),
    }
    if channel == "config":  # a user config's default_context, with --no-input
        settings["default_context"] = answers
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    if channel == "api":  # what --no-input does, in this process: no_input=True, extra_context=...
        old, env = dict(os.environ), env_without_uv() | {"PWD": str(start)}
        os.environ.clear()
        os.environ.update(env)
        try:
            options = {"output_dir": str(out), "extra_context": answers, "config_file": str(config)}
            cookiecutter(str(ROOT), no_input=True, **options)
            return 0, ""
        except FailedHookException as error:
            return 1, f"{error}\n"
        finally:
            os.environ.clear()
            os.environ.update(old)
    args = [f"{key}={value}" for key, value in answers.items()] if channel == "cli" else []
    result = cookiecutter_cli(out, "--config-file", str(config), *args, cwd=start, env=env_without_uv())
    return result.returncode, result.stdout + result.stderr


CHANNELS = ["cli", "api", "config"]


def rotated(names: list[str], marker: Path, channel: str) -> dict[str, str]:
    """One payload per answer, each kind in turn, shifted per channel: across the three channels
    every answer gets every kind."""
    shift = CHANNELS.index(channel)
    kinds = [KINDS[(index + shift) % len(KINDS)] for index in range(len(names))]
    return {name: payloads(marker)[kind] for name, kind in zip(names, kinds, strict=True)}


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_answer_in_any_text_field_is_never_run(scene, capfd, channel):
    """Every text answer at once: all but the free text are refused, one line each, nothing written."""
    start, out, marker = scene
    answers = rotated(TEXT_ANSWERS, marker, channel) | {"dataset": "csv", "csv_path": str(CHURN_CSV)}
    answers |= {"dvc_remote": "local", "init_git": "no"}
    code, output = bake_by(channel, start, out, answers)
    output += capfd.readouterr().err
    assert markers_left(marker, start, out) == []
    assert code != 0
    refused = {line.split(" ")[1] for line in error_lines(output)}
    assert refused == set(TEXT_ANSWERS) - LITERAL - {"csv_path"}, output
    assert "Traceback" not in output
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_csv_path_payload_is_refused_by_the_hook(scene, capfd, channel):
    start, out, marker = scene
    kind = KINDS[CHANNELS.index(channel)]
    answers = CSV | {"csv_path": payloads(marker)[kind], "init_git": "no"}
    code, output = bake_by(channel, start, out, answers)
    output += capfd.readouterr().err
    assert markers_left(marker, start, out) == []
    assert code != 0
    assert [line.split(" ")[1] for line in error_lines(output)] == ["csv_path"], output
    assert "Traceback" not in output
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_free_text_payloads_are_baked_as_written(scene, channel):
    """Free text holds the payloads (rotated as above) and is baked as written, escaped per file."""
    start, out, marker = scene
    given = rotated(sorted(LITERAL), marker, channel)
    code, output = bake_by(channel, start, out, given | {"project_slug": "payload-check", "init_git": "no"})
    assert markers_left(marker, start, out) == []
    assert code == 0, output
    project = out / "payload-check"
    recorded = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    assert {name: recorded[name] for name in LITERAL} == given
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pyproject["description"] == given["description"]
    assert pyproject["authors"] == [{"name": given["author_name"], "email": DEFAULT_ANSWERS["author_email"]}]
    init = project / "src" / "payload_check" / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")), clean=False) == given["description"]
    readme = (project / "README.md").read_text(encoding="utf-8").splitlines()
    assert markdown_unescaped(readme[0]) == f"# {given['project_name']}"


def markdown_unescaped(text: str) -> str:
    """What Markdown shows for backslash-escaped ASCII punctuation (CommonMark)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def test_a_folder_path_holding_jinja_is_not_rendered(scene):
    """cookiecutter renders each folder's full output path: the part before the template's is literal."""
    start, out, marker = scene
    inner = out / ("{{ lipsum.__globals__.os.popen('touch " + marker.name + "').read() }}")
    inner.mkdir()
    code, output = bake_by("api", start, inner, {"project_slug": "folder-check", "init_git": "no"})
    assert markers_left(marker, start, out) == []
    assert code == 0, output
    assert (inner / "folder-check" / "src" / "folder_check" / "__init__.py").is_file()


# --- every wrong answer gets its one line --------------------------------------------------

HINT_SLUG = (
    "use lowercase letters, digits and single '-' between them, starting with a letter (e.g. 'churn-model')"
)
TEN_THOUSAND = "x" * 10_000
CUT = "'" + "x" * 40 + "…'"
CONTROL = "holds a line break or control character: use printable text"
REF_HINT = (
    "is not a tag or commit: use a version tag (v1, v1.2.3) or a full 40-character commit SHA, never a branch"
)
REPO_HINT = (
    "is not a GitHub repository: use owner/name (owner: letters, digits and single '-', "
    "at most 39; name: letters, digits, '.', '_' and '-')"
)
URI_HINT = (
    "is not a tracking URI: use sqlite:///, http(s)://, file:, postgresql(+driver):// or databricks, "
    "with URI characters only (no spaces or quotes)"
)
DVC_HINT = (
    "holds a space, quote, '#' or ',': use a URL or folder without them (DVC's config cannot keep them)"
)


def shadow(package: str, what: str) -> str:
    return f"package_name {package!r} would shadow {what}: choose another name (e.g. 'churn_model')"


# Each class of bad answer and the exact line the hook prints for it (choices from cookiecutter.json).
BAD = {
    "name-10000-chars": (
        {"project_name": TEN_THOUSAND},
        f"project_name {CUT} is too long (10000 characters): use at most 100",
    ),
    "name-newline": ({"project_name": "ML\nProject"}, f"project_name 'ML\\nProject' {CONTROL}"),
    "name-empty": ({"project_name": ""}, "project_name is empty: give the project a name"),
    "description-301-chars": (
        {"description": "d" * 301},
        f"description '{'d' * 40}…' is too long (301 characters): use at most 300",
    ),
    "description-tab": ({"description": "a\tb"}, f"description 'a\\tb' {CONTROL}"),
    "description-padded": (
        {"description": " padded "},
        "description ' padded ' starts or ends with a space: remove it",
    ),
    **{
        f"slug-{slug}": (
            {"project_slug": slug},
            f"project_slug {slug!r} is the name of a package the project depends on: "
            "choose another name (e.g. 'churn-model')",
        )
        for slug in ("mlflow", "pandas", "dvc", "scikit-learn")
    },
    "slug-path": ({"project_slug": "../escape"}, f"project_slug '../escape' is invalid: {HINT_SLUG}"),
    **{
        f"package-{package}": (
            {"package_name": package},
            shadow(package, "a module of Python's standard library"),
        )
        for package in ("json", "site", "distutils")
    },
    **{
        f"package-{package}": ({"package_name": package}, shadow(package, "a module the project depends on"))
        for package in ("sklearn", "yaml", "numpy", "mlflow")
    },
    **{
        f"package-{package}": (
            {"package_name": package},
            shadow(package, "a module or folder of the project itself"),
        )
        for package in ("test", "tests", "cli")
    },
    "author-comma": (
        {"author_name": "Doe, Jane"},
        "author_name 'Doe, Jane' is not usable as the name of an email address: leave out , < > @ \" and \\",
    ),
    "email": (
        {"author_email": "jane(at)example.com"},
        "author_email 'jane(at)example.com' is not an email address: use the form name@example.com",
    ),
    "repo-no-owner": ({"workflows_repo": "mlgate"}, f"workflows_repo 'mlgate' {REPO_HINT}"),
    "repo-dotdot": ({"workflows_repo": "owner/.."}, f"workflows_repo 'owner/..' {REPO_HINT}"),
    **{
        f"ref-{ref}": ({"workflows_ref": ref}, f"workflows_ref {ref!r} {REF_HINT}")
        for ref in ("main", "master", "develop", "abc1234", "refs/tags/v1")
    },
    "ref-newline": (
        {"workflows_ref": "v1\nsecrets: inherit"},
        f"workflows_ref 'v1\\nsecrets: inherit' {CONTROL}",
    ),
    "uri-scheme": ({"mlflow_tracking_uri": "ftp://host/x"}, f"mlflow_tracking_uri 'ftp://host/x' {URI_HINT}"),
    "uri-space": ({"mlflow_tracking_uri": "http://h/a b"}, f"mlflow_tracking_uri 'http://h/a b' {URI_HINT}"),
    "uri-newline": (
        {"mlflow_tracking_uri": "sqlite:///m.db\nx"},
        f"mlflow_tracking_uri 'sqlite:///m.db\\nx' {CONTROL}",
    ),
    "uri-password": (
        {"mlflow_tracking_uri": "postgresql://me:s3cret@db/mlflow"},
        "mlflow_tracking_uri holds a password: set it in MLFLOW_TRACKING_URI at run time instead",
    ),
    "remote-newline": (
        {"dvc_remote": "local", "dvc_remote_url": "/tmp/a\n[core]"},
        f"dvc_remote_url '/tmp/a\\n[core]' {CONTROL}",
    ),
    "remote-space": (
        {"dvc_remote": "local", "dvc_remote_url": "/tmp/my store"},
        f"dvc_remote_url '/tmp/my store' {DVC_HINT}",
    ),
    "remote-quote": (
        {"dvc_remote": "s3", "dvc_remote_url": 's3://b/"p"'},
        f"dvc_remote_url 's3://b/\"p\"' {DVC_HINT}",
    ),
    "remote-hash": (
        {"dvc_remote": "gs", "dvc_remote_url": "gs://b/p#x"},
        f"dvc_remote_url 'gs://b/p#x' {DVC_HINT}",
    ),
    "sensitive-is-target": (
        CSV | {"sensitive_features": "region, outcome"},
        "sensitive_features 'outcome' is the target: name other columns",
    ),
    **{
        f"choice-{name}": (
            {name: "nonsense"},
            f"{name} 'nonsense' is not supported: choose one of {', '.join(allowed)}",
        )
        for name, allowed in CHOICES.items()
    },
}
# cookiecutter itself refuses a value outside a choice list, before any code of the template runs.
REFUSED_BY_COOKIECUTTER = {f"choice-{name}" for name in CHOICES}


@pytest.mark.parametrize(("changes", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_answer_gets_its_one_line(tmp_path, changes, expected):
    assert errors_for(tmp_path, **changes) == [expected]


def test_a_password_is_not_shown():
    assert all(
        "s3cret" not in error
        for error in errors_for(Path(), mlflow_tracking_uri="postgresql://me:s3cret@h/d")
    )


@pytest.mark.parametrize("value", [True, None, ["a"], {"a": "b"}, 42])
def test_an_answer_that_is_not_text_is_refused(tmp_path, value):
    assert errors_for(tmp_path, author_name=value) == [
        f"author_name {value!r} is not text: answer with a string"
    ]


def batches(classes: dict) -> list[list[str]]:
    """Classes grouped so that no two in a group change the same answer: one bake per group."""
    groups: list[tuple[list[str], set[str]]] = []
    for name, (changes, _) in classes.items():
        group = next((g for g in groups if not g[1] & changes.keys()), None)
        if group is None:
            groups.append(group := ([], set()))
        group[0].append(name)
        group[1].update(changes)
    return [names for names, _ in groups]


CLI_BATCHES = batches({name: BAD[name] for name in BAD if name not in REFUSED_BY_COOKIECUTTER})


@pytest.mark.parametrize("batch", CLI_BATCHES, ids=["+".join(batch) for batch in CLI_BATCHES])
def test_cookiecutter_prints_each_line_and_creates_nothing(tmp_path, batch):
    out = tmp_path / "out"
    out.mkdir()
    changes = {key: value for name in batch for key, value in BAD[name][0].items()}
    result = cookiecutter_cli(
        out, *(f"{key}={value}" for key, value in changes.items()), env=env_without_uv()
    )
    assert result.returncode != 0
    lines = error_lines(result.stderr)
    assert {f"error: {BAD[name][1]}" for name in batch} <= set(lines), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == []


def test_an_answer_that_is_not_text_in_a_user_config_is_refused(tmp_path):
    start, out = tmp_path / "start", tmp_path / "out"
    start.mkdir()
    out.mkdir()
    code, output = bake_by("config", start, out, {"project_name": True, "init_git": "no"})
    assert code != 0
    assert "error: project_name True is not text: answer with a string" in error_lines(output)
    assert list(out.iterdir()) == []


# --- the CSV file: one line for each problem, never a traceback -----------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CSV_FILES = {
    "binary": (
        lambda tmp: write(tmp / "data.csv", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        "holds NUL bytes (binary data, or UTF-16 text): give a CSV file in UTF-8",
    ),
    "utf-16": (
        lambda tmp: write(tmp / "data.csv", "a,y\n1,2\n".encode("utf-16")),
        "holds NUL bytes (binary data, or UTF-16 text): give a CSV file in UTF-8",
    ),
    "latin-1": (
        lambda tmp: write(tmp / "data.csv", "city,y\nZürich,1\n".encode("latin-1")),
        "is not UTF-8 text (byte 0xfc at offset 8): save it as UTF-8 (e.g. 'CSV UTF-8')",
    ),
    "folder": (lambda tmp: tmp, "is a folder: give the path of your CSV file"),
    "header-only": (
        lambda tmp: write(tmp / "data.csv", b"a,y\n\n"),
        "has no data rows: it holds only the header",
    ),
    "field-too-large": (
        lambda tmp: write(tmp / "data.csv", b"a,y\n" + b"x" * 200_000 + b",1\n"),
        "is not a readable CSV (field larger than field limit (131072)): save it as comma-separated values",
    ),
}


@pytest.mark.parametrize(("make", "problem"), CSV_FILES.values(), ids=CSV_FILES.keys())
def test_a_bad_csv_file_gets_one_line(tmp_path, make, problem):
    path = make(tmp_path)
    assert errors_for(tmp_path, dataset="csv", csv_path=str(path), target="y") == [
        f"csv_path {str(path)!r} {problem}"
    ]


def test_an_unreadable_csv_gets_one_line(tmp_path, monkeypatch):
    path = write(tmp_path / "data.csv", b"a,y\n1,2\n")
    real_open = Path.open

    def refusing_open(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    assert errors_for(tmp_path, dataset="csv", csv_path=str(path), target="y") == [
        f"csv_path {str(path)!r} cannot be read (Permission denied): check the file's permissions"
    ]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path / "data.csv", b"\xef\xbb\xbfy,a\n1,2\n")
    assert errors_for(tmp_path, dataset="csv", csv_path=str(path), target="y") == []


@pytest.mark.parametrize("kind", ["binary", "latin-1", "folder", "header-only"])
def test_cookiecutter_stops_on_a_bad_csv_with_one_line(tmp_path, kind):
    make, problem = CSV_FILES[kind]
    data = tmp_path / "data"
    data.mkdir()
    path, out = make(data), tmp_path / "out"
    out.mkdir()
    result = cookiecutter_cli(out, "dataset=csv", f"csv_path={path}", "target=y", env=env_without_uv())
    assert result.returncode != 0
    assert error_lines(result.stderr) == [f"error: csv_path {str(path)!r} {problem}"]
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == []


# --- answers the hook allows are escaped for the file they land in --------------------------

AWKWARD = {
    "project_name": 'Zoë\'s "Churn" \\ model #1 <b>*',
    "project_slug": "churn-model",
    "description": (
        'It\'s a "test" of #hashes, back\\slashes, """triple""" quotes, {{ braces }}, '
        "- dashes \u2013 and ünïcödé: long enough that the docstring needs more than one line of 110"
    ),
    "author_name": "Zoë O'Brien-Łukasz",
    "author_email": "zoe.o-brien+ml@example.co.uk",
    "target": "yes",
    "sensitive_features": 'a #b, say "hi", null',
    "time_column": "on",
    "dvc_remote": "local",
    "dvc_remote_url": "/tmp/dvc-store/ünï;x=1[2]",
    "mlflow_tracking_uri": "https://mlflow.example.com:5000/p?a=1&b='x'#frag",
    "workflows_repo": "my-org/ml.gate_2",
    "workflows_ref": "v1.2.3-rc.1",
}
AWKWARD_CSV = 'yes,a #b,"say ""hi""",null,on,x\n1,2,3,4,2020,6\n0,1,2,3,2021,5\n'


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> tuple[Path, Path]:
    """One bake of awkward but allowed answers, from a CSV with a byte-order mark."""
    tmp = tmp_path_factory.mktemp("awkward")
    source = write(tmp / "data.csv", b"\xef\xbb\xbf" + AWKWARD_CSV.encode())
    answers = AWKWARD | {"dataset": "csv", "csv_path": str(source), "init_git": "no"}
    args = (f"{key}={value}" for key, value in answers.items())
    result = cookiecutter_cli(tmp / "out", *args, env=env_without_uv())
    assert result.returncode == 0, result.stderr
    return tmp / "out" / "churn-model", source


def test_pyproject_holds_the_answers_exactly(awkward):
    project, _ = awkward
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert data["name"] == AWKWARD["project_slug"]
    assert data["description"] == AWKWARD["description"]
    assert data["authors"] == [{"name": AWKWARD["author_name"], "email": AWKWARD["author_email"]}]


def test_params_hold_the_answers_exactly(awkward):
    project, _ = awkward
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert params["data"]["target"] == "yes"
    assert params["data"]["sensitive_features"] == ["a #b", 'say "hi"', "null"]
    assert params["data"]["time_column"] == "on"
    assert params["mlflow"] == {
        "tracking_uri": AWKWARD["mlflow_tracking_uri"],
        "experiment": "churn-model",
        "registered_model": "churn-model",
    }


def test_dvc_config_holds_the_url_exactly(awkward):
    project, _ = awkward
    config = configparser.ConfigParser()
    config.read(project / ".dvc" / "config", encoding="utf-8")
    assert config["'remote \"storage\"'"]["url"] == AWKWARD["dvc_remote_url"]


def test_recorded_answers_are_exact(awkward):
    project, source = awkward
    recorded = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    assert {key: recorded[key] for key in AWKWARD} == AWKWARD
    assert recorded["csv_path"] == str(source)


def test_package_docstring_is_the_description_and_ruff_is_clean(awkward):
    project, _ = awkward
    init = project / "src" / "churn_model" / "__init__.py"
    assert (
        ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")), clean=False) == AWKWARD["description"]
    )
    ruff = Path(sys.executable).parent / "ruff"
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run([str(ruff), *args, str(init)], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_readme_shows_the_answers_as_written(awkward):
    project, _ = awkward
    lines = (project / "README.md").read_text(encoding="utf-8").splitlines()
    assert markdown_unescaped(lines[0]) == f"# {AWKWARD['project_name']}"
    assert markdown_unescaped(lines[2]) == AWKWARD["description"]
    command = next(line for line in lines if line.startswith("--backend-store-uri "))
    assert shlex.split(command.removesuffix("`.")) == ["--backend-store-uri", AWKWARD["mlflow_tracking_uri"]]


def test_workflows_call_the_given_repository_and_tag(awkward):
    project, _ = awkward
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    uses = [job["uses"] for job in ci["jobs"].values() if "uses" in job]
    assert uses and all(use.startswith("my-org/ml.gate_2/.github/workflows/") for use in uses)
    assert all(use.endswith("@v1.2.3-rc.1") for use in uses)


def test_a_csv_with_a_byte_order_mark_is_copied_as_it_is(awkward):
    """pandas (the baked ingest) reads a UTF-8 byte-order mark as such: the copy keeps the file's bytes."""
    project, source = awkward
    assert (project / "data" / "external" / "source.csv").read_bytes() == source.read_bytes()


@pytest.mark.skipif(not uv_available(), reason="needs uv")
def test_defaults_bake_as_before_and_every_locked_package_is_refused_as_the_slug(tmp_path):
    """Ordinary answers come out as plain text; the hook's list of the project's dependencies
    covers what `uv lock` resolves for the default bake (the remotes' extras are listed by hand)."""
    result = cookiecutter_cli(tmp_path, "init_git=no")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "ml-project"
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# ML Project\n\n{COOKIECUTTER['description']}\n")
    init = (project / "src" / "ml_project" / "__init__.py").read_text(encoding="utf-8")
    assert init == f'"""{COOKIECUTTER["description"]}"""\n'
    assert 'name = "ml-project"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    locked = set(re.findall(r'^\[\[package\]\]\nname = "([^"]+)"', lock, re.MULTILINE)) - {"ml-project"}
    assert len(locked) > 50
    missing = sorted(locked - HOOK.DISTRIBUTIONS)
    assert missing == [], f"add these to DISTRIBUTIONS in hooks/pre_gen_project.py: {missing}"


# --- the escaping filters, on values the hook would refuse as well ---------------------------

NASTY = [
    "plain",
    'quote " and \\ backslash',
    '"""triple""" and a last "',
    "ends with a backslash \\",
    "line\nbreak, tab\t, nul \0, del \x7f, nel \x85",
    "separators \u2028 \u2029, bom \ufeff, nbsp \xa0",
    "emoji 😀, ünïcödé, en dash \u2013, Ω",
    "{{ jinja }} {% raw %}{% endraw %} {# c #}",
    "yes",
    "",
]


@pytest.fixture(scope="module")
def extension():
    sys.path.insert(0, str(ROOT))
    try:
        import mlgate_answers
    finally:
        sys.path.remove(str(ROOT))
    return mlgate_answers


@pytest.mark.parametrize("value", NASTY)
def test_quoted_strings_read_back_exactly_in_toml_and_yaml(extension, value):
    quoted = extension.quoted_string(value)
    assert tomllib.loads(f"key = {quoted}\n")["key"] == value
    assert yaml.safe_load(f"key: {quoted}  # a comment\n")["key"] == value


@pytest.mark.parametrize("value", NASTY)
def test_the_docstring_reads_back_exactly_and_fits_the_line(extension, value):
    line = extension.python_docstring(value * 8)
    assert ast.get_docstring(ast.parse(line + "\n"), clean=False) == value * 8
    assert line.isascii()
    assert len(line) <= extension.LINE_LENGTH or line.endswith('"""  # noqa: E501')


@pytest.mark.parametrize(
    "value", ["- a list?", "+ b", "= c", "12. d", "3) e", "# f", "> g", "*h* _i_ `j` [k](l) <m>"]
)
def test_markdown_text_is_neither_markup_nor_a_block(extension, value):
    text = extension.markdown_text(value)
    assert markdown_unescaped(text) == value
    assert not re.match(r"[-+=#>]|\d+[.)]", text)
    assert not re.search(r"(?<!\\)[*_`\[\]<>]", text)


def test_dvc_config_values_are_plain_when_they_can_be(extension):
    assert extension.dvc_config_value("s3://bucket/path") == "s3://bucket/path"
    assert extension.dvc_config_value("/tmp/a b#c,d") == '"/tmp/a b#c,d"'
    assert extension.dvc_config_value('/tmp/"a"') == "'/tmp/\"a\"'"
    with pytest.raises(ValueError, match="cannot be written"):
        extension.dvc_config_value("/tmp/'a'\"b\"")


@pytest.mark.parametrize("value", NASTY)
def test_a_string_that_is_not_the_templates_own_renders_as_itself(extension, value):
    environment = StrictEnvironment(
        context={"cookiecutter": {"_extensions": ["mlgate_answers.LiteralAnswers"]}}
    )
    assert environment.from_string(value).render(cookiecutter={}) == value


def test_the_templates_own_strings_stay_templates(extension):
    slug = COOKIECUTTER["project_slug"]
    assert extension.preprocess_source(slug, None) == slug
    assert extension.preprocess_source("src/{{cookiecutter.package_name}}", None).endswith("package_name}}")
    path = "/out/{{ x }}/./src/{{cookiecutter.package_name}}"
    assert extension.preprocess_source(path, None) == (
        extension.literal("/out/{{ x }}/./") + "src/{{cookiecutter.package_name}}"
    )
    assert extension.preprocess_source("{{ x }}", "README.md") == "{{ x }}"  # a file, loaded by name
