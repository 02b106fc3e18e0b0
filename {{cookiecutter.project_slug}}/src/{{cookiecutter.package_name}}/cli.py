"""One entry point: `{{ cookiecutter.package_name }} <command>` for every pipeline stage and tool.

Each command is thin: read files and settings, call a pure function, write files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from .config.settings import Settings, load_settings
from .paths import Paths
from .pipeline.stage import StageFailed, relative, write_json

# What command-line values may be. They arrive from people, make and workflows (a dispatch
# input, a branch name): anything else is refused before it is used.
VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
# A branch, tag or commit, optionally with ~n / ^n: git allows more (backticks, `$(`, `;`),
# which no gate needs.
GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]{1,200}(?:[~^][0-9]{0,3})*$")
# A reason recorded as an MLflow tag: printable, no line break, no control character.
REASON = re.compile(r"^[^\x00-\x1f\x7f]{3,200}$")
RELOAD_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(?::[0-9]{1,5})?/?$")


def checked_version(text: str | None, allow_previous: bool = False) -> str | None:
    """A registered version number (or, for rollback, "previous" = None); else StageFailed."""
    if text in (None, "") or (allow_previous and text == "previous"):
        return None
    if not VERSION.fullmatch(text):
        also = " or 'previous'" if allow_previous else ""
        raise StageFailed(f"--version {_shown(text)} is not a version: use a number (e.g. 3){also}")
    return text


def checked_reason(text: str) -> str:
    """Why a version is promoted without the canary: one line of plain text, recorded as a tag."""
    if not REASON.fullmatch(text):
        raise StageFailed(
            f"--force {_shown(text)} is not a reason: give one line of 3 to 200 printable characters, "
            'e.g. --force "hotfix for incident 42, canary skipped"'
        )
    return text


def checked_ref(text: str) -> str:
    if not GIT_REF.fullmatch(text) or text.endswith((".", "/", ".lock")):
        raise StageFailed(
            f"--base {_shown(text)} is not a ref the gate takes: a branch, tag or commit of letters, "
            "digits, '.', '_', '-' and '/' (optionally ~n), e.g. main or HEAD~1"
        )
    return text


def checked_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not RELOAD_URL.fullmatch(url):
            raise StageFailed(
                f"--reload {_shown(url)} is not a server address: use http(s)://host:port, e.g. "
                "http://127.0.0.1:8000"
            )
    return urls


def _shown(text: str, width: int = 60) -> str:
    """A value for an error line: quoted, control characters escaped, cut when long."""
    return repr(text if len(text) <= width else text[:width] + "…")


def cmd_stage(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """A pipeline stage, as dvc.yaml runs it (`python -m <package>.pipeline <stage>`), once the
    whole of params.yaml is valid (as the check stage would find it)."""
    import importlib

    stage = importlib.import_module(f"{__package__}.pipeline.{args.command}")
    return stage.main(paths.root)


def cmd_report(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Exit 0 when the gate passes, 1 when it fails, 2 when the comparison cannot be made.

    The policy is the base's (`--policy base`, for pull requests) unless the event approves
    the pull request's own (see gate/policy.py); `--policy workspace` takes this tree's (a merged
    commit on main). With `--results DIR` the pull request's results are judged in this tree
    (a checkout of the base). Writes the markdown to --output (and --summary or
    $GITHUB_STEP_SUMMARY) and the verdict to --json in every case, an error report included,
    so a pull-request comment never keeps a stale verdict and a workflow can tell "fail"
    from "error" (make turns both into exit 2).
    """
    from .config.reading import ConfigError
    from .gate.compare import NoResults, ReportError, read_predictions, take_results
    from .gate.judge import gate_record, judge
    from .gate.policy import PolicyNote, policy_changes, read_policy
    from .gate.render import render, render_error

    base = args.base
    commit = _judged_commit(paths, args)
    try:
        checked_ref(base)
        if args.results is not None:
            take_results(args.results, paths.root)
        base_policy = read_policy(paths.root, base)
        own_policy = read_policy(paths.root, None)
        comparison = _comparison(paths.root, base, handed_over=args.results is not None)
    except (ReportError, ConfigError, StageFailed) as err:
        message = " ".join(str(err).split())
        report = render_error(base, message, pipeline_failed=isinstance(err, NoResults))
        _write_report(report, gate_record(None, None, message, commit=commit), args)
        print(f"error: {message}", file=sys.stderr)
        return 2
    note = None
    if args.policy == "workspace":
        policy = own_policy
    else:
        note = PolicyNote(policy_changes(base_policy, own_policy), _approval(args.event))
        policy = own_policy if note.applied else base_policy
    rows = None if comparison.unchanged else read_predictions(paths.root, comparison.revision)
    noise = _noise(rows, policy.gate) if comparison.has_baseline else None
    verdict = judge(comparison, policy, noise)
    shown = _curves(rows) if isinstance(rows, tuple) else None
    markdown = render(comparison, verdict, policy, note, staleness=_staleness(paths), curves=shown)
    _write_report(markdown, gate_record(comparison, verdict, note=note, commit=commit), args)
    _print_verdict(verdict, note, args.output)
    return 0 if verdict.passed else 1


