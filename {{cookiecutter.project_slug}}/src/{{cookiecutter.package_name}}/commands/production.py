"""The production loop's commands: labels in (feedback import) and out as training data
(feedback export), the monitor, its gauges to a Pushgateway, and the shipped log's window."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..config.settings import Settings
from ..paths import Paths
from ..pipeline.stage import StageFailed
from .runner import add_to_job_summary, set_step_outputs


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
    from ..feedback import FeedbackError, accept, label_folder, parse_items, read_items, ship_labels, summary
    from ..served_log import local_folder, remote, shipped_labels, shown

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
    from ..feedback import label_folder
    from ..feedback_rows import (
        append,
        as_training_frame,
        checked,
        exported_ids,
        labelled_rows,
        new_rows,
        stored,
    )
    from ..monitoring.window import stored_labels
    from ..schema import load_contract
    from ..served_log import local_folder, newest_records, shown

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
        storage = stored(paths.feedback, paths.root)
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
    pushed = commands.add_parser(
        "push-gauges", help="send the monitor's gauges (make monitor's reports/monitor.prom) to a Pushgateway"
    )
    pushed.add_argument("file", type=Path, nargs="?", default=Path("reports/monitor.prom"), help="the gauges")
    pushed.add_argument(
        "--url",
        default=os.environ.get("PUSHGATEWAY_URL", ""),
        help="http(s)://[user:password@]host:port (default: $PUSHGATEWAY_URL; empty: nothing is sent)",
    )
    pushed.set_defaults(handler=cmd_push_gauges)
    fetched = commands.add_parser(
        "fetch-log", help="copy the window of the log and its labels from monitor.log_uri into logs/"
    )
    fetched.add_argument("--hours", type=float, help="the window (default: monitor.window_hours)")
    fetched.set_defaults(handler=cmd_fetch_log)


def cmd_monitor(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """Print the monitor's report; exit 0 when nothing alerts, 1 on an alert, 2 when it cannot judge."""
    import time

    from ..monitoring.run import MonitorError, monitor
    from ..monitoring.verdict import as_json, as_markdown, exit_code

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
    verdict = as_json(checks, window, settings.monitor.retrain)
    if args.json:
        args.json.write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
    if args.prom:
        from ..monitoring.gauges import as_prometheus

        written = args.prom.with_name(args.prom.name + ".tmp")  # a collector never reads half a file
        written.write_text(as_prometheus(checks, time.time()), encoding="utf-8")
        written.replace(args.prom)
    # In a workflow: the verdict for the issue and retraining jobs, the report for the job summary.
    set_step_outputs(verdict=verdict["verdict"], retrain=str(verdict["retrain"]).lower())
    add_to_job_summary(markdown)
    return exit_code(checks)


def cmd_push_gauges(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """PUT the gauges as this model's group at the Pushgateway; exit 1 when it cannot."""
    from ..monitoring.push import PushError, push, target
    from ..served_log import shown

    if not args.url.strip():
        print("push-gauges: PUSHGATEWAY_URL is empty: nothing sent")
        return
    gauges = args.file if args.file.is_absolute() else paths.root / args.file
    if not gauges.is_file():
        raise StageFailed(f"push-gauges: {shown(gauges, paths.root)} not found: `make monitor` writes it")
    try:
        to = target(args.url, settings.mlflow.registered_model)
        push(gauges.read_text(encoding="utf-8"), to)
    except PushError as err:
        raise StageFailed(f"push-gauges: {err}") from None
    print(
        f"push-gauges: {shown(gauges, paths.root)} -> {to.shown} (model={settings.mlflow.registered_model})"
    )


def window_hours(settings: Settings, hours: float | None) -> float:
    """--hours, else monitor.window_hours; a window of no time is refused."""
    chosen = hours if hours is not None else settings.monitor.window_hours
    if not chosen > 0:
        raise StageFailed(f"--hours {chosen:g}: expected a number of hours above 0")
    return chosen


def cmd_fetch_log(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Copy the files of monitor.log_uri that can hold the window's records; exit 1 when it cannot be read."""
    import time

    from ..feedback import label_folder
    from ..monitoring.fetch import FetchError, fetch
    from ..served_log import local_folder, shown

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
