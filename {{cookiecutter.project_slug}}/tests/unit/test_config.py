"""params.yaml -> settings: the real file loads, and every kind of mistake fails naming its key."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.config.evaluate import Threshold
from {{ cookiecutter.package_name }}.config.reading import ConfigError
from {{ cookiecutter.package_name }}.config.settings import load_settings, settings_problems
from {{ cookiecutter.package_name }}.config.train import GradientBoostingModel, LinearModel, RandomForestModel
from {{ cookiecutter.package_name }}.metrics import BETTER, metric_names

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
        ("card.intended_use", 5),
        ("card.limitations", "one line, not a list"),
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
    other = metric_names("regression" if settings.task == "classification" else "classification")
    name = next(metric for metric in other if metric not in metric_names(settings.task))
    params["evaluate"]["thresholds"] = {name: {"min": 0.0}}
    assert f"'{name}'" in config_error(tmp_path, params)


def test_a_gated_metric_with_the_wrong_direction_is_refused(tmp_path: Path, params: dict, settings) -> None:
    name, gated = next(iter(params["gate"]["metrics"].items()))
    flipped = "lower" if BETTER[name] == "higher" else "higher"
    params["gate"]["metrics"][name] = {**gated, "direction": flipped}  # as older params named it
    message = config_error(tmp_path, params)
    assert f"gate.metrics.{name}.direction: {flipped!r}" in message, message


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
    assert allowed.banned_features == []
    assert banned.banned_features == ["a", "b"]


def test_settings_are_immutable(settings) -> None:
    changed = copy.deepcopy(settings)
    with pytest.raises(ValidationError, match="frozen"):
        changed.task = "regression"


@pytest.mark.parametrize(
    ("dotted", "quoted"),
    [
        ("data.use_sensitive_features", "yes"),
        ("data.use_sensitive_features", "false"),
        ("split.test_size", "0.25"),
        ("split.seed", "42"),
        ("train.seed", "42"),
        ("evaluate.permutation_repeats", "5"),
        ("serving.max_batch_rows", "1000"),
        ("canary.min_agreement", "0.85"),
    ],
)
def test_a_quoted_number_or_boolean_is_refused_not_converted(
    tmp_path: Path, params: dict, dotted: str, quoted: str
) -> None:
    node, leaf = parent_of(params, dotted)
    node[leaf] = quoted
    message = config_error(tmp_path, params)
    assert message.startswith(f"params.yaml: {dotted}: "), message
    assert repr(quoted) in message, message  # shown as the text it is


@pytest.mark.parametrize("dotted", ["split.seed", "evaluate.permutation_repeats"])
def test_a_boolean_is_not_an_integer(tmp_path: Path, params: dict, dotted: str) -> None:
    node, leaf = parent_of(params, dotted)
    node[leaf] = True
    assert f"params.yaml: {dotted}: " in config_error(tmp_path, params)


def test_an_integer_is_a_valid_float(tmp_path: Path, params: dict) -> None:
    params["canary"]["min_agreement"] = 1
    params["serving"]["reload_seconds"] = 30
    model = params["train"]["model"]
    floats = {"linear": "regularization", "gradient_boosting": "learning_rate"}
    if model["kind"] in floats:
        model[floats[model["kind"]]] = 1
    settings = load_settings(write_params(tmp_path, params))
    assert settings.canary.min_agreement == 1.0 and isinstance(settings.canary.min_agreement, float)


@pytest.mark.parametrize("model", [LinearModel, RandomForestModel, GradientBoostingModel])
def test_an_error_in_any_model_kind_names_the_key_without_the_kind(
    tmp_path: Path, params: dict, model: type
) -> None:
    kind = model.model_fields["kind"].annotation.__args__[0]
    required = {"linear": {"regularization": 1.0}, "random_forest": {"n_estimators": 10}}
    params["train"]["model"] = {"kind": kind, **required.get(kind, {"max_iter": 10, "learning_rate": 0.1})}
    params["train"]["model"]["wrong_key"] = 1
    assert config_error(tmp_path, params).startswith("params.yaml: train.model.wrong_key: ")


def test_threshold_with_min_above_max_is_refused_naming_it(tmp_path: Path, params: dict, settings) -> None:
    name = metric_names(settings.task)[0]
    params["evaluate"]["thresholds"] = {name: {"min": 0.9, "max": 0.5}}
    message = config_error(tmp_path, params)
    expected = f"params.yaml: evaluate.thresholds.{name}: min (0.9) is above max (0.5)"
    assert message.startswith(expected), message


def test_sensitive_feature_listed_twice_is_refused(tmp_path: Path, params: dict) -> None:
    params["data"]["sensitive_features"] = ["a", "b", "a"]
    assert config_error(tmp_path, params) == "params.yaml: data.sensitive_features: 'a' is listed twice"


def test_beat_baseline_metric_listed_twice_is_refused(tmp_path: Path, params: dict) -> None:
    first = params["gate"]["beat_baseline"][0]
    params["gate"]["beat_baseline"] = [first, first]
    assert config_error(tmp_path, params) == f"params.yaml: gate.beat_baseline: {first!r} is listed twice"


@pytest.mark.parametrize("key", ["sensitive_features", "time_column"])
def test_the_target_cannot_be_a_sensitive_feature_or_the_time(tmp_path: Path, params: dict, key: str) -> None:
    target = params["data"]["target"]
    params["data"][key] = [target] if key == "sensitive_features" else target
    message = config_error(tmp_path, params)
    assert message == f"params.yaml: data.{key}: {target!r} is the target (data.target)", message


def test_positive_class_read_as_a_boolean_asks_for_quotes(tmp_path: Path, params: dict) -> None:
    params["data"]["positive_class"] = True  # `positive_class: yes` in YAML
    message = config_error(tmp_path, params)
    assert message.startswith("params.yaml: data.positive_class: ") and "quote" in message, message


def test_params_are_read_as_dvc_writes_them_yes_is_a_word(tmp_path: Path, params: dict) -> None:
    # `dvc exp run -S` rewrites params.yaml with YAML 1.2 rules: `Yes` unquoted is a string there.
    params["data"]["positive_class"] = "Yes"
    params["mlflow"]["experiment"] = "On"
    path = write_params(tmp_path, params)
    text = re.sub(
        r"(positive_class|experiment): ['\"](Yes|On)['\"]", r"\1: \2", path.read_text(encoding="utf-8")
    )
    assert "positive_class: Yes\n" in text and "experiment: On\n" in text
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path)
    assert (settings.data.positive_class, settings.mlflow.experiment) == ("Yes", "On")


def test_only_true_and_false_are_booleans(tmp_path: Path, params: dict) -> None:
    path = write_params(tmp_path, params)
    text = path.read_text(encoding="utf-8")
    assert "use_sensitive_features: false\n" in text
    path.write_text(
        text.replace("use_sensitive_features: false", "use_sensitive_features: no"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"^params.yaml: data.use_sensitive_features: "):
        load_settings(path)


def test_positive_class_given_as_a_number_is_its_label_text(tmp_path: Path, params: dict) -> None:
    params["data"]["positive_class"] = 1  # a 0/1 target
    assert load_settings(write_params(tmp_path, params)).data.positive_class == "1"


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path, root: Path) -> None:
    # PyYAML alone would keep the last `seed` silently.
    lines = (root / "params.yaml").read_text(encoding="utf-8").splitlines()
    lines.insert(lines.index("split:") + 1, "  seed: 1")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    second = lines.index("  seed: 42", lines.index("split:")) + 1
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}: not valid YAML at line {second} (key 'seed' is given twice)"


def test_settings_problems_lists_every_problem_one_line_each(params: dict) -> None:
    params["data"]["use_sensitive_features"] = "yes"
    params["split"]["test_size"] = 2
    params["train"]["seed"] = "42"
    params["mlflow"]["experment"] = "typo"
    problems = settings_problems(params)
    assert [problem.split(": ")[1] for problem in problems] == [
        "data.use_sensitive_features",
        "split.test_size",
        "train.seed",
        "mlflow.experment",
    ], problems
    assert all("\n" not in problem and problem.startswith("params.yaml: ") for problem in problems)


def test_valid_params_have_no_problems(root: Path) -> None:
    assert settings_problems(yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))) == []


def test_params_without_a_card_section_load_with_empty_words(tmp_path: Path, params: dict) -> None:
    params.pop("card", None)
    card = load_settings(write_params(tmp_path, params)).card
    assert (card.intended_use, card.limitations) == ("", [])