def _print_verdict(verdict, note, output: Path) -> None:
    """The log's lines: the policy change and whether it applied, each finding, where the report went."""
    if note is not None and note.changes:
        state = "applied" if note.applied else "not applied"
        print(f"report: this change sets {len(note.changes)} policy key(s), {state}: {note.approval.note}")
    for finding in verdict.findings:
        print(f"gate: {finding.check} {finding.metric}: {finding.old} -> {finding.new} ({finding.limit})")
    print(f"report: gate {'passed' if verdict.passed else 'failed'} -> {output}")


def _noise(rows, gate):
    """How the changes are told from noise: the predictions resampled, or why they cannot be."""
    from .gate.compare import noise_of
    from .gate.noise import Unjudged

    if rows is None or isinstance(rows, Unjudged):
        return rows
    return noise_of(rows, gate)


def _curves(rows):
    """The base's and this pull request's curves, for the report's charts (gate/curves.py)."""
    from .gate.curves import curves

    return curves(*rows)


def _staleness(paths: Paths) -> dict | None:
    """This tree's reports/staleness.json (the pull request's, when handed over); None without one."""
    from .staleness import StalenessUnknown, read_report

    try:
        return read_report(paths.staleness)
    except StalenessUnknown:
        return None


def _comparison(root: Path, base: str, handed_over: bool):
    """The workspace against the base's results: committed, or the base reproduced (gate/baseline.py)."""
    from .gate.baseline import baseline
    from .gate.compare import compare, results_uncommitted

    found = baseline(root, base)
    return dataclasses.replace(
        compare(root, base, found.revision),
        reproduced=found.reproduced,
        reproduce_failed=found.failed,
        results_uncommitted=results_uncommitted(root, handed_over),
    )


