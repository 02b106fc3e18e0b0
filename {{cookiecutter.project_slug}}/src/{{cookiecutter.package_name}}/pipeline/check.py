"""The `check` stage: params.yaml and the inputs, against what every later stage needs.

DVC deletes a stage's outputs before it runs the stage, so a stage that fails on a bad
param or bad data has already lost the last good model, metrics or plots. `check` runs
first and finds those problems while nothing has been deleted: all of params.yaml,
strictly; schema.yaml; and the source data as `ingest` would read it (the DVC-tracked CSV,
or the installed demo data), checked against the contract and the settings, and split
in memory the way `split` would split it. It reports every problem, one line each. It also
writes the runtime dependencies as locked, which `train` depends on (pipeline/runtime.py).

Each rule is a pure function (settings and a frame in, problem lines out); `run_checks`
does the reading.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

from ..config.reading import ConfigError, read_params
from ..config.settings import Settings, parse_settings, settings_problems
from ..data import DataError, as_stored, listed
from ..paths import Paths
from .ingest import ingest
from .runtime import runtime_requirements
from .split import random_split_problem, split_by_time
from .stage import StageFailed

PASSED = {"passed": True}  # always the same content, so a re-run never re-runs the stages after it
MAX_CLASSES_LISTED = 10
MIN_ROWS_FOR_ID_CHECK = 20  # fewer rows, all labels distinct: too few to tell an id from classes


def run_checks(paths: Paths) -> list[str]:
    """Every problem found, one line each; [] when params and inputs fit every stage."""
    try:
        raw = read_params(paths.params)
    except ConfigError as err:
        return [str(err)]
    problems = settings_problems(raw, source=paths.params.name)
    if problems:
        return problems  # the data checks need valid settings
    settings = parse_settings(raw, source=paths.params.name)
    problems = contract_problems(paths.contract, settings)
    contract_usable = not problems
    try:
        frame = as_stored(ingest(settings.data, paths.root))
    except DataError as err:
        return [*problems, str(err)]
    problems += data_problems(frame, settings)
    if contract_usable:
        problems += contract_failures(paths.contract, frame)
    return problems


def contract_problems(path: Path, settings: Settings) -> list[str]:
    """schema.yaml must be valid and describe a non-nullable target (what `validate` requires)."""
    from ..schema import ContractError, check_contract, load_contract

    try:
        check_contract(load_contract(path), settings.data.target)
    except ContractError as err:
        return [str(err)]
    return []


def contract_failures(path: Path, frame: pd.DataFrame) -> list[str]:
    """The rows that break the contract, one line per column and check (as `validate` would find)."""
    from ..schema import load_contract, validate_frame

    return [failure_line(path.name, failure) for failure in validate_frame(frame, load_contract(path))]


def failure_line(source: str, failure) -> str:
    """One contract failure as an error line: a missing or unlisted column, or failing rows."""
    if failure.check == "column_in_dataframe":
        return f"{source}: column {failure.column!r} is not in the data"
    if failure.check == "column_in_schema":
        return f"{source}: the data has a column {failure.column!r} that the contract does not list"
    where = f"{source}: column {failure.column!r}"
    return f"{where} fails {failure.check!r} in {failure.rows} row(s), e.g. {', '.join(failure.examples)}"


def data_problems(frame: pd.DataFrame, settings: Settings) -> list[str]:
    """What the settings name must be in the data, and the data must fit the task and the split."""
    data = settings.data
    problems = [
        f"{key}: {column!r} is not a column of the data; columns: {listed(frame.columns)}"
        for key, column in (
            ("data.target", data.target),
            *(("data.sensitive_features", feature) for feature in data.sensitive_features),
            ("data.time_column", data.time_column),
        )
        if column is not None and column not in frame.columns
    ]
    if data.target not in frame.columns:
        return problems
    problems += target_problems(frame[data.target], settings)
    problems += input_problems(list(frame.columns), settings)
    if not problems:
        problems += split_problems(frame, settings)
    return problems


def target_problems(target: pd.Series, settings: Settings) -> list[str]:
    name = settings.data.target
    if settings.task == "regression":
        if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
            return [f"data.target {name!r} is not numeric ({target.dtype}): regression needs numbers"]
        return []
    labels = target.dropna()
    classes = sorted({str(value) for value in labels})
    if len(classes) < 2:
        return [
            f"data.target {name!r} has {len(classes)} class(es) ({listed(classes, MAX_CLASSES_LISTED)}): "
            "classification needs two or more"
        ]
    if len(labels) >= MIN_ROWS_FOR_ID_CHECK and len(classes) == len(labels):
        return [
            f"data.target {name!r} has a different value in each of its {len(labels)} rows: "
            "an id or a measurement, not a class label (task: regression predicts numbers)"
        ]
    wanted = settings.data.positive_class
    if wanted is not None and len(classes) > 2:
        return [
            f"data.positive_class {wanted!r} is for two classes: {name!r} has {len(classes)} "
            f"({listed(classes, MAX_CLASSES_LISTED)}); set it to null"
        ]
    if wanted is not None and wanted not in classes:
        return [f"data.positive_class {wanted!r} is not a class of {name!r}; classes: {', '.join(classes)}"]
    return []


def input_problems(columns: list[str], settings: Settings) -> list[str]:
    # The rule of features.model_inputs, restated: importing features (scikit-learn) costs seconds.
    excluded = {settings.data.target, *settings.data.banned_features}
    if not [column for column in columns if column not in excluded]:
        return [
            "the model would have no inputs: every column is the target or a sensitive feature "
            "(data.use_sensitive_features is false)"
        ]
    return []


def split_problems(frame: pd.DataFrame, settings: Settings) -> list[str]:
    """The split `split` would make must be possible, and (classification) hold both classes each side."""
    target, time_column = settings.data.target, settings.data.time_column
    classification = settings.task == "classification"
    if not time_column:
        labels = frame[target] if classification else None
        problem = random_split_problem(labels, len(frame), settings.split.test_size)
        return [f"split: {problem}"] if problem else []
    try:
        train, test = split_by_time(frame, time_column, settings.split.test_size)
    except DataError as err:
        return [str(err)]
    if not classification:
        return []
    classes = frame[target].nunique()
    return [
        f"split: the {side} set (rows by data.time_column {time_column!r}) has "
        f"{part[target].nunique()} of the {classes} classes: {need} needs them all"
        for side, part, need in (("train", train, "training"), ("test", test, "evaluate"))
        if part[target].nunique() < classes
    ]


def write_passed(path: Path) -> None:
    """Write the mark; left as it is when it is already there (same bytes, same file)."""
    write_unless_same(path, json.dumps(PASSED) + "\n")


def write_unless_same(path: Path, text: str) -> None:
    """Write `text` to `path`, unless the file holds it already (then it is not touched)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)  # a new file, never a rewrite in place of one a snapshot may share


def run(paths: Paths) -> int:
    """Every problem in params.yaml and the inputs, one `error:` line each; 1 if there is one."""
    problems = run_checks(paths)
    try:
        requirements = runtime_requirements(paths.root)
    except StageFailed as err:
        problems.append(str(err))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    write_passed(paths.check)
    write_unless_same(paths.runtime_requirements, requirements)
    print("check: params.yaml, schema.yaml and the input data fit every stage; uv.lock exported")
    return 0


def main() -> int:
    # No settings are loaded first: check reads params.yaml itself, to report every problem at once.
    return run(Paths(Path.cwd().resolve()))
