"""The MLflow tracking store, opened in one place: bounded waits, one-line errors, what the project saw.

Every command that talks to MLflow opens the store with `open_store`, which

- bounds calls to a tracking server: MLflow waits up to two minutes per request
  and retries seven times by default, so an unreachable server looks like a
  hang. `HTTP_DEFAULTS` apply unless the variables are already set;
- refuses a local sqlite store that is gone, empty or damaged, or that lacks a
  version this project registered in it. MLflow would quietly create a new,
  empty store: the history lost and "version 1" again. What the project saw is
  recorded beside the store, in `.mlgate/registry.json`; set
  MLGATE_NEW_REGISTRY=1 for one command to accept a new store instead;
- refuses an experiment whose artifacts live outside the store's folder: the
  database holds absolute paths, so a copied project would write into (and
  read from) the original's `mlruns/`.

Experiments are created with their artifacts beside a local store
(`mlruns/<experiment>`), wherever the command runs: MLflow alone would put them
under the working directory.

Every failure is a `RegistryError`: one line naming the store and what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

NEW_REGISTRY_ENV = "MLGATE_NEW_REGISTRY"  # =1: accept a new (empty or other) store, for one command
STATE_FILE = Path(".mlgate") / "registry.json"  # beside the sqlite file
ARTIFACTS = "mlruns"  # beside the sqlite file: mlruns/<experiment>/...
SQLITE = "sqlite:///"
# MLflow's defaults (120 s, 7 retries, factor 2) wait for many minutes; these give up within ~35 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",  # seconds for one request
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # seconds; doubled each retry
}
# The MLflow UI opens an experiment of this kind on its runs (model training, not GenAI traces).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
TRAINED_RUN_TAG = "mlgate.trained_run"  # on an evaluation run: the training run it evaluates
FIT_SECONDS = "fit_seconds"  # metric of a training run: how long the fit took (the canary compares it)
# Error codes with which MLflow says "no such thing" (an alias lookup says INVALID_PARAMETER_VALUE).
ABSENT = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})

SERVER_HINT = "is the tracking server up? (MLFLOW_TRACKING_URI, else mlflow.tracking_uri in params.yaml)"
CREDENTIALS_HINT = "check MLFLOW_TRACKING_USERNAME and _PASSWORD, or MLFLOW_TRACKING_TOKEN"
RESTORE_HINT = f"restore it, or move it aside and set {NEW_REGISTRY_ENV}=1 to start a new registry"
# A server that is up but fails: with artifacts proxied, a bucket, endpoint or key it cannot use.
FAILING_HINT = "see the tracking server's log (can it reach its database and its artifact store?)"
FAILED_STATUS = re.compile(r"too many (\d{3}) error responses")
# Known failures, by a phrase of their message: what it means, what to do.
KNOWN = (
    ("file is not a database", "not an SQLite database (overwritten?)", RESTORE_HINT),
    ("database disk image is malformed", "the database file is damaged (truncated?)", RESTORE_HINT),
    ("database is locked", "the database is locked by another process", "try again when it is done"),
    ("unable to open database file", "cannot open the database file", "check the path and its permissions"),
    ("connection refused", "connection refused", SERVER_HINT),
    ("read timed out", "no answer in time", SERVER_HINT),
    ("timed out", "no answer in time", SERVER_HINT),
    ("name or service not known", "unknown host", SERVER_HINT),
    ("temporary failure in name resolution", "unknown host", SERVER_HINT),
    ("max retries exceeded", "no answer", SERVER_HINT),
    ("error code 401", "the server refused the credentials", CREDENTIALS_HINT),
    ("error code 403", "the server refused the credentials", CREDENTIALS_HINT),
)
LONGEST = 200  # characters of an unknown error's first line


# models:/<name>@<alias> or models:/<name>/<version>: a registered model; models:/<id>: a logged one.
REGISTERED_URI = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def version_uri(name: str, version: str | int) -> str:
    return f"models:/{name}/{version}"


def alias_uri(name: str, alias: str) -> str:
    return f"models:/{name}@{alias}"


def logged_model_uri(model_id: str) -> str:
    return f"models:/{model_id}"


def logged_model_id(uri: str) -> str:
    return uri.removeprefix("models:/")


def parse_registered_uri(text: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) of `models:/name@alias` or `models:/name/3`; None for anything else."""
    match = REGISTERED_URI.fullmatch(text)
    return (match["name"], match["alias"], match["version"]) if match else None


