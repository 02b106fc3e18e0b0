"""Model specs are reviewed: CODEOWNERS owns every spec, and the shipped ruleset requires a code
owner's review and the checks that ci.yml really produces (apply it: the README says how)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CODEOWNERS = ROOT / ".github" / "CODEOWNERS"
RULESET = ROOT / ".github" / "rulesets" / "main.json"
# What decides the model and its gate: a change to any of these needs an owner's approval.
SPECS = [
    "params.yaml",
    "dvc.yaml",
    "schema.yaml",
    "pyproject.toml",
    "uv.lock",
    "src/{{ cookiecutter.package_name }}/pipeline/train.py",
    "src/{{ cookiecutter.package_name }}/gate/judge.py",
    "tests/ml_test_score.yaml",
    ".github/workflows/ci.yml",
]
# The checks a pull request must pass: the caller's job in ci.yml, the job of mlgate's workflow.
REQUIRED_CHECKS = {"test / passed": "test.yml", "report / gate": "pr-report.yml"}


def owner_rules(text: str) -> list[tuple[str, list[str]]]:
    """CODEOWNERS lines as (pattern, owners), in file order."""
    rules = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            rules.append((words[0], words[1:]))
    return rules


def matches(pattern: str, path: str) -> bool:
    """GitHub's CODEOWNERS patterns (gitignore's rules): `/x` anchors at the top, `x/` is a folder
    and everything below it, a name without a slash matches at any depth."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    if pattern.endswith("/"):
        tails = [path.split("/", i)[-1] for i in range(1, path.count("/") + 1)]
        prefixes = [path] if anchored else [path, *tails]
        return any(candidate.startswith(body + "/") for candidate in prefixes)
    candidates = [path] if anchored else path.split("/")
    return any(fnmatch.fnmatchcase(candidate, body) for candidate in candidates) or fnmatch.fnmatchcase(
        path, body
    )


def owners(path: str, rules: list[tuple[str, list[str]]]) -> list[str]:
    """The owners of a path: the last matching line decides (a line without owners un-owns it)."""
    found: list[str] = []
    for pattern, names in rules:
        if matches(pattern, path):
            found = names
    return found


def unowned(text: str, paths: list[str]) -> list[str]:
    rules = owner_rules(text)
    return [path for path in paths if not owners(path, rules)]


def ruleset_problems(ruleset: dict, ci: dict) -> list[str]:
    """What would let an unreviewed or ungated change reach main."""
    rules = {rule["type"]: rule.get("parameters", {}) for rule in ruleset.get("rules", [])}
    problems = []
    if ruleset.get("enforcement") != "active":
        problems.append("the ruleset is not active")
    review = rules.get("pull_request", {})
    if not review.get("require_code_owner_review") or review.get("required_approving_review_count", 0) < 1:
        problems.append("a code owner's approving review is not required")
    checks = rules.get("required_status_checks", {}).get("required_status_checks", [])
    contexts = {check.get("context") for check in checks}
    for context, workflow in REQUIRED_CHECKS.items():
        caller = context.split(" / ")[0]
        uses = str(ci.get("jobs", {}).get(caller, {}).get("uses", ""))
        if context not in contexts:
            problems.append(f"the check {context!r} is not required")
        if f"/.github/workflows/{workflow}@" not in uses:
            problems.append(f"ci.yml's job {caller!r} does not call {workflow}: {context!r} never reports")
    unknown = sorted(contexts - set(REQUIRED_CHECKS))
    if unknown:
        problems.append(f"{unknown} are required but ci.yml never reports them")
    return problems


def shipped() -> tuple[dict, dict]:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    return json.loads(RULESET.read_text(encoding="utf-8")), ci


def test_every_spec_has_a_code_owner() -> None:
    assert all((ROOT / path).exists() for path in SPECS if path != "uv.lock"), "a spec moved"
    assert unowned(CODEOWNERS.read_text(encoding="utf-8"), SPECS) == []


def test_a_spec_left_without_an_owner_is_caught() -> None:
    """The fault: a later line that names no owner (or narrows the owned folders) un-owns a spec."""
    text = CODEOWNERS.read_text(encoding="utf-8")
    assert unowned(text + "\n/params.yaml\n", SPECS) == ["params.yaml"]
    narrowed = "\n".join(line for line in text.splitlines() if not line.startswith(("*", "/src/")))
    assert "src/{{ cookiecutter.package_name }}/gate/judge.py" in unowned(narrowed, SPECS)


def test_codeowners_patterns_follow_githubs_rules() -> None:
    assert matches("/src/", "src/a/b.py") and not matches("/src/", "tests/src/b.py")
    assert matches("src/", "tests/src/b.py") and matches("*.yaml", "a/b/params.yaml")
    assert matches("/params.yaml", "params.yaml") and not matches("/params.yaml", "x/params.yaml")


def test_the_ruleset_requires_an_owners_review_and_the_gate() -> None:
    assert ruleset_problems(*shipped()) == []


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (lambda r, ci: r.update(enforcement="evaluate"), "not active"),
        (lambda r, ci: r["rules"][2]["parameters"].update(require_code_owner_review=False), "code owner"),
        (lambda r, ci: r["rules"][3]["parameters"]["required_status_checks"].pop(), "'report / gate' is not"),
        (lambda r, ci: ci["jobs"].pop("report"), "never reports"),
        (
            lambda r, ci: r["rules"][3]["parameters"]["required_status_checks"].append({"context": "lint"}),
            "never reports them",
        ),
    ],
)
def test_a_ruleset_that_lets_an_unreviewed_or_ungated_change_in_is_caught(fault, problem) -> None:
    ruleset, ci = shipped()
    fault(ruleset, ci)
    assert any(problem in found for found in ruleset_problems(ruleset, ci)), ruleset_problems(ruleset, ci)
