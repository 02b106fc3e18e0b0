"""The model registry: register, promote, roll back, with MLflow aliases (not stages).

`challenger` points at the candidate, `champion` at what serves. Only a version that
passed the gate on its commit (its tag `gate`, from reports/gate.json at `register`) and
the canary (its tag `canary`) is promoted, unless a reason is given, which the
version then records (`promoted_without_canary`, and by whom). Each promotion
tags the new champion with the version it replaced (`previous_champion`), so
`rollback` moves `champion` back in one call, and further back after that. The
registered model also keeps `champion_history`, the versions that held
`champion`, oldest first.

Each version is tagged with what identifies it: the git commit, the data hash
and its test metrics. The data hash is the md5 that `dvc.lock` records for the
ingest stage's output, `data/raw/data.csv`: the data the whole pipeline
started from (the server's `/version` reports the same hash). A model without
test metrics, whose files are gone, or made from changes that are not committed (its
git_commit tag would name other code), is not registered.

The store is opened through `tracking.open_store`: a store that is gone, damaged,
unreachable or missing what this project registered is refused in one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config.serving import ADMIN_TOKEN_ENV
from ..config.settings import Settings
from ..paths import Paths
from ..provenance import LockError, data_hash, evaluated_other_model, git_commit, read_lock, uncommitted
from ..tracking import (
    ABSENT,
    FIT_SECONDS,
    RegistryError,  # defined with the store's errors; importable from here as before
    absolute_uri,
    check_version_files,
    exists,
    experiment_for_runs,
    logged_model_id,
    logged_model_uri,
    missing_files,
    open_store,
    remember,
    store_errors,
)
from .figures import Figures
from .tags import (  # importable from here as before
    CANARY,
    CANARY_CHAMPION,
    CANARY_FIGURE,
    FORCED,
    FORCED_BY,
    GATE,
    PREVIOUS,
)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY = "champion_history"  # registered-model tag: versions that held `champion`, oldest first
HISTORY_LENGTH = 20
RELOAD_TIMEOUT = 120.0  # seconds for a server to download and load the new model


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class Registered:
    version: str
    source: str  # what was registered: models:/<logged model id>
    card: str = ""  # where its model card is: runs:/<run id>/model_card/version-<n>.md


@dataclass(frozen=True)
class Move:
    """`champion` now points at `version`; it pointed at `replaced` (None: there was no champion)."""

    version: str
    replaced: str | None


def with_absolute_store(settings: Settings, root: Path) -> Settings:
    """A relative sqlite path (`sqlite:///mlflow.db`) is relative to the project root, not the shell."""
    absolute = absolute_uri(settings.mlflow.tracking_uri, root)
    if absolute == settings.mlflow.tracking_uri:
        return settings
    return settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": absolute})}
    )


def version_tags(metrics: dict, lock: dict, commit: str) -> dict[str, str]:
    """What identifies a candidate: git commit, data hash, and its test metrics."""
    tags = {"git_commit": commit, "data_md5": data_hash(lock)}
    tags |= {f"metric.{name}": str(value) for name, value in metrics.get("model", {}).items()}
    return tags


def gate_tag(record: object, commit: str) -> str:
    """The gate's verdict on `commit` from its record (reports/gate.json): "passed" or "failed";
    "none" when there is no record, it judged another commit, or it could not judge."""
    if not isinstance(record, dict) or record.get("commit") != commit or commit == "unknown":
        return "none"
    return {"pass": "passed", "fail": "failed"}.get(str(record.get("verdict")), "none")


def read_gate_record(path: Path) -> object:
    """reports/gate.json, or None when it is missing or unreadable (the version is then tagged "none")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_metrics(metrics: object, where: str = "metrics.json") -> dict:
    """The evaluate stage's output, if it holds test metrics of the model; RegistryError if not."""
    if not isinstance(metrics, dict):
        raise RegistryError(f"{where} has no `model` metrics: run the evaluate stage (`dvc repro`) first")
    model = metrics.get("model")
    if not isinstance(model, dict) or not model:
        raise RegistryError(f"{where} has no `model` metrics: run the evaluate stage (`dvc repro`) first")
    bad = next((name for name, value in model.items() if not _is_number(value)), None)
    if bad is not None:
        raise RegistryError(f"{where}: model metric {bad!r} is not a number: run the evaluate stage again")
    return metrics


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def previous_champion(tags: dict[str, str]) -> str:
    previous = tags.get(PREVIOUS, "")
    if not previous:
        raise RegistryError("the champion has no previous version to roll back to; pass --version")
    return previous


