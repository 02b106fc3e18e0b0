"""The model's answers: serve, score a file (predict), and explain one row."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config.settings import Settings
from ..paths import Paths
from ..pipeline.stage import StageFailed
from .values import count_between, quoted


def cmd_serve(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from ..serving.server import run
    from ..serving.workers import serve_workers

    challenger = "" if args.no_challenger else args.challenger
    workers = args.workers or settings.serving.workers
    if workers > 1:
        serve_workers(settings, paths, args.model, args.host, args.port, not args.no_log, challenger, workers)
        return
    run(settings, paths, args.model, args.host, args.port, log=not args.no_log, challenger=challenger)


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
    serve.add_argument(
        "--workers",
        type=count_between(1, 64, "processes"),
        help="server processes on the address (serving.workers)",
    )
    second = serve.add_mutually_exclusive_group()
    second.add_argument(
        "--challenger",
        metavar="SOURCE",
        help="the second model, as --model (default: the alias serving.shadow or serving.split.alias names)",
    )
    second.add_argument("--no-challenger", action="store_true", help="serve one model, whatever params say")
    serve.set_defaults(handler=cmd_serve)


def cmd_explain(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """One row step by step (serving/explain.py); exit 2 when the row is not one the model takes."""
    from ..schema import load_contract
    from ..serving.errors import ServeError
    from ..serving.explain import ExplainError, explain, parse_row, render_text, validate_row
    from ..serving.sources import LocalSource, parse_source

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
    from ..serving.explain import ExplainError

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
        raise ExplainError(f"{quoted(args.row)}: cannot be read ({reason})") from None


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


def add_predict_command(commands) -> None:
    scored = commands.add_parser(
        "predict",
        help="score a file of rows (CSV or Parquet, a path or any fsspec URL) with the model, in chunks",
    )
    scored.add_argument("--input", required=True, metavar="FILE", help="the rows: .csv or .parquet")
    scored.add_argument("--output", required=True, metavar="FILE", help="row, prediction (and probabilities)")
    scored.add_argument(
        "--rejects",
        metavar="FILE",
        help="the rows the contract refuses, with why (default: <output>.rejects.csv)",
    )
    scored.add_argument(
        "--model", help="models:/<name>@<alias>, models:/<name>/<version> or a folder (as serve)"
    )
    scored.add_argument(
        "--chunk-rows",
        type=count_between(1_000, 10_000_000, "rows"),
        default=100_000,
        help="rows held at once (100000)",
    )
    scored.add_argument(
        "--no-log", action="store_true", help="leave the scored rows out of the prediction log"
    )
    scored.add_argument(
        "--trusted",
        action="store_true",
        help="log the rows as trusted: labelled, they may become training data",
    )
    scored.set_defaults(handler=cmd_predict)


def cmd_predict(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Every row scored or refused with its reason; exit 1, and no file changed, when the input
    cannot be scored at all."""
    import time

    import fsspec
    from tqdm import tqdm

    from ..batch import BatchError, file_format, rejected_frame, score_file, scored_frame
    from ..schema import load_contract
    from ..serving.sources import default_source, parse_source

    kind, (output, refused) = file_format(args.input), batch_writers(args)
    contract = load_contract(paths.contract)
    source = parse_source(args.model, settings, paths) if args.model else default_source(settings, paths)
    served = source.load(contract)
    log, written = batch_log(settings, paths, served, args)
    started = time.perf_counter()
    try:
        with (
            fsspec.open(args.input, "rb") as rows,
            tqdm(unit=" rows", disable=None, file=sys.stderr) as progress,
        ):
            done = score_file(rows, kind, served, contract, args.chunk_rows, output, refused, progress, log)
        empty: list | None = [] if served.classes is not None else None
        output.commit(scored_frame([], 1, [], empty, served.classes or ()))
        refused.commit(rejected_frame([], {}, 1))
    except (BatchError, OSError, ValueError) as err:  # pandas' and pyarrow's parse errors are ValueErrors
        output.discard()
        refused.discard()
        said = str(err).strip().splitlines()
        raise StageFailed(f"predict: {args.input}: {said[0] if said else type(err).__name__}") from None
    finally:
        if written is not None:
            written.close()
    seconds = time.perf_counter() - started
    print(
        f"predict: {done.rows} row(s) in {seconds:.1f} s ({done.rows / max(seconds, 1e-9):,.0f} rows/s) with "
        f"{served.name} version {served.version}: {done.scored} scored -> {args.output}, "
        f"{done.rejected} refused -> {refused.url}" + (f"; logged as requests {log.run_id}-*" if log else "")
    )


def batch_writers(args: argparse.Namespace) -> tuple:
    """The output's writer and the rejects' (`--rejects`, else beside the output; always CSV)."""
    from ..batch import Writer, file_format, rejects_url, staging_path

    rejects = args.rejects or rejects_url(args.output)
    if file_format(rejects) != "csv":
        raise StageFailed(f"--rejects {rejects}: expected a .csv file")
    output = Writer(args.output, file_format(args.output), staging_path(args.output))
    return output, Writer(rejects, "csv", staging_path(rejects))


def batch_log(settings: Settings, paths: Paths, served, args: argparse.Namespace) -> tuple:
    """The prediction log of `predict` ((None, None) with --no-log): what score_file writes to,
    and the file writer to close. Context rules are checked as `serve` checks them."""
    import uuid

    from ..batch import LogTo
    from ..served_log import local_folder
    from ..serving.access import Access
    from ..serving.context import check_context
    from ..serving.log import DirectLog

    if args.no_log:
        return None, None
    rules, key = settings.serving.log.context, Access.from_env("127.0.0.1").log_key
    check_context(rules, served.inputs, key)
    writer = DirectLog(local_folder(settings.serving.log, paths), settings.serving.log, key)
    run_id = f"batch-{uuid.uuid4().hex[:12]}"
    log = LogTo(writer.write, run_id, settings.serving.max_batch_rows, tuple(rules), args.trusted)
    return log, writer
