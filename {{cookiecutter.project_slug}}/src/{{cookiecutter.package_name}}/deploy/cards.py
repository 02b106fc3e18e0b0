"""The model card's facts, gathered from the project's files and kept beside the version in MLflow.

`register` gathers them (params, metrics and their intervals, slices and fairness, the gate's
record, the words of params.yaml `card:`) and checks the card they make before anything is
registered; then it logs both to the version's run, `model_card/version-<n>.json` (the facts)
and `model_card/version-<n>.md` (the card), and tags the version `model_card` with where the
card is. The canary and `promote` render it again from the same facts and the version's new
tags, so the card shows their verdicts; `card --version N` prints it (model_card.py renders).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..config.settings import Settings
from ..paths import Paths
from ..tracking import RegistryError
from .model_card import CardError, check_card, render_card

CARD_TAG = "model_card"  # version tag: runs:/<run id>/model_card/version-<n>.md
FACTS_FILE = "model_card/version-{version}.json"
CARD_FILE = "model_card/version-{version}.md"
PARAM_SECTIONS = ("data", "split", "train")  # what made the model; the gate's policy has its own lines
DIGITS = 6


def gather_facts(settings: Settings, paths: Paths, metrics: dict, commit: str) -> dict:
    """What the card says that the version's tags do not, read from this project's files."""
    model = dict(metrics.get("model") or {})
    facts = {
        "intended_use": settings.card.intended_use,
        "limitations": list(settings.card.limitations),
        "params": flat_params(settings),
        "metrics": model,
        "baseline": dict(metrics.get("baseline") or {}),
        "test_rows": metrics.get("test_rows"),
        "slices": _read_json(paths.slices) or {},
        "gate": gate_facts(paths, commit),
    }
    return facts | interval_facts(settings, paths, list(model))


def flat_params(settings: Settings) -> dict[str, object]:
    """The params that made the model, by dotted key (lists as text)."""
    sections = [*PARAM_SECTIONS, *(["tune"] if settings.train.use_tuned else [])]
    flat: dict[str, object] = {}
    for section in sections:
        flat |= _flatten(section, getattr(settings, section).model_dump(mode="json"))
    return flat


def _flatten(prefix: str, value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(f"{prefix}.{key}", item).items()}
    return {prefix: json.dumps(value) if isinstance(value, list) else value}


def gate_facts(paths: Paths, commit: str) -> dict:
    """The gate's record on `commit`, as the version's `gate` tag reads it; else why there is none."""
    record = _read_json(paths.gate)
    if not isinstance(record, dict) or "verdict" not in record:
        return {"missing": f"no readable {_shown(paths.gate, paths)}: `make report` did not run here"}
    if record.get("commit") != commit:
        return {"missing": f"{_shown(paths.gate, paths)} judged another commit: run `make report`"}
    keep = ("verdict", "error", "base", "findings", "policy")
    return {key: record.get(key) for key in keep}


def interval_facts(settings: Settings, paths: Paths, names: list[str]) -> dict:
    """95% intervals of the test metrics: the test rows' predictions resampled (gate/noise.py)."""
    from ..gate.noise import metric_intervals
    from ..predictions import PredictionsError, parse_rows

    where = _shown(paths.predictions, paths)
    try:
        rows = parse_rows(paths.predictions.read_bytes(), where)
    except FileNotFoundError:
        return {"intervals": {}, "interval_note": f"{where} not found"}
    except PredictionsError as err:
        return {"intervals": {}, "interval_note": str(err)}
    rounds, seed = settings.gate.bootstrap_rounds, settings.gate.bootstrap_seed
    found = metric_intervals(rows, names, rounds, seed)
    intervals = {name: [round(i.low, DIGITS), round(i.high, DIGITS)] for name, i in found.items()}
    note = f"bootstrap, {rounds} resamples of the {len(rows)} test rows ({where})"
    return {"intervals": intervals, "interval_note": note}


def checked_card(name: str, version: str, facts: dict, tags: dict[str, str]) -> str:
    """The card, or RegistryError (one line) when it lacks what every card must say."""
    markdown = render_card(name, version, facts, tags)
    try:
        check_card(markdown)
    except CardError as err:
        raise RegistryError(f"version {version}: {err}: nothing written") from None
    return markdown


def attach_card(client, name: str, version: str, run_id: str | None, facts: dict) -> str:
    """Log the facts and the card to the version's run; tag the version with the card's URI."""
    if not run_id:
        raise RegistryError(f"{name} version {version} has no run to keep its model card in")
    tags = dict(client.get_model_version(name, version).tags or {})
    markdown = checked_card(name, version, facts, tags)
    client.log_dict(run_id, facts, FACTS_FILE.format(version=version))
    client.log_text(run_id, markdown, CARD_FILE.format(version=version))
    location = f"runs:/{run_id}/{CARD_FILE.format(version=version)}"
    client.set_model_version_tag(name, version, CARD_TAG, location)
    return location


def current_card(client, name: str, version: str) -> str | None:
    """The version's card from its kept facts and its tags as they are now; None: it has none."""
    found = client.get_model_version(name, version)
    tags = dict(found.tags or {})
    if CARD_TAG not in tags:
        return None
    facts = _load_facts(client, found.run_id, version)
    return checked_card(name, version, facts, tags)


def refresh_card(client, name: str, version: str) -> None:
    """Render the card again (new verdicts on the version's tags) and log it over the old one."""
    markdown = current_card(client, name, version)
    if markdown is not None:
        run_id = client.get_model_version(name, version).run_id
        client.log_text(run_id, markdown, CARD_FILE.format(version=version))


def _load_facts(client, run_id: str | None, version: str) -> dict:
    from mlflow.exceptions import MlflowException

    path = FACTS_FILE.format(version=version)
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, path, folder)
            facts = json.loads(Path(local).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):
            raise RegistryError(
                f"version {version}: its model card's facts ({path}) cannot be read"
            ) from None
    if not isinstance(facts, dict):
        raise RegistryError(f"version {version}: its model card's facts ({path}) are not a mapping")
    return facts


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _shown(path: Path, paths: Paths) -> str:
    return str(path.relative_to(paths.root)) if path.is_relative_to(paths.root) else str(path)
