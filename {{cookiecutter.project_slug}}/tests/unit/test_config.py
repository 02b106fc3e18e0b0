"""params.yaml -> settings: the real file loads, and every kind of mistake fails naming its key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.config import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    ConfigError,
    Threshold,
    load_settings,
    metric_names,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def params(root: Path) -> dict:
    """The project's params.yaml as plain data, for tests to break one key at a time."""
    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))


def write_params(directory: Path, params: dict) -> Path:
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def parent_of(params: dict, dotted: str) -> tuple[dict, str]:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    return node, leaf


def config_error(tmp_path: Path, params: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_params(tmp_path, params))
    return str(caught.value)


def test_params_yaml_loads_into_settings(root: Path, params: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings(root / "params.yaml")
    assert settings.task == params["task"]
    assert settings.data.target == params["data"]["target"]
    assert settings.split.test_size == params["split"]["test_size"]
    assert settings.train.model.kind == params["train"]["model"]["kind"]
    assert settings.mlflow.tracking_uri == params["mlflow"]["tracking_uri"]
    assert set(settings.evaluate.thresholds) == set(params["evaluate"].get("thresholds") or {})


def test_target_is_never_a_sensitive_feature(settings) -> None:
    assert settings.data.target not in settings.data.sensitive_features


def model_keys(params: dict) -> list[str]:
    return [f"train.model.{key}" for key in params["train"]["model"] if key != "kind"]


@pytest.mark.parametrize(
    "dotted",
    [
        "task",
        "data.target",
        "data.use_sensitive_features",
        "split.test_size",
        "train.seed",
        "evaluate.permutation_repeats",
        "mlflow.experiment",
        "train.model.*",  # the first parameter of whichever model params.yaml chose
    ],
)
def test_misspelt_key_fails_naming_the_dotted_key(tmp_path: Path, params: dict, dotted: str) -> None:
    if dotted == "train.model.*":
        dotted = model_keys(params)[0]
    node, leaf = parent_of(params, dotted)
    typo = leaf[:-1]  # e.g. test_size -> test_siz
    node[typo] = node.pop(leaf)
    misspelt = dotted[: -len(leaf)] + typo
    message = config_error(tmp_path, params)
    # A required key is reported missing; a key with a default is reported as unknown.
    assert f"{dotted}:" in message or f"{misspelt}:" in message, message
    assert message.startswith("params.yaml: "), message


@pytest.mark.parametrize(
    ("dotted", "bad"),
    [
        ("split.seed", "forty-two"),
        ("split.test_size", 1.5),
        ("data.use_sensitive_features", "sometimes"),
        ("data.sensitive_features", "not-a-list"),
        ("evaluate.permutation_repeats", 0),
        ("task", "clustering"),
        ("train.model.*", "lots"),
    ],
)
def test_wrong_type_or_value_fails_naming_the_key(tmp_path: Path, params: dict, dotted: str, bad) -> None:
    if dotted == "train.model.*":
        dotted = model_keys(params)[0]
    node, leaf = parent_of(params, dotted)
    node[leaf] = bad
    message = config_error(tmp_path, params)
    assert f"params.yaml: {dotted}:" in message, message


def test_unknown_model_kind_fails(tmp_path: Path, params: dict) -> None:
    params["train"]["model"]["kind"] = "deep_learning"
    assert "train.model" in config_error(tmp_path, params)


def test_unknown_threshold_metric_fails_naming_it(tmp_path: Path, params: dict, settings) -> None:
    params["evaluate"]["thresholds"] = {"acuracy": {"min": 0.5}}
    message = config_error(tmp_path, params)
    assert "evaluate.thresholds" in message and "'acuracy'" in message, message


def test_metric_of_the_other_task_is_not_a_valid_threshold(tmp_path: Path, params: dict, settings) -> None:
    other = REGRESSION_METRICS if settings.task == "classification" else CLASSIFICATION_METRICS
    name = next(metric for metric in other if metric not in metric_names(settings.task))
    params["evaluate"]["thresholds"] = {name: {"min": 0.0}}
    assert f"'{name}'" in config_error(tmp_path, params)


def test_threshold_needs_a_bound(tmp_path: Path, params: dict, settings) -> None:
    name = metric_names(settings.task)[0]
    params["evaluate"]["thresholds"] = {name: {}}
    message = config_error(tmp_path, params)
    assert f"evaluate.thresholds.{name}" in message and "'min' or 'max'" in message, message


@pytest.mark.parametrize(
    ("bounds", "value", "holds"),
    [
        ({"min": 0.5}, 0.5, True),
        ({"min": 0.5}, 0.49, False),
        ({"max": 1.0}, 1.01, False),
        ({"max": 1.0}, -3.0, True),
        ({"min": 0.0, "max": 1.0}, 0.3, True),
        ({"min": 0.0, "max": 1.0}, 1.5, False),
    ],
)
def test_threshold_holds(bounds: dict, value: float, holds: bool) -> None:
    assert Threshold(**bounds).holds(value) is holds


def test_csv_source_needs_a_path(tmp_path: Path, params: dict) -> None:
    params["data"]["source"] = "csv"
    params["data"].pop("csv_path", None)
    assert "data.csv_path" in config_error(tmp_path, params)


def test_mlflow_tracking_uri_from_the_environment_overrides_the_file(
    tmp_path: Path, params: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_params(tmp_path, params)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_settings(path).mlflow.tracking_uri == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert load_settings(path).mlflow.tracking_uri == params["mlflow"]["tracking_uri"]


def test_missing_params_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "params.yaml")


def test_invalid_yaml_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("task: [classification\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_sensitive_features_are_banned_unless_allowed(settings) -> None:
    allowed = settings.data.model_copy(update={"use_sensitive_features": True})
    banned = settings.data.model_copy(
        update={"use_sensitive_features": False, "sensitive_features": ["a", "b"]}
    )
    assert settings.model_copy(update={"data": allowed}).banned_features == []
    assert settings.model_copy(update={"data": banned}).banned_features == ["a", "b"]


def test_settings_are_immutable(settings) -> None:
    changed = copy.deepcopy(settings)
    with pytest.raises(ValidationError, match="frozen"):
        changed.task = "regression"
