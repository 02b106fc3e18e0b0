"""The command line starts fast: `status`, `promote` and `rollback` must not wait for pandas or MLflow
to load before they can even parse their arguments (each command imports what it needs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PACKAGE = "{{ cookiecutter.package_name }}"
HEAVY = {"pandas", "numpy", "scipy", "sklearn", "mlflow", "skops", "fastapi", "fairlearn", "pandera"}


def heavy_modules_after(code: str) -> set[str]:
    """The heavy libraries a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout.splitlines()[-1])
    return {name for name in loaded if name.split(".")[0] in HEAVY}


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert heavy_modules_after(f"import {PACKAGE}.cli") == set()


def test_parsing_and_refusing_input_loads_none_either() -> None:
    code = f"from {PACKAGE}.cli import main\nassert main(['promote', '--version=x']) == 1"
    assert heavy_modules_after(code) == set()


def test_the_probe_sees_a_heavy_import() -> None:
    # The check above could pass by seeing nothing: a CLI that imported pandas is caught. A stand-in
    # module under that name is enough to show it (and spares the test pandas' import time).
    stand_in = "import sys, types\nsys.modules['pandas'] = types.ModuleType('pandas')"
    assert heavy_modules_after(f"import {PACKAGE}.cli\n{stand_in}") == {"pandas"}
