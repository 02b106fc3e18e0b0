"""The package's layout: dvc.yaml names the code behind each stage, no import cycles, small functions.

DVC re-runs a stage when one of its deps changes, so a module missing from the deps means an
edit there never re-runs the stage (a stale model), and a module listed that the stage does
not run means needless re-runs. The imports are read from the source (every `import`, also
those inside functions), never by importing it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

PACKAGE = "{{ cookiecutter.package_name }}"
ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
RUNNER = re.compile(rf"^python -m {PACKAGE}\.pipeline (?P<stage>[a-z_]+)$")


@functools.cache  # the source does not change during a test run; each test walks it again
def module_file(module: str) -> Path | None:
    """The file of a module of the package (a package's __init__.py), None if there is none."""
    path = SRC.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


@functools.cache
def imported(module: str) -> frozenset[str]:
    """The package's modules that `module` imports anywhere in its source."""
    path = module_file(module)
    assert path is not None, module
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from .pipeline import check` imports the submodule check, if there is one.
            found.update(
                f"{base}.{alias.name}" if module_file(f"{base}.{alias.name}") else base
                for alias in node.names
            )
    return frozenset(name for name in found if name.split(".")[0] == PACKAGE and module_file(name))


def with_parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def code_of(module: str) -> set[str]:
    """Every file of the package that runs when `module` is imported, as dvc.yaml names files."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in with_parents(todo.pop()) - seen:
            seen.add(name)
            todo.extend(imported(name))
    return {module_file(name).relative_to(ROOT).as_posix() for name in seen}


def stage_code(cmd: str) -> set[str]:
    """The files a stage command runs: the pipeline's runner and the stage's module."""
    match = RUNNER.fullmatch(cmd)
    assert match, f"{cmd!r}: every stage runs as `python -m {PACKAGE}.pipeline <stage>`"
    return code_of(f"{PACKAGE}.pipeline.__main__") | code_of(f"{PACKAGE}.pipeline.{match['stage']}")


def dependency_problems(stages: dict) -> list[str]:
    """Per stage: package files it runs that its deps miss, and listed package files it does not run."""
    problems = []
    for name, stage in stages.items():
        listed = {dep for dep in stage.get("deps", []) if dep.startswith(f"src/{PACKAGE}/")}
        needed = stage_code(stage["cmd"])
        problems += [f"{name}: deps miss {path}" for path in sorted(needed - listed)]
        problems += [
            f"{name}: deps list {path}, which the stage does not run" for path in sorted(listed - needed)
        ]
    return problems


@pytest.fixture(scope="module")
def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def test_every_stage_lists_exactly_the_code_it_runs(stages: dict) -> None:
    assert dependency_problems(stages) == []


def test_a_removed_dependency_is_caught(stages: dict) -> None:
    for name in ("split", "train", "evaluate"):
        deps = stages[name]["deps"]
        removed = f"src/{PACKAGE}/pipeline/{name}.py"
        assert removed in deps
        broken = stages | {name: stages[name] | {"deps": [dep for dep in deps if dep != removed]}}
        assert dependency_problems(broken) == [f"{name}: deps miss {removed}"]


def test_a_dependency_the_stage_does_not_run_is_caught(stages: dict) -> None:
    extra = f"src/{PACKAGE}/serving/app.py"
    broken = stages | {"split": stages["split"] | {"deps": [*stages["split"]["deps"], extra]}}
    assert dependency_problems(broken) == [f"split: deps list {extra}, which the stage does not run"]


def test_only_check_runs_the_settings_that_no_stage_reads(stages: dict) -> None:
    # A setting added for the gate, the server or the canary must re-run no stage: only check,
    # which validates the whole file and whose output never changes, runs their modules.
    outside = {f"src/{PACKAGE}/config/{name}.py" for name in ("settings", "gate", "serving", "canary")}
    for name, stage in stages.items():
        runs = stage_code(stage["cmd"]) & outside
        assert runs == (outside if name == "check" else set()), f"{name} runs {sorted(runs)}"


def test_imports_inside_functions_and_of_submodules_count() -> None:
    # pipeline.train imports scoring and tracking inside log_run; commands.pipeline imports
    # `from ..pipeline import check` inside cmd_check.
    assert {f"{PACKAGE}.pipeline.scoring", f"{PACKAGE}.tracking"} <= imported(f"{PACKAGE}.pipeline.train")
    assert f"{PACKAGE}.pipeline.check" in imported(f"{PACKAGE}.commands.pipeline")


def outputs(stages: dict) -> set[str]:
    return {
        next(iter(out)) if isinstance(out, dict) else out
        for stage in stages.values()
        for key in ("outs", "metrics")
        for out in stage.get(key, [])
    }


def test_paths_name_every_output_of_dvc_yaml(stages: dict) -> None:
    from {{ cookiecutter.package_name }}.paths import Paths

    paths = Paths(ROOT)
    named = {
        getattr(paths, name).relative_to(ROOT).as_posix()
        for name, value in vars(Paths).items()
        if isinstance(value, property)
    }
    assert outputs(stages) - named == set()
    assert outputs(stages | {"extra": {"cmd": "", "outs": ["models/other"]}}) - named == {"models/other"}


# --- the house: no import cycles, small functions -----------------------------------------------

MAX_FUNCTION_LINES = 50


def package_modules() -> list[str]:
    package = SRC / PACKAGE
    return sorted(
        ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
    )


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in it, lazily or not)."""
    return {module: imported(module) - {module} for module in package_modules()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle once, as the path that closes it."""
    found, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :]
            if frozenset(cycle) not in done:
                done.add(frozenset(cycle))
                found.append([*cycle, module])
            return
        if module in visited:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        visited.add(module)

    visited: set[str] = set()
    for module in sorted(graph):
        visit(module, [])
    return found


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_an_import_cycle_is_caught() -> None:
    graph = import_graph()
    deploy, serving = f"{PACKAGE}.deploy.canary", f"{PACKAGE}.serving.app"
    graph[serving] = graph[serving] | {deploy}
    graph[deploy] = graph[deploy] | {serving}
    assert [deploy, serving, deploy] in cycles(graph) or [serving, deploy, serving] in cycles(graph)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= limit
    ]


def test_no_function_is_longer_than_fifty_lines() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): long_functions(path.read_text(encoding="utf-8"))
        for path in sorted((SRC / PACKAGE).rglob("*.py"))
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_a_long_function_is_caught() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def long():\n{body}") == [f"long ({MAX_FUNCTION_LINES + 1} lines)"]
    assert long_functions(f"def short():\n{body[: body.rindex('    x')]}") == []