class RegistryError(ValueError):
    """The registry or tracking store cannot do what was asked; the message says why, in one line.

    A ValueError, like the project's other errors, so every command prints it as one line.
    """


# --- pure: URIs, paths, the recorded state, messages ----------------------------------------------


def absolute_uri(uri: str, root: Path) -> str:
    """A relative sqlite path (`sqlite:///mlflow.db`) is relative to the project root, not the shell."""
    if not uri.startswith(SQLITE) or uri[len(SQLITE) :].startswith("/"):
        return uri
    return SQLITE + str((root / uri[len(SQLITE) :]).resolve())


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite URI (relative: to the working directory, as MLflow reads it)."""
    if not uri.startswith(SQLITE):
        return None
    return Path(unquote(uri[len(SQLITE) :].split("?", 1)[0])).resolve()


def missing_http_defaults(environ: dict[str, str]) -> dict[str, str]:
    """The HTTP bounds the environment does not set (a user's own values win)."""
    return {name: value for name, value in HTTP_DEFAULTS.items() if not environ.get(name)}


def accepting_new_registry(environ: dict[str, str]) -> bool:
    return environ.get(NEW_REGISTRY_ENV, "").strip().lower() in ("1", "true", "yes")


def state_path(db: Path) -> Path:
    return db.parent / STATE_FILE


def parse_state(text: str | None, where: Path) -> dict:
    """The recorded state: {"stores": {database path: {"uri": ..., "models": {name: highest version}}}}.

    Keyed by the full path, so a copy of the project (or of this file) starts with no record of its own.
    """
    if text is None:
        return {"stores": {}}
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("stores"), dict):
        raise RegistryError(f"{where}: not a registry record; delete it (the next command writes it again)")
    return state


def with_seen(
    state: dict, db: Path, uri: str, model: str | None = None, version: int | None = None, fresh: bool = False
) -> dict:
    """The state once the store at `db` was seen (and `model` up to `version`); `fresh`: forget the past."""
    old = {} if fresh else recorded(state, db) or {}
    models = dict(old.get("models") or {})
    if model is not None and version is not None:
        models[model] = max(int(models.get(model, 0)), version)
    return {**state, "stores": {**state["stores"], str(db): {"uri": uri, "models": models}}}


def recorded(state: dict, db: Path) -> dict | None:
    return state["stores"].get(str(db))


def file_fault(uri: str, record: dict | None, size: int | None) -> str | None:
    """Why a sqlite file cannot be the store the project used (`size` None: there is no file)."""
    if record is None or (size or 0) > 0:
        return None
    what = "is gone" if size is None else "is empty"
    held = ", ".join(f"{name} up to version {n}" for name, n in sorted((record.get("models") or {}).items()))
    used = f"this project used it{f' ({held})' if held else ''}"
    return (
        f"{uri}: the registry file {what}, yet {used}: restore it from a backup, "
        f"or set {NEW_REGISTRY_ENV}=1 to start a new registry"
    )


def lost_version(uri: str, model: str, version: int) -> str:
    return (
        f"{uri}: {model} version {version} is missing, yet this project registered it here (an older "
        f"copy, or another store?): restore the store, or set {NEW_REGISTRY_ENV}=1 to accept this one"
    )


