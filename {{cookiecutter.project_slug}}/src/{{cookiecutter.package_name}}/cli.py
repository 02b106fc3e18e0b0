"""One entry point: `{{ cookiecutter.package_name }} <command>` for every pipeline stage and tool.

The commands live in commands/, one module per concern; here they are put together.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .commands import pipeline, production, registry, report, serving
from .config.settings import load_settings
from .paths import Paths
from .pipeline.stage import StageFailed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (default: here)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    adders = (
        pipeline.add_pipeline_commands,
        registry.add_registry_commands,
        serving.add_serve_command,
        serving.add_predict_command,
        production.add_feedback_command,
        production.add_monitor_command,
        serving.add_explain_command,
        report.add_report_command,
        report.add_test_score_command,
        report.add_staleness_command,
        report.add_plots_command,
        pipeline.add_tools,
    )
    for add in adders:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths(args.root.resolve())
    try:
        settings = load_settings(paths.params) if getattr(args, "needs_settings", True) else None
        return args.handler(settings, paths, args) or 0
    except (StageFailed, ValueError) as err:  # every refusal of bad settings or data is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
