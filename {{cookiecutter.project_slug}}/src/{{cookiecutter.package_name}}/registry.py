"""The model registry: register, promote, roll back, with MLflow aliases (not stages).

`challenger` points at the candidate, `champion` at what serves. Each promotion
tags the new champion with the version it replaced, so `rollback` moves
`champion` back in one call, and again further back after that.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import Paths, Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"  # version tag: the champion this version replaced


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (e.g. no previous champion to go back to)."""


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]


def version_tags(metrics: dict, lock: dict, commit: str) -> dict[str, str]:
    """What identifies a candidate: git commit, data hash, and its test metrics."""
    raw = lock.get("stages", {}).get("ingest", {}).get("outs", [{}])[0]
    tags = {"git_commit": commit, "data_md5": str(raw.get("md5", "unknown"))}
    tags |= {f"metric.{name}": str(value) for name, value in metrics.get("model", {}).items()}
    return tags


def previous_champion(tags: dict[str, str]) -> str:
    previous = tags.get(PREVIOUS, "")
    if not previous:
        raise RegistryError("the champion has no previous version to roll back to; pass --version")
    return previous


def _client(settings: Settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


def _git_commit(root: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def register(settings: Settings, paths: Paths) -> str:
    """Add models/model as a new version, tagged, and point `challenger` at it."""
    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    metadata = Model.load(str(paths.model)).metadata or {}
    model_id = metadata.get("mlflow_model_id")
    if not model_id:
        raise RegistryError(f"{paths.model} has no MLflow model id: run the train stage first")
    metrics = json.loads(paths.metrics.read_text()) if paths.metrics.exists() else {}
    lock_path = paths.root / "dvc.lock"
    lock = yaml.safe_load(lock_path.read_text()) if lock_path.exists() else {}
    name = settings.mlflow.registered_model
    version = mlflow.register_model(
        f"models:/{model_id}", name, tags=version_tags(metrics, lock, _git_commit(paths.root))
    ).version
    _client(settings).set_registered_model_alias(name, CHALLENGER, version)
    return str(version)


def alias_version(settings: Settings, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        found = _client(settings).get_model_version_by_alias(settings.mlflow.registered_model, alias)
        return str(found.version)
    except MlflowException:
        return None


def promote(settings: Settings, version: str | None = None) -> str:
    """Point `champion` at the challenger (or a given version), remembering the one it replaces."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    target = version or alias_version(settings, CHALLENGER)
    if target is None:
        raise RegistryError(f"no '{CHALLENGER}' alias on {name}: run `register` first")
    current = alias_version(settings, CHAMPION)
    if current is not None and current != target:
        client.set_model_version_tag(name, target, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, target)
    return target


def rollback(settings: Settings, version: str | None = None) -> str:
    """Move `champion` back to the version it replaced (or to a given version)."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    current = alias_version(settings, CHAMPION)
    if current is None:
        raise RegistryError(f"no '{CHAMPION}' alias on {name}: nothing to roll back")
    target = version or previous_champion(client.get_model_version(name, current).tags)
    client.set_registered_model_alias(name, CHAMPION, target)
    return target


def status(settings: Settings) -> list[VersionRow]:
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


def format_status(rows: list[VersionRow]) -> str:
    lines = [f"{'version':>7}  {'aliases':22}  {'commit':12}  roc_auc/rmse"]
    for row in rows:
        score = row.tags.get("metric.roc_auc", row.tags.get("metric.rmse", "-"))
        commit = row.tags.get("git_commit", "-")[:12]
        lines.append(f"{row.version:>7}  {', '.join(row.aliases) or '-':22}  {commit:12}  {score}")
    return "\n".join(lines)
