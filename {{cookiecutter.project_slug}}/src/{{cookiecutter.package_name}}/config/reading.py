"""The one reader of `params.yaml`: YAML as DVC writes it, strict types, one-line errors.

Validation is strict: YAML gives numbers and booleans their types, so a quoted `"1"` is a
mistake, not a value to coerce (an integer is still a valid float: `regularization: 1`). The
file is read with YAML 1.2's rules, as DVC writes it: `true` and `false` are booleans, `yes`
and `no` are words. Errors name the file and the dotted key.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

Task = Literal["classification", "regression"]
# The environment variable that overrides mlflow.tracking_uri, as MLflow's own tools read it.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


class ConfigError(ValueError):
    """params.yaml is missing, unreadable or invalid."""


class Strict(BaseModel):
    # extra="forbid" turns a misspelt key into an error instead of a silent default;
    # strict=True refuses "0.5" for a number and 'yes' for a boolean instead of converting them.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Sections(BaseModel):
    """Some sections of the file, each strict; the others are left to whoever reads them."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    @classmethod
    def parse(cls, raw: object, source: str = "params.yaml") -> Self:
        """Validate already-parsed params; errors name the dotted key (the first problem only)."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(format_error(err.errors()[0], source)) from None

    @classmethod
    def problems(cls, raw: object, source: str = "params.yaml") -> list[str]:
        """Every problem in already-parsed params, one line each; [] when they are valid."""
        try:
            cls.model_validate(raw)
        except ValidationError as err:
            return list(dict.fromkeys(format_error(error, source) for error in err.errors()))
        return []

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read params.yaml; MLFLOW_TRACKING_URI in the environment overrides the file."""
        return cls.parse(with_environment(read_params(path)), source=path.name)


def no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed twice")
    return values


def with_environment(raw: object) -> object:
    override = os.environ.get(TRACKING_URI_ENV)
    if not override or not isinstance(raw, dict) or not isinstance(raw.get("mlflow"), dict):
        return raw
    return {**raw, "mlflow": {**raw["mlflow"], "tracking_uri": override}}


def format_error(error: Mapping[str, Any], source: str) -> str:
    """One pydantic error as `source: dotted.key: message`."""
    loc = list(error["loc"])
    # The tag follows the union's own key (train.model.linear...); elsewhere (tune.search.linear) it is a key.
    key = ".".join(
        str(part)
        for at, part in enumerate(loc)
        if not (_is_union_tag(part) and at and loc[at - 1] == "model")
    )
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden", "value_error") and _is_scalar(value):
        message += f", got {value!r}"  # the repr shows a quoted "0.5" as the string it is
    if not key or message.startswith(f"{key}."):  # our validators name the exact key themselves
        return f"{source}: {message}"
    return f"{source}: {key}: {message}"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_union_tag(part: object) -> bool:
    # pydantic puts the discriminator value ("linear") into error locations; it is not a key. The
    # kinds of config/train.py, written here so that every stage need not run that module.
    return part in ("linear", "random_forest", "gradient_boosting")


# YAML 1.2's booleans: only true and false. DVC (`dvc exp run -S`) rewrites params.yaml with
# YAML 1.2 rules, which leave `positive_class: Yes` unquoted; YAML 1.1 would read it as True.
BOOL_TAG = "tag:yaml.org,2002:bool"
YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _ParamsLoader(yaml.SafeLoader):
    """params.yaml as DVC writes it (YAML 1.2 booleans), refusing a key given twice in one mapping
    (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges may override keys on purpose
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@functools.cache
def params_loader() -> type[_ParamsLoader]:
    """The loader with YAML 1.1's booleans (yes, no, on, off, ...) replaced by YAML 1.2's."""

    class Yaml12ParamsLoader(_ParamsLoader):
        pass

    Yaml12ParamsLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12ParamsLoader.add_implicit_resolver(BOOL_TAG, YAML12_BOOL, list("tTfF"))
    return Yaml12ParamsLoader


def parse_params(text: str, source: str) -> object:
    """params.yaml's text as plain data; broken YAML is a ConfigError naming the line."""
    try:
        return yaml.load(text, Loader=params_loader())  # a SafeLoader: plain data only
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or err.__class__.__name__
        raise ConfigError(f"{source}: not valid YAML{where} ({problem})") from None


def read_params(path: Path) -> object:
    """params.yaml as plain data; a missing file or broken YAML is a ConfigError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run commands from the project root)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err.__class__.__name__})") from None
    return parse_params(text, str(path))
