"""A failing stage never costs the last good outputs (slow: one pipeline run, then one stage per case).

For each stage, a bad param, a bad input and a crash, in one reproduced copy of the
project (see test_pipeline.py):

- through `{{ cookiecutter.package_name }} repro -f -s <stage>`, which runs that stage alone, after
  DVC has deleted its outputs: every declared output and dvc.lock must come back byte for byte;
- through plain `dvc repro`, the bad params and inputs must stop at the `check` stage, before any
  stage's outputs are deleted.

Faults come from outside the package: params.yaml, schema.yaml and data files are edited, and a
`sitecustomize.py` on PYTHONPATH replaces one function in the stage's process (DVC runs stages
as subprocesses, which inherit the environment), so the package has no test hooks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pipeline_helpers import BIN, PACKAGE, environment, explain, ignore

from {{ cookiecutter.package_name }}.config.settings import Settings, load_settings
from {{ cookiecutter.package_name }}.pipeline.ingest import ingest
from {{ cookiecutter.package_name }}.repro import LOCK_FILE, declared_outputs, source_records
from {{ cookiecutter.package_name }}.schema import load_contract

pytestmark = pytest.mark.integration

RUNNER = f"{PACKAGE}.pipeline"  # dvc.yaml runs each stage as `python -m <RUNNER> <stage>`

PROTECTED = ("models", "metrics.json", "reports", "plots")  # what a failed run must never touch
STAGES = ("check", "ingest", "validate", "split", "tune", "train", "evaluate", "backtest")
# Files a fault may edit; put back after every case.
EDITABLE = (
    "params.yaml",
    "uv.lock",
    "schema.yaml",
    "data/external/source.csv",
    "data/external/source.csv.dvc",  # dvc repro records a changed source there
    "data/raw/data.csv",
    "data/prepared/train.csv",
    "data/prepared/test.csv",
)


@dataclass
class Project:
    root: Path
    settings: Settings
    source: pd.DataFrame  # the source data as ingest reads it
    outputs: list[str]  # every output dvc.yaml declares, and dvc.lock
    records: list[str]  # the .dvc files of `dvc add`ed inputs (`repro` keeps them too)
    baseline: dict[str, str]  # the fingerprint of outputs and records after the good run
    protected: dict[str, str]  # the fingerprint of every file under PROTECTED, then


@dataclass(frozen=True)
class Fault:
    stage: str
    kind: str  # param, input, crash; lock (uv.lock, which check exports)
    inject: Callable[[Project], dict]
    says: str  # a regular expression the failure's output matches: the fault fired where aimed
    through: tuple[str, ...] = ("repro", "dvc")  # `repro -f -s stage`, plain `dvc repro`
    skip: Callable[[Project], str | None] = lambda project: None


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Project:
    """A copy of the project after a successful `dvc repro`."""
    copy = tmp_path_factory.mktemp("failures") / root.name
    shutil.copytree(root, copy, ignore=not_copied(root), symlinks=True)
    if (root / ".dvc" / "cache").is_dir():
        # The project's DVC cache, linked (its files never change): a stage that already ran on
        # the same inputs is checked out from DVC's run cache instead of run again.
        shutil.copytree(root / ".dvc" / "cache", copy / ".dvc" / "cache", copy_function=link_or_copy)
    run(copy, "git", "init", "--quiet", expect=0)
    if not load_contract(copy / "schema.yaml").columns:
        run(copy, PACKAGE, "schema", "infer", expect=0)
    run(copy, "dvc", "repro", expect=0)
    settings = load_settings(copy / "params.yaml")
    pipeline = yaml.safe_load((copy / "dvc.yaml").read_text(encoding="utf-8"))
    records = [path for path in source_records(pipeline) if (copy / path).is_file()]
    outputs = [output.path for output in declared_outputs(pipeline)] + [LOCK_FILE]
    source = ingest(settings.data, copy)
    baseline = fingerprint(copy, [*outputs, *records])
    return Project(copy, settings, source, outputs, records, baseline, fingerprint(copy, PROTECTED))


@pytest.fixture
def fresh(project: Project):
    """The project as the good run left it, before and after each case."""
    saved = {name: (project.root / name).read_bytes() for name in EDITABLE if (project.root / name).exists()}
    kept = [*project.outputs, *project.records]
    assert fingerprint(project.root, kept) == project.baseline, "an earlier case left changes"
    yield project
    for name, content in saved.items():
        (project.root / name).write_bytes(content)
    shutil.rmtree(faults(project), ignore_errors=True)
    assert fingerprint(project.root, kept) == project.baseline


# --- the faults: each edits the copy and returns the environment its commands run with -------


def edit_params(change: Callable[[dict, Project], None]) -> Callable[[Project], dict]:
    def inject(project: Project) -> dict:
        path = project.root / "params.yaml"
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(params, project)
        path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        return {}

    return inject


def misspell_model_key(params: dict, project: Project) -> None:
    model = params["train"]["model"]
    key = next(key for key in model if key != "kind")
    model[key[:-1]] = model.pop(key)  # the typo that used to cost models/model


def missing_csv(params: dict, project: Project) -> None:
    params["data"].update(source="csv", csv_path="data/external/missing.csv")


def missing_target(params: dict, project: Project) -> None:
    params["data"]["target"] = "no_such_column"


def missing_time_column(params: dict, project: Project) -> None:
    params["data"]["time_column"] = "no_such_column"


def every_column_sensitive(params: dict, project: Project) -> None:
    target = project.settings.data.target
    params["data"].update(
        sensitive_features=[c for c in project.source.columns if c != target], use_sensitive_features=False
    )


def wrong_positive_class_or_target(params: dict, project: Project) -> None:
    if project.settings.task == "classification":
        params["data"]["positive_class"] = "no_such_class"
    else:
        params["data"]["target"] = "no_such_column"


def reversed_search_range(params: dict, project: Project) -> None:
    kind = params["train"]["model"]["kind"]
    name = "n_estimators" if kind == "random_forest" else "max_iter"
    params["tune"]["search"][kind] = {name: {"low": 50, "high": 10}}


def tuning_on(inject: Callable[[Project], dict]) -> Callable[[Project], dict]:
    """A fault of the tune stage, with train.use_tuned true: without it, tune searches nothing."""

    def use_tuned(params: dict, project: Project) -> None:
        params["train"]["use_tuned"] = True

    def both(project: Project) -> dict:
        edit_params(use_tuned)(project)
        return inject(project)

    return both


def unknown_backtest_metric(params: dict, project: Project) -> None:
    params.setdefault("backtest", {})["metric"] = "no_such_metric"


def bad_source(change: Callable[[pd.DataFrame, Project], pd.DataFrame]) -> Callable[[Project], dict]:
    """The source data changed: the CSV itself, or (demo data) the loader, in the stages' processes."""

    def inject(project: Project) -> dict:
        frame = change(project.source.copy(), project)
        if project.settings.data.source == "csv":
            frame.to_csv(project.root / str(project.settings.data.csv_path), index=False)
            return {}
        stand_in = faults(project) / "source.csv"
        frame.to_csv(stand_in, index=False)
        return patch(
            project,
            ("check", "ingest"),
            f"""
            import pandas
            import {PACKAGE}.pipeline.ingest as module
            module.load_demo = lambda source: pandas.read_csv({str(stand_in)!r})
            """,
        )

    return inject


