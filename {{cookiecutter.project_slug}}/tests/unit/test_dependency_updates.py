"""Dependency changes notify (ML Test Score Mon1): Dependabot opens a pull request per update of
uv.lock or a pinned action, and a bump of a runtime package re-runs train, while a bump of a dev
tool re-runs nothing. The re-run itself: tests/integration/test_pipeline.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.pipeline.runtime import EXPORT, runtime_requirements
from {{ cookiecutter.package_name }}.pipeline.stage import StageFailed

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".github" / "dependabot.yml"
ECOSYSTEMS = {"uv", "github-actions"}  # the lock file and the workflows' pinned actions


def schema_check(path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema against the Dependabot schema it bundles (no network)."""
    program = Path(sys.executable).parent / "check-jsonschema"
    command = [str(program), "--builtin-schema", "vendor.dependabot", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def uncovered(config: dict) -> set[str]:
    """The ecosystems that the config does not update at the project's root."""
    updates = config.get("updates") or []
    covered = {update.get("package-ecosystem") for update in updates if update.get("directory") == "/"}
    return ECOSYSTEMS - covered


def test_the_shipped_config_passes_dependabots_schema_and_covers_the_lock_and_the_actions() -> None:
    result = schema_check(CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert uncovered(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))) == set()


@pytest.mark.parametrize(
    "fault",
    [
        lambda config: config["updates"][0].update({"package-ecosystem": "uvv"}),  # a typo
        lambda config: config["updates"][0].pop("schedule"),  # every update needs one
        lambda config: config.update({"version": 1}),
    ],
    ids=["unknown-ecosystem", "no-schedule", "wrong-version"],
)
def test_a_config_dependabot_would_reject_fails_the_schema_check(tmp_path: Path, fault) -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    fault(config)
    broken = tmp_path / "dependabot.yml"
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert schema_check(broken).returncode != 0


def test_a_config_without_the_lock_file_leaves_it_uncovered() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["updates"] = [update for update in config["updates"] if update["package-ecosystem"] != "uv"]
    assert uncovered(config) == {"uv"}


def test_train_depends_on_the_runtime_packages_and_not_on_the_lock() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    runtime = Paths(ROOT).runtime_requirements.relative_to(ROOT).as_posix()
    assert "uv.lock" in stages["check"]["deps"]
    assert runtime in [next(iter(out)) if isinstance(out, dict) else out for out in stages["check"]["outs"]]
    assert runtime in stages["train"]["deps"] and "uv.lock" not in stages["train"]["deps"]


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    """A folder with the project's pyproject.toml and uv.lock: what uv export reads."""
    for name in ("pyproject.toml", "uv.lock"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    return tmp_path


def test_the_export_pins_the_runtime_packages_and_no_dev_tool(locked: Path) -> None:
    lines = runtime_requirements(locked).splitlines()
    pinned = {line.split("==")[0] for line in lines if "==" in line}
    assert {"scikit-learn", "pandas", "mlflow"} <= pinned
    assert not {"ruff", "pytest", "mypy", "check-jsonschema"} & pinned
    assert not any(line.lstrip().startswith("#") for line in lines), "no notes that a dev package changes"
    assert "--no-dev" in EXPORT and "--frozen" in EXPORT


@pytest.mark.parametrize(("package", "changes"), [("scikit-learn", True), ("ruff", False)])
def test_only_a_runtime_package_bump_changes_the_export(
    locked: Path, bump_lock, package: str, changes: bool
) -> None:
    before = runtime_requirements(locked)
    lock = locked / "uv.lock"
    lock.write_text(bump_lock(lock.read_text(encoding="utf-8"), package), encoding="utf-8")
    assert (runtime_requirements(locked) != before) is changes


def test_a_lock_uv_cannot_read_is_one_line_naming_it(locked: Path) -> None:
    (locked / "uv.lock").write_text("not a lock file\n", encoding="utf-8")
    with pytest.raises(StageFailed, match=r"^uv\.lock: uv export failed: ") as caught:
        runtime_requirements(locked)
    assert "\n" not in str(caught.value)