def local_path(location: str) -> Path | None:
    """The local folder of an artifact location (a path or file: URI); None for remote ones."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if len(parsed.scheme) <= 1:  # a path (C:\... on Windows)
        return Path(location)
    return None


def outside(location: str, home: Path) -> Path | None:
    """The local folder of `location` if it lies outside `home`; None when inside or not local."""
    path = local_path(location)
    if path is None:
        return None
    path = path.resolve()
    return None if path.is_relative_to(home.resolve()) else path


def foreign_artifacts(uri: str, location: Path, db: Path) -> str:
    return (
        f"{uri}: this registry's artifacts live in {location}, outside {db.parent}, the store's folder "
        f"(a copied or moved project?): work in the project that holds them, or move {db.name} aside "
        f"here and set {NEW_REGISTRY_ENV}=1 to start a registry of its own"
    )


def artifact_folder(home: Path, experiment: str) -> Path:
    """Where a new experiment keeps its artifacts: mlruns/<experiment, as a safe folder name>."""
    return home / ARTIFACTS / (re.sub(r"[^A-Za-z0-9._-]+", "-", experiment).strip(".-") or "experiment")


def describe(uri: str, text: str, environ: dict[str, str]) -> str:
    """One line for a failed store call: the store, what went wrong, what to do."""
    lowered = text.lower()
    if failed := FAILED_STATUS.search(lowered):
        return f"{uri}: the server answered HTTP {failed.group(1)} on every try: {FAILING_HINT}"
    for phrase, meaning, hint in KNOWN:
        if phrase in lowered:
            if meaning == "no answer in time":
                meaning = f"no answer within {environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
            return f"{uri}: {meaning}: {hint}"
    first = " ".join((text.strip().splitlines() or ["failed"])[0].split())
    return f"{uri}: {first[:LONGEST]}{'...' if len(first) > LONGEST else ''}"


# --- I/O: the state file, the sqlite file, the client ---------------------------------------------


def read_state(db: Path) -> dict:
    path = state_path(db)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    return parse_state(text, path)


def write_state(db: Path, state: dict) -> None:
    """Write atomically (servers and commands may open the same store at once)."""
    path = state_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(scratch, path)


def remember(uri: str, model: str | None = None, version: int | None = None, fresh: bool = False) -> None:
    """Record that the project used the sqlite store at `uri` (and `model` up to `version`)."""
    db = sqlite_file(uri)
    if db is None or not db.exists():
        return
    state = read_state(db)
    new = with_seen(state, db, uri, model, version, fresh)
    if new != state:
        with contextlib.suppress(OSError):  # a read-only folder keeps no record; the store is unharmed
            write_state(db, new)


def damage(db: Path) -> str | None:
    """sqlite's own integrity check, read-only, before MLflow touches the file (it may write to it)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as connection:
            result = connection.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.Error as err:
        return str(err)
    return None if result and result[0] == "ok" else f"database disk image is malformed ({result})"


def check_file(uri: str, db: Path, record: dict | None) -> None:
    """A local store must be intact, and there and not empty where the project used one (`record`)."""
    size = db.stat().st_size if db.exists() else None
    fault = file_fault(uri, record, size)
    if fault:
        raise RegistryError(fault)
    if size:
        problem = damage(db)
        if problem:
            raise RegistryError(describe(uri, problem, dict(os.environ)))


def checked_file(uri: str) -> dict | None:
    """The file checks of a local store (none for others): its record, unless a new store is accepted."""
    db = sqlite_file(uri)
    if db is None:
        return None
    record = None if accepting_new_registry(dict(os.environ)) else recorded(read_state(db), db)
    check_file(uri, db, record)
    return record


def local_store_present(uri: str) -> bool:
    """False for a sqlite store never made here (a container, a fresh clone); True for any other store.

    RegistryError when it is damaged, or gone or empty where the project used one: opening it
    would make MLflow create a new, empty store in its place.
    """
    checked_file(uri)
    db = sqlite_file(uri)
    return db is None or (db.exists() and db.stat().st_size > 0)