def _open(settings: Settings):
    """The checked client for this project's store (see `tracking.open_store`)."""
    mlflow = settings.mlflow
    return open_store(mlflow.tracking_uri, mlflow.registered_model, mlflow.experiment)


def _read_metrics(paths: Paths) -> dict:
    where = paths.metrics.name
    try:
        raw = json.loads(paths.metrics.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{where} not found: run the evaluate stage (`dvc repro`) first") from None
    except ValueError:
        raise RegistryError(f"{where}: not valid JSON: run the evaluate stage (`dvc repro`) again") from None
    return model_metrics(raw, where)


def _logged_model(client, metadata: dict) -> str | None:
    """`models:/<id>` of the model the train stage logged, if this tracking store has it and its files."""
    from mlflow.exceptions import MlflowException

    model_id = metadata.get("mlflow_model_id")
    if not model_id:
        return None
    try:
        found = client.get_logged_model(str(model_id))
    except MlflowException as err:
        if err.error_code in ABSENT:
            return None  # trained against another store (a CI runner's, a colleague's)
        raise
    if missing_files(found.artifact_location):
        return None  # its files were deleted: models/model is logged again instead
    return logged_model_uri(model_id)


def _log_local_model(client, settings: Settings, paths: Paths) -> str:
    """Log the model directory's pipeline in a new run of this store; `models:/<id>` of it."""
    import mlflow
    import mlflow.sklearn

    from ..artifacts import TRUSTED_TYPES, load_model, pip_requirements

    experiment = experiment_for_runs(client, settings.mlflow.tracking_uri, settings.mlflow.experiment)
    with mlflow.start_run(experiment_id=experiment, run_name="register models/model"):
        mlflow.set_tag("registered_from", str(paths.model))
        info = mlflow.sklearn.log_model(
            load_model(paths.model),
            name="model",
            serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES,
            pip_requirements=pip_requirements(),
        )
    return logged_model_uri(str(info.model_id))


def _check_source(client, uri: str, source: str) -> None:
    """What is about to be registered must have its files (else the version would point at nothing)."""
    gone = missing_files(client.get_logged_model(logged_model_id(source)).artifact_location)
    if gone:
        raise RegistryError(f"{uri}: {source} has no files in {gone}: nothing registered")


def register(settings: Settings, paths: Paths) -> Registered:
    """Add models/model as a new version, tagged, and point `challenger` at it.

    The version is made from the model the train stage logged when this tracking
    store has it and its files (the model directory's MLmodel names it); otherwise
    the model directory is logged first, in a new run. Refused, with nothing
    registered, without test metrics in metrics.json, when they are another model's, or when the
    project's folder holds uncommitted changes (other than the pipeline's records).
    """
    if not (paths.model / "MLmodel").exists():
        raise RegistryError(f"{paths.model}: no MLflow model here; run the train stage first")
    metrics = _read_metrics(paths)
    try:
        lock = read_lock(paths.lock)
    except LockError as err:
        raise RegistryError(str(err)) from None
    if evaluated_other_model(lock):
        raise RegistryError(
            f"{paths.metrics.name} is another model's: dvc.lock says the evaluate stage did not run on "
            "this models/model: run `dvc repro` first"
        )
    _check_committed(paths)
    uri, name = settings.mlflow.tracking_uri, settings.mlflow.registered_model
    commit = git_commit(paths.root)
    tags = version_tags(metrics, lock, commit) | {GATE: gate_tag(read_gate_record(paths.gate), commit)}
    from .cards import attach_card, checked_card, gather_facts

    facts = gather_facts(settings, paths, metrics, commit)
    checked_card(name, "new", facts, tags)  # a card without its data hash or gate line: nothing registered

    client = _open(settings)
    import mlflow  # only now: a refused store costs no MLflow import (seconds)
    from mlflow.models import Model

    with store_errors(uri):
        mlflow.set_tracking_uri(uri)  # the registry follows it (never set apart: it would stick)
        metadata = Model.load(str(paths.model)).metadata or {}
        source = _logged_model(client, metadata) or _log_local_model(client, settings, paths)
        _check_source(client, uri, source)
        made = mlflow.register_model(source, name, tags=tags)
        version = str(made.version)
        client.set_registered_model_alias(name, CHALLENGER, version)
        card = attach_card(client, name, version, made.run_id, facts)
    remember(uri, name, int(version))
    return Registered(version, source, card)


def _check_committed(paths: Paths) -> None:
    """The version's git_commit tag must name what made the model: no change may be left out of it.
    The pipeline's own records (dvc.lock, metrics) may differ: a re-run rewrites them."""
    changed = uncommitted(paths.root, paths.records())
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise RegistryError(
            f"uncommitted changes in {shown}: commit them first, so that the version's git_commit "
            "names the code, params and data that made the model"
        )


def _alias(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if err.error_code in ABSENT:
            return None
        raise


def alias_version(settings: Settings, alias: str) -> str | None:
    client = _open(settings)
    with store_errors(settings.mlflow.tracking_uri):
        return _alias(client, settings.mlflow.registered_model, alias)


def _version(client, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as err:
        if err.error_code in ABSENT:
            raise RegistryError(f"{name} has no version {version!r}") from None
        raise


def check_servable(settings: Settings, version: str) -> None:
    """RegistryError (one line) unless `version` exists and its files are there to be served."""
    client = _open(settings)
    uri, name = settings.mlflow.tracking_uri, settings.mlflow.registered_model
    with store_errors(uri):
        _version(client, name, version)
    check_version_files(client, uri, name, version)


def _point_champion(client, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    history = (client.get_registered_model(name).tags or {}).get(HISTORY, "").split()
    client.set_registered_model_tag(name, HISTORY, " ".join([*history, version][-HISTORY_LENGTH:]))


def record_canary(
    settings: Settings, version: str, passed: bool, champion: str | None, figures: Figures | None = None
) -> None:
    """Tag the version with the canary's verdict (what promotion asks for) and the figures it measured
    (`canary_p50_ms`, ..., the record the next version's canary and the monitor compare with)."""
    client = _open(settings)
    name = settings.mlflow.registered_model
    with store_errors(settings.mlflow.tracking_uri):
        client.set_model_version_tag(name, version, CANARY, "passed" if passed else "refused")
        client.set_model_version_tag(name, version, CANARY_CHAMPION, champion or "none")
        for figure, value in figure_tags(figures).items():
            client.set_model_version_tag(name, version, figure, value)
        _refresh_card(client, name, version)


def tag_values(settings: Settings, versions: list[str], key: str) -> dict[str, str]:
    """`key`'s value on each of `versions` that has it (versions the registry lacks are left out)."""
    from mlflow.exceptions import MlflowException

    client = _open(settings)
    name, found = settings.mlflow.registered_model, {}
    with store_errors(settings.mlflow.tracking_uri):
        for version in versions:
            try:
                tags = client.get_model_version(name, version).tags or {}
            except MlflowException as err:
                if err.error_code in ABSENT:
                    continue
                raise
            if key in tags:
                found[version] = tags[key]
    return found


def figure_tags(figures: Figures | None) -> dict[str, str]:
    """`canary_<figure>` -> its value, for the figures that were measured."""
    if figures is None:
        return {}
    measured = {key: value for key, value in asdict(figures).items() if value is not None}
    return {f"{CANARY_FIGURE}{key}": f"{value:.6g}" for key, value in measured.items()}


def fit_seconds(settings: Settings, version: str) -> float | None:
    """How long fitting `version` took, from its train run's metric; None if it has no such run."""
    from mlflow.exceptions import MlflowException

    client = _open(settings)
    with store_errors(settings.mlflow.tracking_uri):
        run_id = _version(client, settings.mlflow.registered_model, version).run_id
        if not run_id:
            return None
        try:
            value = client.get_run(run_id).data.metrics.get(FIT_SECONDS)
        except MlflowException as err:
            if err.error_code in ABSENT:
                return None
            raise
    return float(value) if isinstance(value, int | float) else None


def check_promotable(tags: dict[str, str], version: str) -> None:
    """RegistryError unless the gate passed the version's commit and the canary passed the version."""
    gate = tags.get(GATE, "none")
    if gate != "passed":
        judged = "the gate failed its commit" if gate == "failed" else "no gate verdict on its commit"
        raise RegistryError(
            f"version {version}: {judged}; run `report` on the commit before `register` (the deploy "
            "workflow does), or promote it with --force REASON, which the version records"
        )
    verdict = tags.get(CANARY)
    if verdict != "passed":
        judged = "the canary refused it" if verdict == "refused" else "no canary judged it"
        raise RegistryError(
            f"version {version}: {judged}; run `canary` (with --promote), or promote it with "
            "--force REASON, which the version records"
        )


def promote(settings: Settings, version: str | None = None, force: str | None = None) -> Move:
    """Point `champion` at the challenger (or a given version), remembering the one it replaces.

    The version must have passed the gate and the canary; with `force` (the reason) it need not, and the
    version records the reason and who gave it."""
    client = _open(settings)
    uri, name = settings.mlflow.tracking_uri, settings.mlflow.registered_model
    with store_errors(uri):
        target = version or _alias(client, name, CHALLENGER)
        if target is None:
            raise RegistryError(f"no '{CHALLENGER}' alias on {name}: run `register` first")
        tags = _version(client, name, target).tags or {}
        check_version_files(client, uri, name, target)  # never make a champion that cannot be served
        if force is None:
            check_promotable(tags, target)
        else:
            client.set_model_version_tag(name, target, FORCED, force)
            client.set_model_version_tag(name, target, FORCED_BY, who_acts())
        current = _alias(client, name, CHAMPION)
        if current not in (None, target):
            client.set_model_version_tag(name, target, PREVIOUS, current)
        if current != target:
            _point_champion(client, name, target)
        _refresh_card(client, name, target)  # the card shows the promotion (and a reason given)
    return Move(target, current)


def _refresh_card(client, name: str, version: str) -> None:
    from .cards import refresh_card

    refresh_card(client, name, version)


@dataclass(frozen=True)
class Card:
    version: str
    markdown: str
    location: str  # runs:/<run id>/model_card/version-<n>.md


def version_card(settings: Settings, version: str | None = None) -> Card:
    """The model card of `version` (default: the challenger) with the verdicts its tags hold now."""
    from .cards import CARD_TAG, current_card

    client = _open(settings)
    name = settings.mlflow.registered_model
    with store_errors(settings.mlflow.tracking_uri):
        target = version or _alias(client, name, CHALLENGER)
        if target is None:
            raise RegistryError(f"no '{CHALLENGER}' alias on {name}: run `register` first")
        tags = _version(client, name, target).tags or {}
        markdown = current_card(client, name, target)
    if markdown is None:
        raise RegistryError(
            f"{name} version {target} has no model card: register the model again to write one"
        )
    return Card(target, markdown, tags[CARD_TAG])


def who_acts() -> str:
    """Who runs the command: the workflow's actor in CI, else the login name."""
    import getpass

    try:
        return os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def rollback(settings: Settings, version: str | None = None) -> Move:
    """Move `champion` back to the version it replaced (or to a given version)."""
    client = _open(settings)
    uri, name = settings.mlflow.tracking_uri, settings.mlflow.registered_model
    with store_errors(uri):
        current = _alias(client, name, CHAMPION)
        if current is None:
            raise RegistryError(f"no '{CHAMPION}' alias on {name}: nothing to roll back")
        target = version or previous_champion(_version(client, name, current).tags or {})
        _version(client, name, target)
        check_version_files(client, uri, name, target)
        if target != current:
            _point_champion(client, name, target)
    return Move(target, current)


def champion_history(settings: Settings) -> list[str]:
    """Versions that held `champion`, oldest first (promotions and rollbacks)."""
    client = _open(settings)
    name = settings.mlflow.registered_model
    with store_errors(settings.mlflow.tracking_uri):
        if not exists(client.get_registered_model, name):
            return []
        model = client.get_registered_model(name)
    return (model.tags or {}).get(HISTORY, "").split()


def status(settings: Settings) -> list[VersionRow]:
    """Every version of the registered model, newest first, with its aliases and tags."""
    client = _open(settings)
    name = settings.mlflow.registered_model
    with store_errors(settings.mlflow.tracking_uri):
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
