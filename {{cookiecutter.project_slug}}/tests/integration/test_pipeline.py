"""The whole pipeline, run by DVC in a temporary copy of the project (slow).

The copy gets its own git repository and MLflow store, so the project's own
data, models and runs are never touched.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import PACKAGE, environment, explain, ignore, run

from {{ cookiecutter.package_name }}.artifacts import load_model, model_metadata
from {{ cookiecutter.package_name }}.config.settings import load_settings
from {{ cookiecutter.package_name }}.gate.noise import scorers
from {{ cookiecutter.package_name }}.metrics import metric_names
from {{ cookiecutter.package_name }}.pipeline.train import run_name
from {{ cookiecutter.package_name }}.predictions import parse_rows, row_ids
from {{ cookiecutter.package_name }}.provenance import git_commit
from {{ cookiecutter.package_name }}.schema import load_contract
from {{ cookiecutter.package_name }}.tracking import EXPERIMENT_KIND, FIT_SECONDS, TRAINED_RUN_TAG

pytestmark = pytest.mark.integration


def succeeded(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    """A copy of the project after a successful `dvc repro`."""
    copy = tmp_path_factory.mktemp("pipeline") / root.name
    shutil.copytree(root, copy, ignore=ignore(root), symlinks=True)
    result = run(copy, "git", "init", "--quiet")  # DVC works inside a git repository
    assert succeeded(result), explain(result)
    if not load_contract(copy / "schema.yaml").columns:
        # A project baked for its own CSV has no contract until `schema infer` writes one.
        result = run(copy, PACKAGE, "schema", "infer")
        assert succeeded(result), explain(result)
    result = run(copy, "dvc", "repro")
    assert succeeded(result), explain(result)
    return copy


def test_dvc_repro_leaves_the_pipeline_up_to_date(project: Path) -> None:
    result = run(project, "dvc", "status", "--json")
    assert succeeded(result), explain(result)
    assert json.loads(result.stdout) == {}, result.stdout


@pytest.mark.parametrize(
    ("edited", "stages"),
    [
        ("pipeline/split.py", {"check", "split", "backtest"}),  # check splits in memory as split does
        ("pipeline/train.py", {"tune", "train", "backtest"}),  # tune and backtest fit train's pipeline
        ("pipeline/tune.py", {"tune"}),
        ("pipeline/scoring.py", {"tune", "train", "evaluate", "backtest"}),
        ("serving/app.py", set()),
        ("gate/judge.py", set()),
        # A setting added for the gate or one stage: check (whose output never changes) and that stage.
        ("config/gate.py", {"check"}),
        ("config/evaluate.py", {"check", "evaluate"}),
        ("config/tune.py", {"check", "tune"}),
    ],
)
def test_editing_a_module_re_runs_exactly_the_stages_that_run_it(
    project: Path, edited: str, stages: set[str]
) -> None:
    # The stages after these re-run when their outputs change, as for any data dependency.
    path = project / "src" / PACKAGE / edited
    original = path.read_bytes()
    path.write_bytes(original + b"\n# an edit\n")
    try:
        result = run(project, "dvc", "status", "--json")
    finally:
        path.write_bytes(original)
    assert succeeded(result), explain(result)
    assert set(json.loads(result.stdout)) == stages, result.stdout


@pytest.mark.parametrize(("package", "stages"), [("scikit-learn", {"train"}), ("ruff", set())])
def test_a_runtime_package_bump_re_runs_train_and_a_dev_tool_bump_nothing(
    project: Path, bump_lock, package: str, stages: set[str]
) -> None:
    """A dependency update bot's pull request changes uv.lock only: check exports it again, and
    the stages after it see a change only when a package the model runs with moved."""
    records = [project / name for name in ("uv.lock", "requirements/runtime.txt", "dvc.lock")]
    originals = {path: path.read_bytes() for path in records}
    lock = project / "uv.lock"
    try:
        lock.write_text(bump_lock(lock.read_text(encoding="utf-8"), package), encoding="utf-8")
        result = run(project, "dvc", "repro", "check")
        assert succeeded(result), explain(result)
        result = run(project, "dvc", "status", "--json")
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
    assert succeeded(result), explain(result)
    assert set(json.loads(result.stdout)) == stages, result.stdout


def test_metrics_hold_model_and_baseline(project: Path) -> None:
    settings = load_settings(project / "params.yaml")
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    train = pd.read_csv(project / "data" / "prepared" / "train.csv")
    names = set(metric_names(settings.task, train[settings.data.target].nunique()))
    for who in ("model", "baseline"):
        assert set(metrics[who]) == names, who
        assert all(math.isfinite(value) for value in metrics[who].values()), who
    assert metrics["test_rows"] == len(pd.read_csv(project / "data" / "prepared" / "test.csv"))
    assert json.loads((project / "reports" / "validation.json").read_text(encoding="utf-8"))["passed"]


def test_pipeline_metrics_match_the_in_memory_evaluation(project: Path, evaluation) -> None:
    # The commands must do what the pure functions do: same data, same split, same seed.
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["model"] == pytest.approx(evaluation.metrics["model"], abs=1e-6)
    assert metrics["baseline"] == pytest.approx(evaluation.metrics["baseline"], abs=1e-6)


def test_the_per_row_predictions_give_the_test_metrics_and_cover_the_test_set(project: Path) -> None:
    """What the gate resamples is what metrics.json scores: every test row once, by a stable id."""
    rows = parse_rows((project / "reports" / "predictions.csv").read_bytes(), "reports/predictions.csv")
    test = pd.read_csv(project / "data" / "prepared" / "test.csv")
    assert sorted(rows.ids) == sorted(row_ids(test)) and len(rows) == len(test)
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))["model"]
    every_row_once = np.ones((1, len(rows)))
    recomputed = {name: float(score(every_row_once)[0]) for name, score in scorers(rows).items()}
    assert recomputed == pytest.approx(metrics, abs=2e-6)


def tracking_client(project: Path):
    import mlflow

    return mlflow.MlflowClient(environment(project)["MLFLOW_TRACKING_URI"])


def test_the_training_run_holds_its_data_params_and_test_metrics(project: Path) -> None:
    settings = load_settings(project / "params.yaml")
    client = tracking_client(project)
    run = client.get_run(model_metadata(project / "models" / "model")["mlflow_run_id"])
    assert run.info.run_name == run_name("train", git_commit(project))
    assert run.data.params["train.model.kind"] == settings.train.model.kind  # params.yaml's own keys
    assert [entry.dataset.name for entry in run.inputs.dataset_inputs] == ["train"]
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    logged = {
        name.removeprefix("test_"): value
        for name, value in run.data.metrics.items()
        if name.startswith("test_")
    }
    assert logged == {**metrics["model"], "rows": metrics["test_rows"]}
    assert 0 < run.data.metrics[FIT_SECONDS] < 600  # what the canary compares between versions
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]


def test_a_model_trained_elsewhere_gets_an_evaluation_run_linked_to_it(project: Path, tmp_path: Path) -> None:
    # As after `dvc pull` or a run-cache restore: the model's training run is not in this store.
    copy = tmp_path / project.name
    shutil.copytree(
        project, copy, symlinks=True, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", ".mlgate")
    )
    trained = model_metadata(copy / "models" / "model")["mlflow_run_id"]

    result = run(copy, PACKAGE, "evaluate")

    assert succeeded(result), explain(result)
    runs = tracking_client(copy).search_runs(
        [experiment.experiment_id for experiment in tracking_client(copy).search_experiments()]
    )
    assert [r.data.tags.get(TRAINED_RUN_TAG) for r in runs] == [trained]
    assert runs[0].data.metrics["test_rows"] == json.loads((copy / "metrics.json").read_text())["test_rows"]


def test_a_dvc_experiment_runs_shows_and_becomes_a_branch(project: Path, tmp_path: Path) -> None:
    # `dvc exp run -S` rewrites params.yaml with YAML 1.2 rules (e.g. `positive_class: Yes`
    # unquoted); the stages read it the same way, so the experiment runs.
    copy = tmp_path / project.name
    shutil.copytree(project, copy, symlinks=True)
    for command in (("git", "add", "--all"), ("git", "commit", "--quiet", "-m", "baseline")):
        result = run(copy, *command)
        assert succeeded(result), explain(result)

    result = run(copy, "dvc", "exp", "run", "--name", "fewer-repeats", "-S", "evaluate.permutation_repeats=2")
    assert succeeded(result), explain(result)
    assert load_settings(copy / "params.yaml").evaluate.permutation_repeats == 2

    result = run(copy, "dvc", "exp", "show", "--json")
    assert succeeded(result), explain(result)
    experiments = {
        rev["name"]: rev["data"]["params"]["params.yaml"]["data"]
        for baseline in json.loads(result.stdout)
        for experiment in baseline["experiments"] or []
        for rev in experiment["revs"]
    }
    assert experiments["fewer-repeats"]["evaluate"]["permutation_repeats"] == 2, experiments

    result = run(copy, "dvc", "exp", "branch", "fewer-repeats", "try-fewer-repeats")
    assert succeeded(result), explain(result)
    shown = run(copy, "git", "show", "try-fewer-repeats:params.yaml")
    assert succeeded(shown), explain(shown)
    assert "permutation_repeats: 2" in shown.stdout


def test_saved_model_predicts_raw_rows(project: Path) -> None:
    settings = load_settings(project / "params.yaml")
    model = load_model(project / "models" / "model")
    raw = pd.read_csv(project / "data" / "raw" / "data.csv")
    rows = raw.drop(columns=[settings.data.target]).head(200)
    predictions = model.predict(rows)
    assert len(predictions) == len(rows)
    if settings.task == "classification":
        assert set(predictions) <= set(raw[settings.data.target])
    else:
        assert pd.Series(predictions, dtype=float).map(math.isfinite).all()


def fingerprint(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_corrupt_raw_data_stops_the_pipeline_before_training(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / project.name
    shutil.copytree(project, copy, symlinks=True)
    settings = load_settings(copy / "params.yaml")
    model_before = fingerprint(copy / "models" / "model")
    metrics_before = (copy / "metrics.json").read_text(encoding="utf-8")
    raw_path = copy / "data" / "raw" / "data.csv"
    raw = pd.read_csv(raw_path)
    raw.loc[0, settings.data.target] = None  # a missing label: the contract forbids it
    raw.to_csv(raw_path, index=False)

    result = run(copy, PACKAGE, "validate")

    assert result.returncode != 0, explain(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.rstrip().splitlines()[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads((copy / "reports" / "validation.json").read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert settings.data.target in {failure["column"] for failure in report["failures"]}

    # Through DVC: validate and everything after it, on the corrupted data (ingest would restore it).
    result = run(copy, "dvc", "repro", "--downstream", "validate")

    assert result.returncode != 0, explain(result)
    assert fingerprint(copy / "models" / "model") == model_before
    assert (copy / "metrics.json").read_text(encoding="utf-8") == metrics_before
