"""The README's table of answers, generated from cookiecutter.json: each answer's default and its
`_help` text (what is allowed, what it means). `make docs` writes it into README.md between the
markers; tests/test_docs.py fails when the README's table is not the one generated.

Run: uv run python tools/answers_table.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- answers: generated from cookiecutter.json by `make docs`; edit its _help, not this table -->"
END = "<!-- end of the generated answers -->"
DERIVED = re.compile(r"cookiecutter\.(\w+)")


def answers(cookiecutter: dict) -> dict[str, object]:
    """The answers a user gives (cookiecutter.json's keys without a leading `_`), in order."""
    return {name: value for name, value in cookiecutter.items() if not name.startswith("_")}


def missing_help(cookiecutter: dict) -> list[str]:
    """Answers without a `_help` text, and `_help` texts of no answer."""
    helped, asked = set(cookiecutter.get("_help", {})), set(answers(cookiecutter))
    return [f"{name} has no _help text" for name in sorted(asked - helped)] + [
        f"_help.{name} is no answer" for name in sorted(helped - asked)
    ]


def default_cell(value: object) -> str:
    """A choice's first value, `from <answer>` for a default derived from another, or the value."""
    if isinstance(value, list):
        return str(value[0])
    derived = DERIVED.search(str(value))
    return f"from `{derived.group(1)}`" if derived else str(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(cookiecutter: dict) -> str:
    rows = ["| answer | default | allowed / meaning |", "|---|---|---|"]
    for name, value in answers(cookiecutter).items():
        rows.append(f"| `{name}` | {cell(default_cell(value))} | {cell(cookiecutter['_help'][name])} |")
    return "\n".join(rows)


def with_table(readme: str, generated: str) -> str:
    """The README with its generated block replaced; ValueError when the markers are missing."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {BEGIN!r} ... {END!r} block")
    return readme[: start + len(BEGIN)] + "\n" + generated + "\n" + readme[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if README.md's table is not the generated one"
    )
    options = parser.parse_args()
    cookiecutter = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    problems = missing_help(cookiecutter)
    if problems:
        print(f"error: cookiecutter.json: {'; '.join(problems)}", file=sys.stderr)
        return 1
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    try:
        updated = with_table(readme, table(cookiecutter))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if options.check:
        if updated != readme:
            print(
                "error: README.md's answers table differs from cookiecutter.json: run `make docs`",
                file=sys.stderr,
            )
            return 1
        return 0
    readme_path.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