def bad_file(name: str, change: Callable[[pd.DataFrame, Project], pd.DataFrame]) -> Callable[[Project], dict]:
    """A file that a stage reads (an output of the stage before it), changed in place."""

    def inject(project: Project) -> dict:
        path = project.root / name
        change(pd.read_csv(path), project).to_csv(path, index=False)
        return {}

    return inject


def no_rows(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    return frame.head(0)


def one_row(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    return frame.head(1)


def no_target(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    return frame.drop(columns=[project.settings.data.target])


def tighter_contract(project: Project) -> dict:
    """schema.yaml narrowed so that rows of the data break it: one allowed value less, or a lower max."""
    path = project.root / "schema.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    target = project.settings.data.target
    for name, rule in contract["columns"].items():
        if name == target:
            continue
        if rule.get("values"):
            rule["values"] = rule["values"][1:]
            break
        if rule["type"] in ("integer", "number"):
            rule["max"] = float(project.source[name].min())
            break
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return {}


CRASH = "injected crash"


def unreadable_lock(project: Project) -> dict:
    (project.root / "uv.lock").write_text("not a lock file\n", encoding="utf-8")
    return {}


def crash(stage: str, module: str, function: str) -> Fault:
    """`module.function` raises in the stage's process (its output shows the marker)."""

    def inject(project: Project) -> dict:
        return patch(
            project,
            (stage,),
            f"""
            import {PACKAGE}.{module} as module

            def crashed(*args, **kwargs):
                raise RuntimeError({f"{CRASH} in {stage}"!r})

            module.{function} = crashed
            """,
        )

    return Fault(stage, "crash", inject, f"{CRASH} in {stage}", ("repro",))


def crash_after_first_write(project: Project) -> dict:
    """evaluate dies after it has written metrics.json: outputs half new, half deleted."""
    return patch(
        project,
        ("evaluate",),
        f"""
        import {PACKAGE}.pipeline.evaluate as module

        written = module.write_json

        def write_then_crash(*args, **kwargs):
            written(*args, **kwargs)
            raise RuntimeError({f"{CRASH} in evaluate"!r})

        module.write_json = write_then_crash
        """,
    )


def patch(project: Project, commands: tuple[str, ...], code: str) -> dict:
    """A sitecustomize.py that runs `code` in the processes of these stages only (dvc.yaml's cmds)."""
    folder = faults(project)
    (folder / "sitecustomize.py").write_text(
        "import sys\n\n"
        f"if sys.orig_argv[-3:-1] == ['-m', {RUNNER!r}] and sys.orig_argv[-1] in {list(commands)!r}:\n"
        + textwrap.indent(textwrap.dedent(code).strip() + "\n", "    "),
        encoding="utf-8",
    )
    return {"PYTHONPATH": str(folder)}


def one_class_or_text_target(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    """A target that nothing can be trained on: a single class, or (regression) text."""
    target = project.settings.data.target
    if project.settings.task == "classification":
        return frame.assign(**{target: frame[target].iloc[0]})
    return frame.assign(**{target: "unknown"})


def one_class_in_the_test_set(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    """The latest rows, which a split by time makes the test set, all of one class."""
    from {{ cookiecutter.package_name }}.data import as_stored
    from {{ cookiecutter.package_name }}.pipeline.split import split_by_time

    data = project.settings.data
    frame = as_stored(frame)
    _, test = split_by_time(frame, str(data.time_column), project.settings.split.test_size)
    frame.loc[test.index, data.target] = frame.loc[test.index[0], data.target]
    return frame


def needs_a_time_split(project: Project) -> str | None:
    if project.settings.task != "classification" or not project.settings.data.time_column:
        return "only a split by time can leave a class out of the test set"
    return None


FAULTS = [
    Fault("check", "param", edit_params(misspell_model_key), "Extra inputs are not permitted"),
    Fault("check", "input", bad_source(no_target), "data.target: .* is not a column of the data"),
    Fault("check", "lock", unreadable_lock, r"uv\.lock: uv export failed"),
    crash("check", "pipeline.check", "run_checks"),
    Fault("ingest", "param", edit_params(missing_csv), "data/external/missing.csv: not found"),
    Fault("ingest", "input", bad_source(no_rows), "has 0 rows"),
    crash("ingest", "pipeline.ingest", "ingest"),
    Fault("validate", "param", edit_params(missing_target), "'no_such_column' is not"),
    Fault("validate", "input", tighter_contract, "breaks the data contract|schema.yaml: column"),
    crash("validate", "schema", "validate_frame"),
    Fault("split", "param", edit_params(missing_time_column), "data.time_column: 'no_such_column' is not"),
    Fault("split", "input", bad_file("data/raw/data.csv", one_row), "single value|n_samples=1", ("repro",)),
    Fault("split", "source", bad_source(one_row), "single value|1 row|1 class", ("dvc",)),
    crash("split", "pipeline.split", "split_frame"),
    Fault("tune", "param", edit_params(reversed_search_range), r"low \(50\) must be below high \(10\)"),
    Fault(
        "tune",
        "input",
        tuning_on(bad_file("data/prepared/train.csv", no_target)),
        "data.target: ",
        ("repro",),
    ),
    Fault("tune", "source", tuning_on(bad_source(one_class_or_text_target)), "1 class|not numeric", ("dvc",)),
    Fault(
        "tune",
        "crash",
        tuning_on(crash("tune", "pipeline.tune", "tune").inject),
        f"{CRASH} in tune",
        ("repro",),
    ),
    Fault("train", "param", edit_params(every_column_sensitive), "0 feature|no inputs"),
    Fault("train", "input", bad_file("data/prepared/train.csv", no_target), "data.target: ", ("repro",)),
    Fault("train", "source", bad_source(one_class_or_text_target), "1 class|not numeric", ("dvc",)),
    crash("train", "pipeline.train", "fit"),
    Fault(
        "evaluate", "param", edit_params(wrong_positive_class_or_target), "'no_such_[a-z]+' is (not|for two)"
    ),
    Fault("evaluate", "input", bad_file("data/prepared/test.csv", no_rows), "has 0 rows", ("repro",)),
    Fault(
        "evaluate",
        "source",
        bad_source(one_class_in_the_test_set),
        "test set .* has 1 of the [0-9]+ classes",
        ("dvc",),
        skip=needs_a_time_split,
    ),
    Fault("evaluate", "crash", crash_after_first_write, f"{CRASH} in evaluate", ("repro",)),  # half written
    Fault(
        "backtest", "param", edit_params(unknown_backtest_metric), "backtest.metric: unknown metric 'no_such"
    ),
    Fault("backtest", "input", bad_file("data/prepared/test.csv", no_rows), "has 0 rows", ("repro",)),
    Fault("backtest", "source", bad_source(one_class_or_text_target), "1 class|not numeric", ("dvc",)),
    crash("backtest", "pipeline.backtest", "backtest"),
]


def fault_id(fault: Fault) -> str:
    return f"{fault.stage}-{fault.kind}"


def through(way: str) -> list[Fault]:
    return [fault for fault in FAULTS if way in fault.through]


def test_every_stage_has_a_bad_param_a_bad_input_and_a_crash(root: Path) -> None:
    stages = list(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    assert stages == list(STAGES)
    for stage in STAGES:
        kinds = {(fault.kind, way) for fault in FAULTS if fault.stage == stage for way in fault.through}
        assert {("param", "repro"), ("input", "repro"), ("crash", "repro"), ("param", "dvc")} <= kinds, stage
        assert {("input", "dvc"), ("source", "dvc")} & kinds, stage


@pytest.mark.parametrize("fault", through("repro"), ids=fault_id)
def test_failed_stage_keeps_every_output_through_repro(fresh: Project, fault: Fault) -> None:
    env = fault.inject(fresh)
    kept = [*fresh.outputs, *fresh.records]
    before = fingerprint(fresh.root, kept)

    result = run(fresh.root, PACKAGE, "repro", "-f", "-s", fault.stage, env=env)

    output = result.stdout + result.stderr
    assert result.returncode != 0, explain(result)
    assert f"Running stage '{fault.stage}'" in result.stdout, explain(result)
    assert re.search(fault.says, output), explain(result)
    if fault.kind != "crash":
        assert "Traceback" not in output, explain(result)
        assert any(line.startswith("error: ") for line in result.stderr.splitlines()), explain(result)
    assert result.stderr.splitlines()[-1].startswith("repro: dvc repro failed"), explain(result)
    assert fingerprint(fresh.root, kept) == before  # every output, dvc.lock and .dvc record, as they were
    assert fingerprint(fresh.root, PROTECTED) == fresh.protected


@pytest.mark.parametrize("fault", through("dvc"), ids=fault_id)
def test_bad_param_or_input_stops_dvc_repro_at_check(fresh: Project, fault: Fault) -> None:
    if reason := fault.skip(fresh):
        pytest.skip(reason)
    env = fault.inject(fresh)
    # A fault DVC cannot see (the demo data's loader, replaced) needs --force for check to run.
    forced = ["--force"] if env else []

    result = run(fresh.root, "dvc", "repro", *forced, env=env)

    assert result.returncode != 0, explain(result)
    ran = [line for line in result.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'check':"], explain(result)
    assert re.search(fault.says, result.stderr), explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert any(line.startswith("error: ") for line in result.stderr.splitlines()), explain(result)
    # data/check.json and dvc.lock too (a .dvc record follows the source data that was changed).
    assert fingerprint(fresh.root, fresh.outputs) == subset(fresh.baseline, fresh.outputs)
    assert fingerprint(fresh.root, PROTECTED) == fresh.protected


# --- helpers ----------------------------------------------------------------------------------


def not_copied(root: Path):
    """test_pipeline's list, and the registry's local state (it names the project's own store)."""
    skipped = ignore(root)

    def ignored(directory: str, names: list[str]) -> set[str]:
        state = {".mlgate"} & set(names) if Path(directory) == root else set()
        return set(skipped(directory, names)) | state

    return ignored


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def faults(project: Project) -> Path:
    """Beside the copy, not in it: stand-in data and the sitecustomize.py."""
    folder = project.root.parent / "faults"
    folder.mkdir(exist_ok=True)
    return folder


def run(project: Path, *command: str, env: dict | None = None, expect: int | None = None):
    program = str(BIN / command[0]) if (BIN / command[0]).exists() else command[0]
    result = subprocess.run(
        [program, *command[1:]],
        cwd=project,
        env=environment(project) | (env or {}),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if expect is not None:
        assert result.returncode == expect, explain(result)
    return result


def fingerprint(root: Path, names) -> dict[str, str]:
    """md5 of every file under each path (file or folder); a missing path is recorded as missing."""
    found = {}
    for name in names:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        if not path.exists():
            found[name] = "missing"
        for file in files:
            if file.is_file():
                found[file.relative_to(root).as_posix()] = hashlib.md5(file.read_bytes()).hexdigest()
    return found


def subset(prints: dict[str, str], names: list[str]) -> dict[str, str]:
    def under(path: str) -> bool:
        return any(path == name or path.startswith(f"{name}/") for name in names)

    return {path: md5 for path, md5 in prints.items() if under(path)}
