"""register, promote, rollback and status through the CLI, against a scratch sqlite store per project."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from registry_helpers import DATA_MD5, Project

from {{ cookiecutter.package_name }}.artifacts import load_model, save_model
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.deploy.figures import Figures
from {{ cookiecutter.package_name }}.deploy.registry import (
    CHALLENGER,
    CHAMPION,
    FORCED,
    FORCED_BY,
    GATE,
    HISTORY,
    PREVIOUS,
    fit_seconds,
    format_status,
    gate_tag,
    previous_champion,
    record_canary,
    version_tags,
)
from {{ cookiecutter.package_name }}.provenance import data_hash, git_commit
from {{ cookiecutter.package_name }}.tracking import RegistryError

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def project(new_project, model, train_set) -> Project:
    """One project whose models/model holds the session's model, logged to its store."""
    project = new_project()
    project.train(model, train_set, {"model": {"roc_auc": 0.71, "log_loss": 0.4}})
    return project


def client(project: Project):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=project.uri, registry_uri=project.uri)


def register(project: Project) -> str:
    code, out, err = project.cli("register")
    assert code == 0, err
    version = project.alias(CHALLENGER)
    assert f"version {version} " in out
    return str(version)


def promote(project: Project, *args: str) -> str:
    """`promote ARGS`, of a version the canary passed (as recorded on it)."""
    version = args[args.index("--version") + 1] if "--version" in args else project.alias(CHALLENGER)
    if version is not None:
        project.canaried(version)
    code, out, err = project.cli("promote", *args)
    assert code == 0, err
    return out


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def commit_all(project: Project, root: Path) -> str:
    """Put the project under git, with the project's own .gitignore, everything committed; HEAD."""
    shutil.copy(root / ".gitignore", project.root / ".gitignore")
    if not (project.root / ".git").exists():
        subprocess.run([*GIT, "init", "-q", str(project.root)], check=True)
    subprocess.run([*GIT, "-C", str(project.root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(project.root), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True)
    return head.stdout.strip()


def test_register_tags_the_version_and_points_challenger_at_it(new_project, model, train_set, root):
    project = new_project()
    ids = project.train(model, train_set, {"model": {"roc_auc": 0.71}, "baseline": {"roc_auc": 0.5}})
    head = commit_all(project, root)

    version = register(project)

    found = client(project).get_model_version(project.settings.mlflow.registered_model, version)
    assert found.source == f"models:/{ids['mlflow_model_id']}"  # the model the train stage logged, not a copy
    assert found.run_id == ids["mlflow_run_id"]
    assert found.tags["git_commit"] == head
    assert found.tags["data_md5"] == DATA_MD5
    assert found.tags["metric.roc_auc"] == "0.71"
    assert "metric.baseline" not in str(found.tags)
    assert project.alias(CHAMPION) is None  # registering deploys nothing


def test_register_refuses_uncommitted_changes_but_not_rewritten_records(new_project, model, train_set, root):
    project = new_project()
    project.train(model, train_set, {"model": {"roc_auc": 0.71}})
    commit_all(project, root)
    params = project.paths.params.read_text(encoding="utf-8")
    project.paths.params.write_text(params.replace("seed: 42", "seed: 7"), encoding="utf-8")
    code, _, err = project.cli("register")
    assert code == 1 and "uncommitted changes in params.yaml: commit them first" in err, err
    assert project.alias(CHALLENGER) is None, "nothing registered"
    project.paths.params.write_text(params, encoding="utf-8")
    project.paths.metrics.write_text(json.dumps({"model": {"roc_auc": 0.72}}))  # a re-run's record
    register(project)


def test_register_logs_the_model_directory_when_the_store_does_not_have_its_run(new_project, model, test_set):
    """A model trained against another store (a CI runner's): its directory is logged here first."""
    import mlflow.artifacts

    project = new_project()
    foreign = {"mlflow_run_id": "0" * 32, "mlflow_model_id": "m-" + "0" * 32}
    save_model(model, project.paths.model, metadata=foreign)
    project.paths.metrics.write_text(json.dumps({"model": {"roc_auc": 0.7}}))
    version = register(project)

    name = project.settings.mlflow.registered_model
    found = client(project).get_model_version(name, version)
    assert found.source.startswith("models:/m-") and found.source != f"models:/{foreign['mlflow_model_id']}"
    run = client(project).get_run(found.run_id)
    assert run.data.tags["registered_from"] == str(project.paths.model)
    assert fit_seconds(project.settings, version) is None  # its fit was timed elsewhere, if at all
    local = mlflow.artifacts.download_artifacts(
        f"models:/{name}/{version}", tracking_uri=project.uri, registry_uri=project.uri
    )
    rows = test_set[list(model.feature_names_in_)].head(50)
    assert (load_model(Path(local)).predict(rows) == model.predict(rows)).all()


def test_the_fit_time_and_the_canary_figures_are_recorded_on_the_version(new_project, model, train_set):
    """What the next version's canary compares with: the train run's fit time, the canary's figures."""
    project = new_project()
    project.train(model, train_set, fit_seconds=12.5)
    version = register(project)
    assert fit_seconds(project.settings, version) == 12.5
    measured = Figures(p50_ms=1.25, p99_ms=4.0, requests_per_s=612.3456, peak_rss_mb=210.0, fit_seconds=12.5)
    record_canary(project.settings, version, passed=True, champion=None, figures=measured)
    tags = client(project).get_model_version(project.settings.mlflow.registered_model, version).tags
    recorded = {key: value for key, value in tags.items() if key.startswith("canary_")}
    assert recorded == {
        "canary_champion": "none",
        "canary_p50_ms": "1.25",
        "canary_p99_ms": "4",
        "canary_requests_per_s": "612.346",
        "canary_peak_rss_mb": "210",
        "canary_fit_seconds": "12.5",
    }


def test_register_without_a_trained_model_is_refused(new_project):
    code, _, err = new_project().cli("register")
    assert code == 1
    assert "run the train stage first" in err


def test_promote_moves_champion_and_records_the_one_it_replaced(project):
    first = register(project)
    promote(project)
    assert project.alias(CHAMPION) == first
    second = register(project)
    assert project.alias(CHAMPION) == first  # a new challenger does not move the champion
    assert f"(was {first})" in promote(project)
    assert project.alias(CHAMPION) == second
    name = project.settings.mlflow.registered_model
    assert client(project).get_model_version(name, second).tags[PREVIOUS] == first
    assert client(project).get_registered_model(name).tags[HISTORY].split()[-2:] == [first, second]


def test_promote_takes_only_what_the_canary_passed_unless_a_reason_is_recorded(
    new_project, model, train_set, monkeypatch
):
    project = new_project()
    project.train(model, train_set)
    version = register(project)
    code, _, err = project.cli("promote")
    assert code == 1 and f"version {version}: no canary judged it" in err and "--force REASON" in err, err
    record_canary(project.settings, version, passed=False, champion=None)
    code, _, err = project.cli("promote", "--version", version)
    assert code == 1 and "the canary refused it" in err, err
    assert project.alias(CHAMPION) is None, "nothing promoted"
    for bad in ("", "no", "two\nlines"):
        code, _, err = project.cli("promote", "--force", bad)
        assert code == 1 and err.startswith("error: --force ") and "is not a reason" in err, err
    monkeypatch.setenv("GITHUB_ACTOR", "release-manager")
    code, out, err = project.cli("promote", "--force", "hotfix for incident 42")
    assert code == 0 and "for the recorded reason 'hotfix for incident 42'" in out, err
    assert project.alias(CHAMPION) == version
    tags = client(project).get_model_version(project.settings.mlflow.registered_model, version).tags
    assert (tags[FORCED], tags[FORCED_BY]) == ("hotfix for incident 42", "release-manager")


def test_promote_takes_only_what_the_gate_passed_on_its_commit_unless_a_reason_is_recorded(
    new_project, model, train_set
):
    """The version's `gate` tag comes from reports/gate.json at `register`: a failed verdict, no
    verdict, or one on another commit are not a pass, however the canary judged."""
    project = new_project()
    cases = {"fail": "the gate failed its commit", None: "no gate verdict on its commit"}
    for verdict, refused in cases.items():
        project.train(model, train_set, gate=verdict)
        version = register(project)
        project.canaried(version)
        code, _, err = project.cli("promote")
        assert code == 1 and f"version {version}: {refused}" in err and "--force REASON" in err, err
    project.judged("pass", commit="an-earlier-commit")
    version = register(project)
    project.canaried(version)
    code, _, err = project.cli("promote")
    assert code == 1 and "no gate verdict on its commit" in err, err
    assert project.alias(CHAMPION) is None, "nothing promoted"
    project.judged("pass")
    version = register(project)
    project.canaried(version)
    promote(project)
    assert project.alias(CHAMPION) == version
    tags = client(project).get_model_version(project.settings.mlflow.registered_model, version).tags
    assert tags[GATE] == "passed"


def test_the_gate_tag_is_the_verdict_on_the_registered_commit_only():
    assert gate_tag({"verdict": "pass", "commit": "c1"}, "c1") == "passed"
    assert gate_tag({"verdict": "fail", "commit": "c1"}, "c1") == "failed"
    assert gate_tag({"verdict": "error", "commit": "c1"}, "c1") == "none"
    assert gate_tag({"verdict": "pass", "commit": "c0"}, "c1") == "none"  # judged another commit
    assert gate_tag({"verdict": "pass", "commit": None}, "c1") == "none"  # results judged elsewhere
    assert gate_tag({"verdict": "pass", "commit": "unknown"}, "unknown") == "none"  # no commit known
    assert gate_tag(None, "c1") == gate_tag(["pass"], "c1") == "none"


def test_promote_refuses_what_is_not_there(new_project, model, train_set):
    project = new_project()
    code, _, err = project.cli("promote")
    assert code == 1 and "run `register` first" in err
    project.train(model, train_set)
    version = register(project)
    code, _, err = project.cli("promote", "--version", "99")
    assert code == 1 and "no version '99'" in err
    assert project.alias(CHAMPION) is None
    assert "(the first)" in promote(project, "--version", version)
    assert project.alias(CHAMPION) == version


def test_rollback_restores_the_previous_champion_and_goes_further_back(project):
    older = register(project)
    promote(project)
    good = register(project)
    promote(project)
    bad = register(project)
    promote(project)
    assert project.alias(CHAMPION) == bad

    code, out, err = project.cli("rollback")
    assert code == 0, err
    assert project.alias(CHAMPION) == good
    assert f"version {good} is the champion again (was {bad})" in out
    project.cli("rollback")
    assert project.alias(CHAMPION) == older  # one more step back
    code, _, _ = project.cli("rollback", "--version", bad)
    assert code == 0 and project.alias(CHAMPION) == bad


def test_rollback_without_a_previous_champion_is_refused(new_project, model, train_set):
    project = new_project()
    code, _, err = project.cli("rollback")
    assert code == 1 and "nothing to roll back" in err
    project.train(model, train_set)
    only = register(project)
    promote(project)
    code, _, err = project.cli("rollback")
    assert code == 1 and "no previous version" in err
    code, _, err = project.cli("rollback", "--version", "42")
    assert code == 1 and "no version '42'" in err
    assert project.alias(CHAMPION) == only


def test_status_lists_versions_and_their_aliases(project):
    register(project)
    promote(project)
    challenger = register(project)
    champion = project.alias(CHAMPION)
    code, out, _ = project.cli("status")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["version", "aliases"]
    rows = {line.split()[0]: line for line in lines[2:] if line[:1].isdigit()}
    assert "champion" in rows[str(champion)] and "challenger" not in rows[str(champion)]
    assert rows[challenger].split()[1] == "challenger"
    assert DATA_MD5[:12] in rows[challenger]
    assert lines[-1].startswith("champion history") and lines[-1].endswith(str(champion))


def test_a_relative_sqlite_store_is_the_projects_wherever_the_command_runs(
    new_project, model, train_set, tmp_path, monkeypatch, capsys
):
    project = new_project()
    params = project.paths.params.read_text().replace("tracking_uri:", "tracking_uri: sqlite:///mlflow.db #")
    project.paths.params.write_text(params)
    project.train(model, train_set)
    version = register(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["--root", str(project.root), "status"]) == 0
    out = capsys.readouterr().out
    assert f"at sqlite:///{project.root / 'mlflow.db'}" in out
    assert any(line.split()[:2] == [version, "challenger"] for line in out.splitlines())
    assert not (tmp_path / "mlflow.db").exists()


def test_version_tags_read_the_raw_data_hash_from_the_lock():
    lock = {
        "stages": {
            "ingest": {"outs": [{"path": "data/raw/data.csv", "md5": "abc123", "size": 10}]},
            "split": {"outs": [{"path": "data/prepared/train.csv", "md5": "other"}]},
        }
    }
    tags = version_tags({"model": {"roc_auc": 0.7}, "baseline": {"roc_auc": 0.5}}, lock, "deadbeef")
    assert tags == {"git_commit": "deadbeef", "data_md5": "abc123", "metric.roc_auc": "0.7"}
    assert data_hash({}) == data_hash({"stages": {"ingest": {"outs": []}}}) == "unknown"
    assert data_hash({"stages": {"ingest": {"outs": [{"path": "elsewhere.csv", "md5": "x"}]}}}) == "unknown"


def test_git_commit_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("GIT_COMMIT", "cafe")  # a container built from a commit has no .git
    assert git_commit(tmp_path) == "cafe"


def test_previous_champion_and_an_empty_status():
    with pytest.raises(RegistryError, match="no previous version"):
        previous_champion({})
    assert previous_champion({PREVIOUS: "3"}) == "3"
    assert "no registered versions" in format_status([], "roc_auc")
