"""After the files are written: bring in the user's CSV (git or DVC), lock, record where the
template came from (.cruft.json, for updates), git init, the first run (`make baseline`), the
first commit."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path("data/external/source.csv")
# What an update (`cruft update`) leaves alone: written by the bake and by `make install`, not
# by the template. Bake-time actions are recorded as done, so an update's renders never run them.
UPDATE_SKIPS = ["uv.lock", ".cookiecutter.json"]
BAKE_ACTIONS_DONE = {"init_git": "no", "first_run": "no"}


# Without a shared DVC remote (none, or a folder on this machine), a CSV is committed to git:
# else the data would never reach CI or the pull-request gate. pre_gen_project.py refuses one
# over the size git holds well.
GIT_REMOTES = ("none", "local")


def bring_in_csv(source: Path, project: Path, remote: str) -> None:
    if remote in GIT_REMOTES:
        commit_with_git(source, project)
    else:
        track_with_dvc(source, project)


def commit_with_git(source: Path, project: Path) -> None:
    """Copy the user's file in, as a file git tracks (the first commit holds it)."""
    target = project / SOURCE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def track_with_dvc(source: Path, project: Path) -> None:
    """Copy the user's file in and track it the way `dvc add` does (md5 .dvc file + cache)."""
    target = project / SOURCE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    digest = hashlib.md5(target.read_bytes()).hexdigest()
    cached = project / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target, cached)
    target.with_name(target.name + ".dvc").write_text(
        f"outs:\n- md5: {digest}\n  size: {target.stat().st_size}\n  hash: md5\n  path: {target.name}\n",
        encoding="utf-8",
    )
    (target.parent / ".gitignore").write_text(f"/{target.name}\n", encoding="utf-8")


def find_uv() -> str | None:
    """uv, unless it is a pyenv shim (a shim follows .python-version and may not find uv)."""
    uv = shutil.which("uv")
    return None if uv is None or "/shims/" in uv else uv


def lock(project: Path) -> None:
    uv = find_uv()
    if uv is None:
        print("note: uv not found; `make install` will write uv.lock", file=sys.stderr)
        return
    result = subprocess.run([uv, "lock", "--quiet"], cwd=project, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"note: `uv lock` failed; run it yourself: {result.stderr.strip()}", file=sys.stderr)


FIRST_RUN = ["make", "baseline"]


def first_run(project: Path) -> bool:
    """Run the pipeline once, so the first commit holds results (dvc.lock, metrics, slices, the
    data contract and the known examples) for the first pull request to be compared with.
    Never fatal: a failure leaves the project as baked and says how to finish."""
    finish = "run `make baseline` in the project, then commit what it wrote"
    missing = [tool for tool, found in (("uv", find_uv()), ("make", shutil.which("make"))) if not found]
    if missing:
        print(f"note: first run skipped, {' and '.join(missing)} not found: {finish}", file=sys.stderr)
        return False
    if not in_git_work_tree(project):
        print(
            "note: first run skipped, DVC needs a git repository (init_git=no): "
            "run `git init` and `make baseline` in the project, then commit what it wrote",
            file=sys.stderr,
        )
        return False
    print("first run: make baseline (install, data contract, pipeline, known examples), a minute or two")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(FIRST_RUN, cwd=project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(
            f"note: the first run failed ({last_error(result.stdout + result.stderr)}): {finish}",
            file=sys.stderr,
        )
        return False
    return True


def in_git_work_tree(project: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=project, capture_output=True, text=True
    )
    return result.stdout.strip() == "true"


def last_error(output: str) -> str:
    """The failed command's last line: make's own `make: ***` lines only name the target."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("make")]
    return lines[-1] if lines else "no output"


def git(project: Path, *args: str, author: tuple[str, str]) -> None:
    env = dict(os.environ)
    # Use the answers only where git has no identity configured.
    for key, value in (("NAME", author[0]), ("EMAIL", author[1])):
        for role in ("AUTHOR", "COMMITTER"):
            if not _git_config(f"user.{key.lower()}"):
                env.setdefault(f"GIT_{role}_{key}", value)
    subprocess.run(["git", *args], cwd=project, check=True, env=env, capture_output=True)


def _git_config(key: str) -> str:
    result = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
    return result.stdout.strip()


def start_dir() -> Path:
    """Where cookiecutter was started: relative paths given to it (a CSV, the template) are from there."""
    return Path(os.environ.get("PWD", os.getcwd()))


def template_folder(answers: dict) -> Path | None:
    """The template cookiecutter baked from; none when cruft renders the template for an update."""
    folder = answers.get("_repo_dir")
    return start_dir() / folder if folder else None  # relative to where cookiecutter started


def template_source(answers: dict, checkout: Path) -> tuple[str, str] | None:
    """(where the template can be cloned from, the commit baked), when the template is a git
    checkout: a GitHub URL (gh:owner/name is expanded) or the local checkout's absolute path."""
    found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True)
    if found.returncode != 0:
        return None
    template = str(answers.get("_template") or "")
    if template.startswith("gh:"):
        template = f"https://github.com/{template[3:]}.git"
    elif "://" not in template and not template.startswith("git@"):
        template = str(checkout.resolve())
    return template, found.stdout.strip()


def cruft_state(answers: dict, template: str, commit: str) -> dict:
    """.cruft.json: what `cruft update` needs to bring this template's later changes in."""
    given = {key: value for key, value in answers.items() if not key.startswith("_")}
    return {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": given | BAKE_ACTIONS_DONE | {"_template": template}},
        "directory": None,
        "skip": UPDATE_SKIPS,
    }


def workflows_note(project: Path, template: Path) -> str | None:
    """One line when the baked CI calls the placeholder repository (the defaults, not baked from GitHub)."""
    placeholder = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))["workflows_repo"]
    caller = project / ".github" / "workflows" / "ci.yml"
    if f"uses: {placeholder}/" not in caller.read_text(encoding="utf-8"):
        return None
    return (
        f"note: CI calls mlgate's workflows at {placeholder}, a placeholder: answer workflows_repo "
        "(owner/name) and workflows_ref (a tag or commit), or bake with `cookiecutter gh:<owner>/<name>`, "
        "before CI can run"
    )


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | jsonify }}""")
    project = Path.cwd()
    if answers["dataset"] == "csv":
        source = Path(answers["csv_path"].strip()).expanduser()
        bring_in_csv(start_dir() / source, project, answers["dvc_remote"])  # an absolute path stays
    lock(project)
    template = template_folder(answers)
    origin = template_source(answers, template) if template else None
    if origin:
        state = cruft_state(answers, *origin)
        (project / ".cruft.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    author = (answers["author_name"], answers["author_email"])
    if answers["init_git"] == "yes":
        git(project, "init", "--quiet", "-b", "main", author=author)  # before the run: it records the commit
    # An update's render (no template folder) is no bake: its first run was done at the bake.
    ran = answers["first_run"] == "yes" and template is not None and first_run(project)
    if answers["init_git"] == "yes":
        git(project, "add", "--all", author=author)
        message = "Initial project from the mlgate template" + (", with its first run" if ran else "")
        git(project, "commit", "--quiet", "-m", message, author=author)
    note = workflows_note(project, template) if template else None
    if note:
        print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
