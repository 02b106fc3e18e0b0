"""What the server serves: a model source (a local model directory or a registry URI), loaded.

`models:/<name>@<alias>` (or `models:/<name>/<version>`) is followed: a reload serves the
version the alias points to now.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import MODEL_FILE
from ..config.settings import Settings
from ..paths import Paths
from ..provenance import identity
from ..schema import Contract
from ..tracking import alias_uri, parse_registered_uri, version_uri
from .errors import ServeError
from .fast_path import compile_fast_path, fast_path_agrees, slow_predict
from .requests import contract_rows, request_model

logger = logging.getLogger(__name__)


CHECK_ROWS = 64  # rows drawn from the contract to compare the fast path with the pipeline


@dataclass(frozen=True)
class Served:
    """A loaded model: the pipeline, its compiled fast path, and what identifies it."""

    pipeline: Any
    version: str
    info: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""  # changes when the source holds another model
    fast: Callable[[list[dict]], tuple[list, list | None]] | None = None
    inputs: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None  # None for a regressor

    @property
    def name(self) -> str:
        """The registered model's name, or the folder a local model was loaded from."""
        return self.info.get("registered_model") or self.info.get("source", "")

    def predict(self, rows: list[dict]) -> tuple[list, list | None]:
        """Predictions (JSON-ready) and, for a classifier, class probabilities per row."""
        if self.fast is not None:
            return self.fast(rows)
        return slow_predict(self.pipeline, list(self.inputs), rows)


def serve_model(
    pipeline: Any, contract: Contract, version: str, info: dict | None = None, fingerprint: str = ""
) -> Served:
    """Wrap a fitted pipeline for serving: compile the fast path and check it against the pipeline."""
    from sklearn.base import is_classifier

    inputs = tuple(str(name) for name in pipeline.feature_names_in_)
    request_model(contract, list(inputs))  # the contract must describe every input
    fast = compile_fast_path(pipeline)
    if fast is not None and not fast_path_agrees(fast, pipeline, contract_rows(contract, inputs, CHECK_ROWS)):
        logger.warning("the compiled fast path disagrees with the pipeline: serving with the pipeline")
        fast = None
    classes = tuple(str(label) for label in pipeline.classes_) if is_classifier(pipeline) else None
    info = {**(info or {}), "fast_path": "yes" if fast else "no"}
    return Served(pipeline, version, info, fingerprint, fast, inputs, classes)


class LocalSource:
    """An MLflow model directory written by the train stage."""

    def __init__(self, path: Path, project: Path | None = None) -> None:
        self.path = path
        self.project = project  # the project this model belongs to: its git commit and data hash

    def __str__(self) -> str:
        return str(self.path)

    def fingerprint(self) -> str:
        # Both files: a poll between the model's write and its metadata's sees a change again later.
        try:
            stat = (self.path / MODEL_FILE).stat()
        except FileNotFoundError:
            raise ServeError(f"{self.path}: no {MODEL_FILE} here (run the train stage first)") from None
        try:
            meta = (self.path / "MLmodel").stat()
        except FileNotFoundError:
            return f"{stat.st_mtime_ns}:{stat.st_size}"
        return f"{stat.st_mtime_ns}:{stat.st_size}:{meta.st_mtime_ns}:{meta.st_size}"

    def load(self, contract: Contract) -> Served:
        import yaml

        from ..artifacts import load_model

        fingerprint = self.fingerprint()
        metadata = (yaml.safe_load((self.path / "MLmodel").read_text()) or {}).get("metadata") or {}
        run_id = metadata.get("mlflow_run_id")
        if run_id:
            version = f"run-{run_id}"
        else:
            version = "sha-" + hashlib.sha256((self.path / MODEL_FILE).read_bytes()).hexdigest()[:12]
        info = {"source": str(self.path)}
        if self.project is not None:
            info |= identity(self.project, Paths(self.project).lock)
        info |= {key: str(value) for key, value in metadata.items()}
        return serve_model(load_model(self.path), contract, version, info, fingerprint)


class RegistrySource:
    """A registered model version in MLflow, by alias (followed when it moves) or by number."""

    def __init__(self, name: str, tracking_uri: str, alias: str | None = None, version: str | None = None):
        self.name, self.tracking_uri, self.alias, self.version = name, tracking_uri, alias, version

    def __str__(self) -> str:
        return alias_uri(self.name, self.alias) if self.alias else version_uri(self.name, str(self.version))

    def _client(self):
        from ..tracking import open_store

        return open_store(self.tracking_uri, self.name)

    def _resolve(self):
        from mlflow.exceptions import MlflowException

        from ..tracking import ABSENT, store_errors

        client = self._client()
        with store_errors(self.tracking_uri):  # a broken store: one line naming it
            try:
                if self.alias:
                    return client.get_model_version_by_alias(self.name, self.alias)
                return client.get_model_version(self.name, str(self.version))
            except MlflowException as err:
                if err.error_code not in ABSENT:
                    raise
                where = f"not in the registry at {self.tracking_uri}"
                raise ServeError(f"{self}: {where} ({err.error_code})") from err

    def fingerprint(self) -> str:
        return str(self._resolve().version)

    def load(self, contract: Contract) -> Served:
        from ..artifacts import load_model
        from ..tracking import download_version

        found = self._resolve()
        target = tempfile.mkdtemp(prefix="serve-model-")
        try:
            client, version = self._client(), str(found.version)
            local = download_version(client, self.tracking_uri, self.name, version, Path(target))
            pipeline = load_model(local)  # read whole into memory: the folder can go
        finally:
            shutil.rmtree(target, ignore_errors=True)
        tags = {key: str(value) for key, value in (found.tags or {}).items()}
        info = {
            "source": str(self),
            "registered_model": self.name,
            "registry_version": str(found.version),
            "mlflow_run_id": str(found.run_id or ""),
            **tags,
        }
        if self.alias:
            info["alias"] = self.alias
        return serve_model(pipeline, contract, str(found.version), info, str(found.version))


ModelSource = LocalSource | RegistrySource


def parse_source(text: str, settings: Settings, paths: Paths) -> ModelSource:
    """`models:/name@alias`, `models:/name/3`, or a model directory."""
    from ..tracking import absolute_uri

    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    if text.startswith("models:/"):
        parsed = parse_registered_uri(text)
        if parsed is None:
            raise ServeError(f"{text}: expected models:/<name>@<alias> or models:/<name>/<version>")
        name, alias, version = parsed
        return RegistrySource(name, uri, alias=alias, version=version)
    path = Path(text)
    return LocalSource(path, paths.root if path.resolve() == paths.model.resolve() else None)


def default_source(settings: Settings, paths: Paths) -> ModelSource:
    """`models:/<registered_model>@<serving.alias>` when the registry has it, else models/model."""
    from ..tracking import absolute_uri, local_store_present

    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    local = LocalSource(paths.model, paths.root)
    if not local_store_present(uri):
        return local  # no tracking store here (a container, a fresh clone): do not create one
    registry = RegistrySource(settings.mlflow.registered_model, uri, alias=settings.serving.alias)
    try:
        registry.fingerprint()
    except ServeError:
        return local
    return registry