def bound_http_requests() -> None:
    """Give MLflow's HTTP calls a bounded wait, at command start (never at import)."""
    os.environ.update(missing_http_defaults(dict(os.environ)))


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """MLflow, SQLAlchemy, HTTP and file errors inside -> RegistryError, one line naming the store."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as err:
        if not _from_the_store(err):
            raise
        raise RegistryError(describe(uri, _text(err), dict(os.environ))) from None


def _from_the_store(err: Exception) -> bool:
    import sqlite3

    if isinstance(err, OSError | sqlite3.Error):
        return True
    module = type(err).__module__.split(".")[0]
    return module in ("mlflow", "sqlalchemy", "requests", "urllib3", "botocore", "boto3")


def _text(err: Exception) -> str:
    import sqlite3

    # SQLAlchemy's message adds the SQL and a link; the driver's own words are enough.
    original = getattr(err, "orig", None)
    return str(original if isinstance(original, sqlite3.Error) else err) or type(err).__name__


def open_store(uri: str, model: str | None = None, experiment: str | None = None):
    """An MlflowClient on `uri`, once the store is what the project last saw; RegistryError if not.

    `model`: a version of it this project registered must still be there.
    `experiment`: if it exists, its artifacts must lie beside a local store.
    The file checks come first: they need no MLflow (seconds to import) and leave the file alone.
    """
    bound_http_requests()
    record = checked_file(uri)
    db = sqlite_file(uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with store_errors(uri):
        seen = int(((record or {}).get("models") or {}).get(model, 0)) if model else 0
        if model and seen and not exists(client.get_model_version, model, str(seen)):
            raise RegistryError(lost_version(uri, model, seen))
        if experiment and db is not None:
            found = client.get_experiment_by_name(experiment)
            elsewhere = found and outside(found.artifact_location, db.parent)
            if elsewhere:
                raise RegistryError(foreign_artifacts(uri, elsewhere, db))
    remember(uri, fresh=accepting_new_registry(dict(os.environ)))
    return client


def exists(lookup, *args) -> bool:
    """Whether an MLflow lookup finds its thing (other failures propagate)."""
    from mlflow.exceptions import MlflowException

    try:
        lookup(*args)
    except MlflowException as err:
        if err.error_code in ABSENT:
            return False
        raise
    return True


def experiment_for_runs(client, uri: str, name: str) -> str:
    """The id of experiment `name`; a new one keeps its artifacts beside a local store."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage != "active":
            raise RegistryError(
                f"{uri}: experiment {name!r} is deleted: restore it "
                f"(`mlflow experiments restore --experiment-id {found.experiment_id}`) "
                "or name another in mlflow.experiment in params.yaml"
            )
        if EXPERIMENT_KIND[0] not in found.tags:
            client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        return str(found.experiment_id)
    db = sqlite_file(uri)
    location = str(artifact_folder(db.parent, name)) if db is not None else None
    return str(client.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND])))


def missing_files(location: str) -> Path | None:
    """The local folder of a logged model whose MLmodel file is gone; None if there (or not local)."""
    path = local_path(location)
    return path if path is not None and not (path / "MLmodel").is_file() else None


def check_version_files(client, uri: str, name: str, version: str) -> None:
    """A registered version's files must still be there (a deleted mlruns/ leaves it pointing at nothing)."""
    with store_errors(uri):
        gone = missing_files(client.get_model_version_download_uri(name, str(version)))
    if gone:
        raise RegistryError(
            f"{version_uri(name, version)}: its files are gone from {gone} (mlruns/ deleted?): "
            "restore them, or register and promote another version"
        )


def download_version(client, uri: str, name: str, version: str, destination: Path) -> Path:
    """The files of a registered version, downloaded into `destination`; RegistryError if they are gone."""
    import mlflow.artifacts

    check_version_files(client, uri, name, version)
    with store_errors(uri):
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=version_uri(name, version),
                dst_path=str(destination),
                tracking_uri=uri,
                registry_uri=uri,
            )
        )
