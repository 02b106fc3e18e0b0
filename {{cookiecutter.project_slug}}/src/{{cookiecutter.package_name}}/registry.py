"""The model registry: register, promote, roll back, with MLflow aliases (not stages).

`challenger` points at the candidate, `champion` at what serves. Each promotion
tags the new champion with the version it replaced (`previous_champion`), so
`rollback` moves `champion` back in one call, and further back after that. The
registered model also keeps `champion_history`, the versions that held
`champion`, oldest first.

Each version is tagged with what identifies it: the git commit, the data hash
and its test metrics. The data hash is the md5 that `dvc.lock` records for the
ingest stage's output, `data/raw/data.csv`: the data the whole pipeline
started from (the server's `/version` reports the same hash).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import Paths, Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"  # version tag: the champion this version replaced
HISTORY = "champion_history"  # registered-model tag: versions that held `champion`, oldest first
HISTORY_LENGTH = 20
RAW_DATA = "data/raw/data.csv"
ADMIN_TOKEN_ENV = "SERVE_ADMIN_TOKEN"  # the server's admin token, sent as a bearer token by `reload_server`
RELOAD_TIMEOUT = 120.0  # seconds for a server to download and load the new model


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (e.g. no previous champion to go back to)."""


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class Registered:
    version: str
    source: str  # what was registered: models:/<logged model id>


@dataclass(frozen=True)
class Move:
    """`champion` now points at `version`; it pointed at `replaced` (None: there was no champion)."""

    version: str
    replaced: str | None


def with_absolute_store(settings: Settings, root: Path) -> Settings:
    """A relative sqlite path (`sqlite:///mlflow.db`) is relative to the project root, not the shell."""
    uri, prefix = settings.mlflow.tracking_uri, "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix) :].startswith("/"):
        return settings
    absolute = prefix + str((root / uri[len(prefix) :]).resolve())
    return settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": absolute})}
    )


def data_hash(lock: dict) -> str:
    """The md5 of data/raw/data.csv, as the ingest stage recorded it in dvc.lock."""
    outs = ((lock or {}).get("stages") or {}).get("ingest", {}).get("outs") or []
    return next(
        (str(out["md5"]) for out in outs if out.get("path") == RAW_DATA and out.get("md5")), "unknown"
    )


def version_tags(metrics: dict, lock: dict, commit: str) -> dict[str, str]:
    """What identifies a candidate: git commit, data hash, and its test metrics."""
    tags = {"git_commit": commit, "data_md5": data_hash(lock)}
    tags |= {f"metric.{name}": str(value) for name, value in metrics.get("model", {}).items()}
    return tags


def previous_champion(tags: dict[str, str]) -> str:
    previous = tags.get(PREVIOUS, "")
    if not previous:
        raise RegistryError("the champion has no previous version to roll back to; pass --version")
    return previous


def git_commit(root: Path) -> str:
    """HEAD of the project's repository; $GIT_COMMIT where there is no .git (a container); else 'unknown'."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is not None and result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    return os.environ.get("GIT_COMMIT") or "unknown"


def _client(settings: Settings):
    from mlflow import MlflowClient

    uri = settings.mlflow.tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _logged_model(client, metadata: dict) -> str | None:
    """`models:/<id>` of the model the train stage logged, if this tracking store has it."""
    from mlflow.exceptions import MlflowException

    model_id = metadata.get("mlflow_model_id")
    if not model_id:
        return None
    try:
        client.get_logged_model(str(model_id))
    except MlflowException:
        return None  # trained against another store (a CI runner's, a colleague's)
    return f"models:/{model_id}"


def _log_local_model(settings: Settings, paths: Paths) -> str:
    """Log the model directory's pipeline in a new run of this store; `models:/<id>` of it."""
    import mlflow
    import mlflow.sklearn

    from .train import TRUSTED_TYPES, load_model, pip_requirements

    mlflow.set_experiment(settings.mlflow.experiment)
    with mlflow.start_run(run_name="register models/model"):
        mlflow.set_tag("registered_from", str(paths.model))
        info = mlflow.sklearn.log_model(
            load_model(paths.model),
            name="model",
            serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES,
            pip_requirements=pip_requirements(),
        )
    return f"models:/{info.model_id}"


