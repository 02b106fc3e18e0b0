"""The pipeline's commands: one per DVC stage, `repro` and `check`, and the tools that write a
first version of a file for a person to review (schema, known examples, feature costs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.settings import Settings
from ..paths import Paths
from ..pipeline.stage import StageFailed, relative


def cmd_stage(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """A pipeline stage, as dvc.yaml runs it (`python -m <package>.pipeline <stage>`), once the
    whole of params.yaml is valid (as the check stage would find it)."""
    import importlib

    stage = importlib.import_module(f"..pipeline.{args.command}", __package__)
    return stage.main(paths.root)


def cmd_schema_infer(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from ..pipeline.ingest import ingest
    from ..schema import dump_contract, infer_contract

    if paths.contract.exists() and not args.force and _has_columns(paths.contract):
        if args.if_empty:
            print(f"schema infer: {relative(paths.contract, paths)} already has columns; kept")
            return
        raise StageFailed(
            f"{relative(paths.contract, paths)} already has columns; pass --force to overwrite it"
        )
    contract = infer_contract(ingest(settings.data, paths.root))
    paths.contract.write_text(
        "# The data contract, inferred from the data: review every bound and category, then commit.\n"
        + dump_contract(contract),
        encoding="utf-8",
    )
    print(f"schema infer: {len(contract.columns)} columns -> {relative(paths.contract, paths)}")


def cmd_examples_record(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from ..examples import record, recorded_examples

    where = relative(paths.known_examples, paths)
    existing = recorded_examples(paths.known_examples)
    if existing and not args.force:
        if args.if_empty:
            print(f"examples record: {where} already has {len(existing)} examples; kept")
            return
        raise StageFailed(f"{where} already has {len(existing)} examples; pass --force to replace them")
    count = record(settings, paths, args.count)
    print(f"examples record: {count} examples from the test set -> {where}: review them, then commit")


def cmd_features_cost(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """Each input's cost on the test set, against features.budget: exit 0 within it, 1 over it."""
    from ..artifacts import MODEL_FILE, load_model
    from ..data import read_frame
    from ..feature_cost import cost_table, feature_costs, over_budget

    for needed in (paths.model / MODEL_FILE, paths.test):
        if not needed.is_file():
            raise StageFailed(f"{relative(needed, paths)} not found: run the pipeline (`dvc repro`) first")
    costs = feature_costs(load_model(paths.model), read_frame(paths.test), settings.features.repeats)
    print(cost_table(costs, settings.features.budget))
    problems = over_budget(costs, settings.features.budget)
    for problem in problems:
        print(f"over budget: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _has_columns(path: Path) -> bool:
    from ..schema import load_contract

    return bool(load_contract(path).columns)


def cmd_check(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """The first stage: every problem in params.yaml and the inputs, one `error:` line each."""
    from ..pipeline import check

    return check.run(paths)


def cmd_repro(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """dvc repro that puts every declared output and dvc.lock back when it fails; dvc's exit code."""
    from .. import repro

    if any(word in repro.HELP for word in args.words):
        print(repro.usage(repro.stage_names(repro.read_pipeline(paths.root))))
        return 0
    return repro.run(paths.root, args.words)


STAGES = {
    "ingest": "write the raw data to data/raw",
    "validate": "check the raw data against the contract in schema.yaml",
    "split": "split the raw data into train and test sets",
    "tune": "search train.model's hyperparameters (Optuna, cross-validated), write reports/tuning.json",
    "train": "fit the model, log it to MLflow, save it to models/model",
    "evaluate": "write metrics.json, slice metrics and plot data",
    "backtest": "quality against model age and the maximum age: reports/staleness.json",
}


def add_pipeline_commands(commands) -> None:
    # check reads params.yaml itself, to report every problem in it at once.
    commands.add_parser(
        "check", help="the first stage: params.yaml and the input data against what every stage needs"
    ).set_defaults(handler=cmd_check, needs_settings=False)
    for name, help_text in STAGES.items():
        commands.add_parser(name, help=help_text).set_defaults(handler=cmd_stage)
    # "+" as the option prefix: every word, "-f" included, reaches repro's allowlist as given.
    # No settings: the check stage reports a broken params.yaml, and nothing is lost by then.
    repro = commands.add_parser(
        "repro",
        prefix_chars="+",
        add_help=False,
        help="dvc repro [flags] [stage ...]; on failure the last good outputs and dvc.lock are kept",
    )
    repro.add_argument("words", nargs="*", help="dvc repro flags and stage names (-h for the list)")
    repro.set_defaults(handler=cmd_repro, needs_settings=False)


def add_tools(commands) -> None:
    """The helpers that write a first version of a file for a person to review."""
    schema = commands.add_parser("schema", help="tools for the data contract")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True, metavar="command")
    infer = schema_commands.add_parser("infer", help="write a first schema.yaml from the data")
    add_overwrite_flags(infer, "a contract that has columns")
    infer.set_defaults(handler=cmd_schema_infer)
    examples = commands.add_parser("examples", help="tools for the known examples (tests/model)")
    examples_commands = examples.add_subparsers(dest="examples_command", required=True, metavar="command")
    record = examples_commands.add_parser(
        "record", help="propose known examples from the test set, with the model's outputs as bounds"
    )
    record.add_argument("--count", type=example_count, default=5, help="how many (1 to 20, default 5)")
    add_overwrite_flags(record, "examples already there")
    record.set_defaults(handler=cmd_examples_record)
    features = commands.add_parser("features", help="tools for the model's inputs")
    features_commands = features.add_subparsers(dest="features_command", required=True, metavar="command")
    features_commands.add_parser(
        "cost",
        help="each input's transform time, share of predict time and encoding size against features.budget",
    ).set_defaults(handler=cmd_features_cost)


def add_overwrite_flags(parser: argparse.ArgumentParser, what: str) -> None:
    either = parser.add_mutually_exclusive_group()
    either.add_argument("--force", action="store_true", help=f"overwrite {what}")
    either.add_argument("--if-empty", action="store_true", help=f"keep {what} and succeed (a first run)")


def example_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count from 1 to 20")
    return int(text)