def _approval(event_file: str | None):
    """The approval of a policy change that the workflow's event carries (none outside CI)."""
    from .gate.policy import approval_from_event

    event = None
    if event_file:
        try:
            event = json.loads(Path(event_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = None
    return approval_from_event(event)


def _judged_commit(paths: Paths, args: argparse.Namespace) -> str | None:
    """The commit the verdict is on: this tree's, unless the results came from elsewhere (--results)."""
    from .provenance import git_commit

    return None if args.results is not None else git_commit(paths.root)


def _write_report(markdown: str, record: dict, args: argparse.Namespace) -> None:
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown, encoding="utf-8")
    write_json(args.json, record)
    summary = args.summary or os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")


def cmd_register(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from .deploy.registry import CHALLENGER, register, with_absolute_store

    registered = _registry_call(register, with_absolute_store(settings, paths.root), paths)
    print(
        f"register: {settings.mlflow.registered_model} version {registered.version} "
        f"({registered.source}) is the {CHALLENGER}"
    )
    print(f"register: its model card is {registered.card} (`card --version {registered.version}` prints it)")


def cmd_promote(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    from .deploy.registry import CHAMPION, promote, with_absolute_store

    version, urls = checked_version(args.version), checked_urls(args.reload)
    force = checked_reason(args.force) if args.force is not None else None
    move = _registry_call(promote, with_absolute_store(settings, paths.root), version, force)
    if force is not None:
        print(f"promote: without the canary's pass, for the recorded reason {force!r}")
    was = f" (was {move.replaced})" if move.replaced else " (the first)"
    print(f"promote: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION}{was}")
    return _reload_servers(urls)


def cmd_rollback(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    from .deploy.registry import CHAMPION, rollback, with_absolute_store

    version, urls = checked_version(args.version, allow_previous=True), checked_urls(args.reload)
    move = _registry_call(rollback, with_absolute_store(settings, paths.root), version)
    print(
        f"rollback: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION} again "
        f"(was {move.replaced})"
    )
    return _reload_servers(urls)


def cmd_card(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Print a version's model card (markdown); in a workflow, also append it to the job summary."""
    from .deploy.model_card import escaped
    from .deploy.registry import version_card, with_absolute_store

    version = checked_version(args.version)
    card = _registry_call(version_card, with_absolute_store(settings, paths.root), version)
    text = f"{card.markdown}\nKept in MLflow as {escaped(card.location, 300)}\n"
    print(text, end="")
    _append_env_file("GITHUB_STEP_SUMMARY", text)


def _reload_servers(urls: list[str]) -> int:
    """POST /admin/reload to each running server so it serves the new champion now; 1 if one fails."""
    from .deploy.registry import reload_server
    from .tracking import RegistryError

    failed = 0
    for url in urls:
        try:
            answer = reload_server(url)
        except RegistryError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"reload: {url} serves model {answer.get('model_version')}")
    return 1 if failed else 0


def cmd_status(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from .deploy.registry import champion_history, format_status, status, with_absolute_store

    settings = with_absolute_store(settings, paths.root)
    from .metrics import HEADLINE

    metric = HEADLINE[settings.task]
    print(f"{settings.mlflow.registered_model} at {settings.mlflow.tracking_uri}")
    print(format_status(_registry_call(status, settings), metric))
    history = _registry_call(champion_history, settings)
    if history:
        print(f"champion history (oldest first): {' -> '.join(history)}")


def cmd_canary(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """Exit 0: the challenger passed (and was promoted, with --promote); 1: refused; 2: could not run."""
    from .deploy.canary import CanaryError, format_run, run_canary, run_from_log
    from .deploy.registry import CHAMPION, promote, record_canary, with_absolute_store
    from .deploy.servers import ServerError
    from .tracking import RegistryError

    settings = with_absolute_store(settings, paths.root)
    try:
        run = run_from_log(settings, paths) if args.from_log else run_canary(settings, paths)
        # On the version, for `promote`: only what the canary passed is promoted without a reason.
        record_canary(settings, run.challenger, run.verdict.passed, run.champion, run.verdict.figures)
    except (CanaryError, ServerError, RegistryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_run(run))
    if args.output:
        write_json(args.output, run.as_dict())
    # In a workflow: the version for the promote job, the table for the job summary.
    verdict = "pass" if run.verdict.passed else "refused"
    _append_env_file("GITHUB_OUTPUT", f"challenger={run.challenger}\nverdict={verdict}\n")
    _append_env_file("GITHUB_STEP_SUMMARY", f"## Canary\n\n```\n{format_run(run)}\n```\n")
    if not run.verdict.passed:
        return 1
    if args.promote:
        move = _registry_call(promote, settings, run.challenger)
        print(f"promote: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION}")
    return 0


def _append_env_file(variable: str, text: str) -> None:
    """Append to the file a workflow runner names in `variable` (GITHUB_OUTPUT, ...), if any."""
    path = os.environ.get(variable)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def cmd_explain(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """One row step by step (serving/explain.py); exit 2 when the row is not one the model takes."""
    from .schema import load_contract
    from .serving.errors import ServeError
    from .serving.explain import ExplainError, explain, parse_row, render_text, validate_row
    from .serving.sources import LocalSource, parse_source

    try:
        row = parse_row(*_row_text(args))
        source = parse_source(args.model, settings, paths) if args.model else LocalSource(paths.model)
        contract = load_contract(paths.contract)
        try:
            served = source.load(contract)
        except ServeError as err:
            raise StageFailed(str(err)) from None
        explanation = explain(
            served.pipeline, validate_row(row, contract, list(served.inputs)), served.version
        )
    except ExplainError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(explanation.as_dict(), indent=2) if args.json else render_text(explanation))
    return 0


def _row_text(args: argparse.Namespace) -> tuple[str, str]:
    """The row's JSON text and where it came from: --row-json, a file, or - (standard input)."""
    from .serving.explain import ExplainError

    if (args.row is None) == (args.row_json is None):
        raise ExplainError("give the row once: a JSON file, - for standard input, or --row-json '{...}'")
    if args.row_json is not None:
        return args.row_json, "--row-json"
    if args.row == "-":
        return sys.stdin.read(), "standard input"
    try:
        return Path(args.row).read_text(encoding="utf-8"), args.row
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ExplainError(f"{_shown(args.row)}: cannot be read ({reason})") from None


def add_explain_command(commands) -> None:
    explain = commands.add_parser(
        "explain",
        help="one row step by step: each pipeline step's output, the scores, each feature's contribution",
    )
    explain.add_argument(
        "row", nargs="?", help="a JSON file holding one row (column -> value), or - for stdin"
    )
    explain.add_argument("--row-json", metavar="JSON", help="the row as JSON text instead of a file")
    explain.add_argument(
        "--model",
        metavar="SOURCE",
        help="a model directory, models:/NAME@ALIAS or models:/NAME/VERSION (default: models/model)",
    )
    explain.add_argument("--json", action="store_true", help="print JSON instead of text")
    explain.set_defaults(handler=cmd_explain)


def cmd_serve(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from .serving.server import run

    challenger = "" if args.no_challenger else args.challenger
    run(settings, paths, args.model, args.host, args.port, log=not args.no_log, challenger=challenger)


def _registry_call(function, *args):
    from .tracking import RegistryError

    try:
        return function(*args)
    except RegistryError as err:
        raise StageFailed(str(err)) from None


def cmd_schema_infer(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from .pipeline.ingest import ingest
    from .schema import dump_contract, infer_contract

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
    from .examples import record, recorded_examples

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
    from .artifacts import MODEL_FILE, load_model
    from .data import read_frame
    from .feature_cost import cost_table, feature_costs, over_budget

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
    from .schema import load_contract

    return bool(load_contract(path).columns)


def cmd_check(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """The first stage: every problem in params.yaml and the inputs, one `error:` line each."""
    from .pipeline import check

    return check.run(paths)


def cmd_repro(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """dvc repro that puts every declared output and dvc.lock back when it fails; dvc's exit code."""
    from . import repro

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (default: here)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    adders = (
        add_pipeline_commands,
        add_registry_commands,
        add_serve_command,
        add_feedback_command,
        add_monitor_command,
        add_explain_command,
        add_report_command,
        add_test_score_command,
        add_staleness_command,
        add_plots_command,
        add_tools,
    )
    for add in adders:
        add(commands)
    return parser


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


def add_registry_commands(commands) -> None:
    commands.add_parser("register", help="register models/model as the challenger").set_defaults(
        handler=cmd_register
    )
    status = commands.add_parser("status", help="registered versions and their aliases")
    status.set_defaults(handler=cmd_status)
    card = commands.add_parser(
        "card", help="print a version's model card (markdown; in a workflow, also to the job summary)"
    )
    card.add_argument("--version", help="a registered version number (default: the challenger)")
    card.set_defaults(handler=cmd_card)
    for name, handler, help_text in (
        ("promote", cmd_promote, "make the challenger (or --version) the champion"),
        ("rollback", cmd_rollback, "move the champion back to the version it replaced (or --version)"),
    ):
        command = commands.add_parser(name, help=help_text)
        also = ' (or "previous", the default)' if name == "rollback" else ""
        command.add_argument("--version", help=f"a registered version number{also}")
        if name == "promote":
            command.add_argument(
                "--force",
                metavar="REASON",
                help="promote a version the canary has not passed; the version records the reason",
            )
        command.add_argument(
            "--reload",
            action="append",
            default=[],
            metavar="URL",
            help="then POST URL/admin/reload so that server serves the new champion now (repeatable)",
        )
        command.set_defaults(handler=handler)
    canary = commands.add_parser(
        "canary", help="serve the challenger, replay recent requests to it and the champion, judge"
    )
    canary.add_argument("--promote", action="store_true", help="promote the challenger if it passes")
    canary.add_argument("--output", type=Path, help="also write the verdict as JSON here")
    canary.add_argument(
        "--from-log",
        action="store_true",
        help="judge on the trusted requests the challenger scored in shadow (serving.shadow), no replay",
    )
    canary.set_defaults(handler=cmd_canary)


def add_serve_command(commands) -> None:
    serve = commands.add_parser("serve", help="serve the champion (or models/model, or --model) over HTTP")
    serve.add_argument(
        "--model",
        metavar="SOURCE",
        help="models:/NAME@ALIAS, models:/NAME/VERSION or a model directory "
        "(default: models:/<mlflow.registered_model>@<serving.alias> if registered, else models/model)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-log", action="store_true", help="do not write the prediction log (serving.log)")
    second = serve.add_mutually_exclusive_group()
    second.add_argument(
        "--challenger",
        metavar="SOURCE",
        help="the second model, as --model (default: the alias serving.shadow or serving.split.alias names)",
    )
    second.add_argument("--no-challenger", action="store_true", help="serve one model, whatever params say")
    serve.set_defaults(handler=cmd_serve)


def add_feedback_command(commands) -> None:
    feedback = commands.add_parser("feedback", help="delayed labels of served rows (the labels store)")
    actions = feedback.add_subparsers(dest="action", required=True, metavar="action")
    imported = actions.add_parser(
        "import", help="append the labels of FILE (.csv with request_id,label[,row], or .jsonl): all or none"
    )
    imported.add_argument("file", type=Path, metavar="FILE")
    imported.set_defaults(handler=cmd_feedback_import)
    exported = actions.add_parser(
        "export", help="append the labelled rows of trusted requests to data/feedback/labelled.csv"
    )
    exported.set_defaults(handler=cmd_feedback_export)


def cmd_feedback_import(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Check every label against the prediction log and the store; store them all, or none (exit 1)."""
    from .feedback import FeedbackError, accept, label_folder, parse_items, read_items, ship_labels, summary
    from .served_log import local_folder, remote, shipped_labels, shown

    log = settings.serving.log
    labels, problems = parse_items(read_items(args.file))
    store, ship_to = label_folder(log, paths), shipped_labels(log)
    problems = accept(
        labels, local_folder(log, paths), store, f"import:{args.file.name}", problems, remote(log.uri)
    )
    if problems:
        raise FeedbackError(f"{args.file}: {summary(problems)}")
    shipped = ""
    if ship_to is not None:
        shipped = f", shipped to {ship_to}" if ship_labels(store, ship_to) else f", NOT shipped to {ship_to}"
    print(f"feedback: {len(labels)} label(s) stored in {shown(store, paths.root)}{shipped}")


def cmd_feedback_export(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Append each labelled row not exported before; all of them pass the contract, or none is written."""
    from .feedback import label_folder
    from .feedback_rows import (
        GIT_MAX_BYTES,
        append,
        as_training_frame,
        checked,
        default_remote_url,
        exported_ids,
        kept_on_remote,
        labelled_rows,
        new_rows,
        track_with_dvc,
    )
    from .monitoring.window import stored_labels
    from .schema import load_contract
    from .served_log import local_folder, newest_records, shown

    log = local_folder(settings.serving.log, paths)
    kept = [name for name, rule in settings.serving.log.context.items() if rule == "keep"]
    labels = stored_labels(label_folder(settings.serving.log, paths))
    records = reversed(list(newest_records(log)))  # oldest first
    rows = labelled_rows(records, labels, settings.data.target, kept)
    rows = new_rows(rows, exported_ids(paths.feedback))
    where = shown(paths.feedback, paths.root)
    storage = ""
    if rows:
        contract = load_contract(paths.contract)
        frame = as_training_frame(rows, contract)
        checked(frame, contract, where)
        append(paths.feedback, frame)
        remote = default_remote_url(paths.root)
        if kept_on_remote(remote):
            tracked = track_with_dvc(paths.feedback, paths.root)
            storage = f" (DVC-tracked: {shown(tracked, paths.root)}; `dvc push` sends it to {remote})"
        elif paths.feedback.stat().st_size > GIT_MAX_BYTES:
            storage = f" (over {GIT_MAX_BYTES // 1_000_000} MB for git: add a DVC remote CI can reach)"
    used = "`dvc repro` trains on them" if settings.data.include_feedback else "data.include_feedback is off"
    print(f"feedback: {len(rows)} new labelled row(s) -> {where}{storage}; {used}")


def add_monitor_command(commands) -> None:
    watched = commands.add_parser(
        "monitor", help="the prediction log's last hours against training: drift, answers, online quality"
    )
    watched.add_argument("--hours", type=float, help="the window (default: monitor.window_hours)")
    watched.add_argument("--json", type=Path, metavar="FILE", help="also write the verdict as JSON")
    watched.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report (GFM)")
    watched.add_argument(
        "--prom",
        type=Path,
        metavar="FILE",
        help="also write the verdict as Prometheus gauges (for node_exporter's textfile collector)",
    )
    watched.set_defaults(handler=cmd_monitor)
    fetched = commands.add_parser(
        "fetch-log", help="copy the window of the log and its labels from monitor.log_uri into logs/"
    )
    fetched.add_argument("--hours", type=float, help="the window (default: monitor.window_hours)")
    fetched.set_defaults(handler=cmd_fetch_log)


def cmd_monitor(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """Print the monitor's report; exit 0 when nothing alerts, 1 on an alert, 2 when it cannot judge."""
    import time

    from .monitoring.run import MonitorError, monitor
    from .monitoring.verdict import as_json, as_markdown, exit_code

    hours = window_hours(settings, args.hours)
    try:
        checks, window = monitor(settings, paths, time.time(), hours)
    except MonitorError as err:
        print(f"error: monitor: {err}", file=sys.stderr)
        return 2
    markdown = as_markdown(checks, window)
    print(markdown, end="")
    if args.markdown:
        args.markdown.write_text(markdown, encoding="utf-8")
    if args.json:
        args.json.write_text(
            json.dumps(as_json(checks, window, settings.monitor.retrain), indent=2) + "\n", encoding="utf-8"
        )
    if args.prom:
        from .monitoring.gauges import as_prometheus

        written = args.prom.with_name(args.prom.name + ".tmp")  # a collector never reads half a file
        written.write_text(as_prometheus(checks, time.time()), encoding="utf-8")
        written.replace(args.prom)
    return exit_code(checks)


def window_hours(settings: Settings, hours: float | None) -> float:
    """--hours, else monitor.window_hours; a window of no time is refused."""
    chosen = hours if hours is not None else settings.monitor.window_hours
    if not chosen > 0:
        raise StageFailed(f"--hours {chosen:g}: expected a number of hours above 0")
    return chosen


def cmd_fetch_log(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Copy the files of monitor.log_uri that can hold the window's records; exit 1 when it cannot be read."""
    import time

    from .feedback import label_folder
    from .monitoring.fetch import FetchError, fetch
    from .served_log import local_folder, shown

    url, log = settings.monitor.log_uri, settings.serving.log
    hours = window_hours(settings, args.hours)
    if not url:
        print("fetch-log: monitor.log_uri is empty: the monitor reads this machine's log only")
        return
    folders = {"predictions": local_folder(log, paths), "labels": label_folder(log, paths)}
    try:
        done = fetch(url, folders, time.time() - hours * 3600, log.max_file_seconds)
    except FetchError as err:
        raise StageFailed(f"fetch-log: {err}") from None
    print(
        f"fetch-log: {done.copied} file(s) of the last {hours:g} h copied from {url} "
        f"({done.present} already here) -> {shown(folders['predictions'].parent, paths.root)}"
    )


def cmd_test_score(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Print the ML Test Score from test results; exit 0 whatever the score (it is a report), 2
    when the table or a results file cannot be read."""
    from .ml_test_score import (
        ScoreError,
        parse_table,
        read_results,
        render_markdown,
        render_text,
        score,
        with_report,
    )

    where = paths.root
    try:
        table_path = paths.ml_test_score
        table = parse_table(_read_text(table_path), relative(table_path, paths))
        outcomes, gate = read_results([where / path for path in args.junit], where / args.gate)
    except (ScoreError, StageFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = score(table, outcomes, gate)
    print(json.dumps(result, indent=2) if args.json else render_text(result, table))
    if args.markdown is not None:
        report = where / args.report if args.report is not None else None
        before = report.read_text(encoding="utf-8") if report is not None and report.is_file() else ""
        (where / args.markdown).parent.mkdir(parents=True, exist_ok=True)
        markdown = with_report(before, render_markdown(result, table))
        (where / args.markdown).write_text(markdown, encoding="utf-8")
    return 0


def cmd_staleness(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Print quality against model age; with --age, exit 1 when a model that old is too old."""
    from .staleness import read_report, render_table, too_old

    report = read_report(paths.staleness)
    print(render_table(report))
    if args.age is None:
        return 0
    old = too_old(args.age, report)  # no maximum age: StalenessUnknown, exit 1 with why
    print(f"a model of age {args.age:g} is {'too old' if old else 'within the maximum age'}")
    return 1 if old else 0


def add_staleness_command(commands) -> None:
    stale = commands.add_parser(
        "staleness", help="quality against model age and the maximum age (reports/staleness.json)"
    )
    stale.add_argument("--age", type=float, help="exit 1 when a model this old is over the maximum age")
    stale.set_defaults(handler=cmd_staleness, needs_settings=False)


def cmd_plots(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Draw the DVC plots as SVG files (plots.py); with --base, that revision's curves beside these."""
    from .plots import PlotError, write_plots

    base = checked_ref(args.base) if args.base else None
    try:
        written = write_plots(paths.root, (paths.root / args.output).resolve(), base)
    except PlotError as err:
        raise StageFailed(str(err)) from None
    for path in written:
        print(f"plots: {relative(path, paths)}")
    return 0


def add_plots_command(commands) -> None:
    drawn = commands.add_parser("plots", help="the DVC plots as SVG files that open offline (dvc_plots/)")
    drawn.add_argument("--base", help="also draw this git ref's plots, overlaid (dvc plots diff)")
    drawn.add_argument("--output", type=Path, default=Path("dvc_plots"), help="folder for the SVG files")
    drawn.set_defaults(handler=cmd_plots, needs_settings=False)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise StageFailed(f"{path.name}: cannot be read ({err.strerror})") from None


def add_test_score_command(commands) -> None:
    scored = commands.add_parser(
        "test-score",
        help="the ML Test Score from test results (which tests score which id: tests/ml_test_score.yaml)",
    )
    scored.add_argument(
        "--junit",
        nargs="+",
        type=Path,
        default=[Path("reports")],
        help="JUnit XML files of the test jobs, or folders holding junit*.xml files (default: reports)",
    )
    scored.add_argument("--gate", type=Path, default=Path("reports/gate.json"), help="the gate's record")
    scored.add_argument("--json", action="store_true", help="print JSON instead of the table")
    scored.add_argument("--markdown", type=Path, help="also write the score as a folded markdown block")
    scored.add_argument(
        "--report",
        type=Path,
        help="put this report (the gate's markdown) before the block, as the PR comment",
    )
    scored.set_defaults(handler=cmd_test_score, needs_settings=False)


def add_report_command(commands) -> None:
    report = commands.add_parser(
        "report",
        help="the pull-request report and metric gate against a base ref "
        "(exit 0: passed, 1: gate failed, 2: could not compare)",
    )
    report.add_argument("--base", default="main", help="git ref to compare with (default: main)")
    report.add_argument(
        "--policy",
        choices=("base", "workspace"),
        default="base",
        help="whose gate policy applies: the base's (default; a pull request's own only when approved) "
        "or this tree's (a merged commit)",
    )
    report.add_argument(
        "--results",
        type=Path,
        help="judge the results a pull request's pipeline wrote (a folder with its metrics, params and "
        "dvc.lock) in this tree, a checkout of the base",
    )
    report.add_argument(
        "--event",
        default=os.environ.get("GITHUB_EVENT_PATH"),
        help="the pull-request event (JSON) that may approve a policy change (default: $GITHUB_EVENT_PATH)",
    )
    report.add_argument(
        "--output", type=Path, default=Path("reports/pr-report.md"), help="markdown file to write"
    )
    report.add_argument("--summary", help="also append the markdown here (default: $GITHUB_STEP_SUMMARY)")
    report.add_argument(
        "--json",
        type=Path,
        default=Path("reports/gate.json"),
        help="the verdict (pass, fail or error) and failed checks as JSON",
    )
    # The report judges from files and git alone: this tree's params.yaml may be a pull request's.
    report.set_defaults(handler=cmd_report, needs_settings=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths(args.root.resolve())
    try:
        settings = load_settings(paths.params) if getattr(args, "needs_settings", True) else None
        return args.handler(settings, paths, args) or 0
    except (StageFailed, ValueError) as err:  # every refusal of bad settings or data is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