def register(settings: Settings, paths: Paths) -> Registered:
    """Add models/model as a new version, tagged, and point `challenger` at it.

    The version is made from the model the train stage logged when this tracking
    store has it (the model directory's MLmodel names it); otherwise the model
    directory is logged first, in a new run.
    """
    import mlflow
    from mlflow.models import Model

    if not (paths.model / "MLmodel").exists():
        raise RegistryError(f"{paths.model}: no MLflow model here; run the train stage first")
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    client = _client(settings)
    metadata = Model.load(str(paths.model)).metadata or {}
    source = _logged_model(client, metadata) or _log_local_model(settings, paths)
    metrics = json.loads(paths.metrics.read_text()) if paths.metrics.exists() else {}
    lock_path = paths.root / "dvc.lock"
    lock = yaml.safe_load(lock_path.read_text()) if lock_path.exists() else {}
    name = settings.mlflow.registered_model
    tags = version_tags(metrics, lock, git_commit(paths.root))
    version = str(mlflow.register_model(source, name, tags=tags).version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return Registered(version, source)


def alias_version(settings: Settings, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        found = _client(settings).get_model_version_by_alias(settings.mlflow.registered_model, alias)
        return str(found.version)
    except MlflowException:
        return None


def _version(client, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"{name} has no version {version!r}") from None


def _point_champion(client, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    history = (client.get_registered_model(name).tags or {}).get(HISTORY, "").split()
    client.set_registered_model_tag(name, HISTORY, " ".join([*history, version][-HISTORY_LENGTH:]))


def promote(settings: Settings, version: str | None = None) -> Move:
    """Point `champion` at the challenger (or a given version), remembering the one it replaces."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    target = version or alias_version(settings, CHALLENGER)
    if target is None:
        raise RegistryError(f"no '{CHALLENGER}' alias on {name}: run `register` first")
    _version(client, name, target)
    current = alias_version(settings, CHAMPION)
    if current == target:
        return Move(target, current)
    if current is not None:
        client.set_model_version_tag(name, target, PREVIOUS, current)
    _point_champion(client, name, target)
    return Move(target, current)


def rollback(settings: Settings, version: str | None = None) -> Move:
    """Move `champion` back to the version it replaced (or to a given version)."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    current = alias_version(settings, CHAMPION)
    if current is None:
        raise RegistryError(f"no '{CHAMPION}' alias on {name}: nothing to roll back")
    target = version or previous_champion(_version(client, name, current).tags or {})
    _version(client, name, target)
    if target != current:
        _point_champion(client, name, target)
    return Move(target, current)


def champion_history(settings: Settings) -> list[str]:
    """Versions that held `champion`, oldest first (promotions and rollbacks)."""
    from mlflow.exceptions import MlflowException

    try:
        model = _client(settings).get_registered_model(settings.mlflow.registered_model)
    except MlflowException:
        return []
    return (model.tags or {}).get(HISTORY, "").split()


def status(settings: Settings) -> list[VersionRow]:
    """Every version of the registered model, newest first, with its aliases and tags."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    versions = client.search_model_versions(f"name = '{name}'")
    # Searches leave aliases out; the registered model lists them.
    aliases = client.get_registered_model(name).aliases if versions else {}
    return sorted(
        (
            VersionRow(
                str(v.version),
                tuple(sorted(a for a, target in aliases.items() if str(target) == str(v.version))),
                dict(v.tags or {}),
            )
            for v in versions
        ),
        key=lambda row: int(row.version),
        reverse=True,
    )


def format_status(rows: list[VersionRow], metric: str) -> str:
    """A plain-text table: version, aliases, commit, data hash, one metric, the champion it replaced."""
    if not rows:
        return "no registered versions yet: run `register`"
    header = ("version", "aliases", "git commit", "data md5", metric, "replaced")
    table = [
        (
            row.version,
            ", ".join(row.aliases) or "-",
            row.tags.get("git_commit", "-")[:12],
            row.tags.get("data_md5", "-")[:12],
            row.tags.get(f"metric.{metric}", "-"),
            row.tags.get(PREVIOUS, "-"),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *table]
    )


def reload_server(url: str, timeout: float = RELOAD_TIMEOUT) -> dict:
    """POST <url>/admin/reload: the server loads its source again (the alias just moved); its answer."""
    import urllib.error
    import urllib.request

    token = os.environ.get(ADMIN_TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(
        url.rstrip("/") + "/admin/reload", data=b"", headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as err:
        raise RegistryError(
            f"{url} refused to reload ({err.code}): {err.read().decode(errors='replace')}"
        ) from None
    except (OSError, ValueError) as err:
        raise RegistryError(f"{url} did not reload: {err}") from None
