"""Refuse bad answers before anything is written: one line per wrong answer.

`answer_errors` is a pure function so that the template tests can call it; the
rendered answers below are only read when cookiecutter runs this file.
"""

from __future__ import annotations

import csv
import json
import keyword
import os
import re
import sys
from pathlib import Path

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "task": ("classification", "regression"),
    "dataset": ("demo", "csv"),
    "model": ("linear", "random_forest", "gradient_boosting"),
    "dvc_remote": ("none", "local", "s3", "gs", "azure"),
    "init_git": ("yes", "no"),
}
REMOTE_SCHEMES = {"s3": "s3://", "gs": "gs://", "azure": "azure://"}


def answer_errors(answers: dict, base_dir: Path) -> list[str]:
    """Every invalid answer, each as one line naming the answer and what is allowed."""
    errors = []
    slug = answers["project_slug"]
    if not SLUG.match(slug):
        errors.append(
            f"project_slug {slug!r} is invalid: use lowercase letters, digits and single '-' "
            "between them, starting with a letter (e.g. 'churn-model')"
        )
    package = answers["package_name"]
    if not PACKAGE.match(package) or keyword.iskeyword(package):
        errors.append(
            f"package_name {package!r} is invalid: use lowercase letters, digits and '_', "
            "starting with a letter (e.g. 'churn_model')"
        )
    for name, allowed in CHOICES.items():
        if answers[name] not in allowed:
            errors.append(f"{name} {answers[name]!r} is not supported: choose one of {', '.join(allowed)}")
    errors += remote_errors(answers["dvc_remote"], answers["dvc_remote_url"].strip())
    if answers["dataset"] == "csv":
        errors += csv_errors(answers, base_dir)
    return errors


def remote_errors(remote: str, url: str) -> list[str]:
    if remote == "none":
        return []
    if not url:
        return [f"dvc_remote_url is empty: dvc_remote {remote!r} needs a URL"]
    scheme = REMOTE_SCHEMES.get(remote)
    if scheme and not url.startswith(scheme):
        return [f"dvc_remote_url {url!r} does not fit dvc_remote {remote!r}: it must start with {scheme}"]
    if remote == "local" and "://" in url:
        return [f"dvc_remote_url {url!r} is not a folder: dvc_remote 'local' needs a path"]
    return []


def csv_errors(answers: dict, base_dir: Path) -> list[str]:
    csv_path = answers["csv_path"].strip()
    target = answers["target"].strip()
    if not csv_path:
        return ["csv_path is empty: dataset 'csv' needs the path of your CSV file"]
    if not target:
        return ["target is empty: dataset 'csv' needs the name of the target column"]
    path = resolve_csv(csv_path, base_dir)
    if not path.is_file():
        return [f"csv_path {csv_path!r} does not exist (looked at {path})"]
    header = read_header(path)
    if not header:
        return [f"csv_path {csv_path!r} has no header row: the first line must name the columns"]
    wanted = [("target", target)]
    wanted += [
        ("sensitive_features", f.strip()) for f in answers["sensitive_features"].split(",") if f.strip()
    ]
    if answers["time_column"].strip():
        wanted.append(("time_column", answers["time_column"].strip()))
    return [
        f"{answer} {column!r} is not a column of {path.name}: columns are {', '.join(header)}"
        for answer, column in wanted
        if column not in header
    ]


def resolve_csv(csv_path: str, base_dir: Path) -> Path:
    path = Path(csv_path).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def read_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | jsonify }}""")
    # Relative CSV paths mean: relative to where cookiecutter was started.
    base_dir = Path(os.environ.get("PWD", os.getcwd()))
    errors = answer_errors(answers, base_dir)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
