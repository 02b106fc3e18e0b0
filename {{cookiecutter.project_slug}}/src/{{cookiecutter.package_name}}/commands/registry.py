"""The registry's commands: register, canary, promote, rollback, status and the model card."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.settings import Settings
from ..paths import Paths
from ..pipeline.stage import StageFailed, write_json
from .runner import add_to_job_summary, set_step_outputs
from .values import checked_reason, checked_urls, checked_version


def cmd_register(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    from ..deploy.registry import CHALLENGER, register, with_absolute_store

    registered = _registry_call(register, with_absolute_store(settings, paths.root), paths)
    print(
        f"register: {settings.mlflow.registered_model} version {registered.version} "
        f"({registered.source}) is the {CHALLENGER}"
    )
    print(f"register: its model card is {registered.card} (`card --version {registered.version}` prints it)")


def cmd_promote(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    from ..deploy.registry import CHAMPION, promote, with_absolute_store

    version, urls = checked_version(args.version), checked_urls(args.reload)
    force = checked_reason(args.force) if args.force is not None else None
    move = _registry_call(promote, with_absolute_store(settings, paths.root), version, force)
    if force is not None:
        print(f"promote: without the canary's pass, for the recorded reason {force!r}")
    was = f" (was {move.replaced})" if move.replaced else " (the first)"
    print(f"promote: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION}{was}")
    return _reload_servers(urls)


def cmd_rollback(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    from ..deploy.registry import CHAMPION, rollback, with_absolute_store

    version, urls = checked_version(args.version, allow_previous=True), checked_urls(args.reload)
    move = _registry_call(rollback, with_absolute_store(settings, paths.root), version)
    print(
        f"rollback: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION} again "
        f"(was {move.replaced})"
    )
    return _reload_servers(urls)


def cmd_card(settings: Settings, paths: Paths, args: argparse.Namespace) -> None:
    """Print a version's model card (markdown); in a workflow, also append it to the job summary."""
    from ..deploy.model_card import escaped
    from ..deploy.registry import version_card, with_absolute_store

    version = checked_version(args.version)
    card = _registry_call(version_card, with_absolute_store(settings, paths.root), version)
    text = f"{card.markdown}\nKept in MLflow as {escaped(card.location, 300)}\n"
    print(text, end="")
    add_to_job_summary(text)


def _reload_servers(urls: list[str]) -> int:
    """POST /admin/reload to each running server so it serves the new champion now; 1 if one fails."""
    from ..deploy.registry import reload_server
    from ..tracking import RegistryError

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
    from ..deploy.registry import champion_history, format_status, status, with_absolute_store

    settings = with_absolute_store(settings, paths.root)
    from ..metrics import HEADLINE

    metric = HEADLINE[settings.task]
    print(f"{settings.mlflow.registered_model} at {settings.mlflow.tracking_uri}")
    print(format_status(_registry_call(status, settings), metric))
    history = _registry_call(champion_history, settings)
    if history:
        print(f"champion history (oldest first): {' -> '.join(history)}")


def cmd_canary(settings: Settings, paths: Paths, args: argparse.Namespace) -> int:
    """Exit 0: the challenger passed (and was promoted, with --promote); 1: refused; 2: could not run."""
    from ..deploy.canary import CanaryError, format_run, run_canary, run_from_log
    from ..deploy.registry import CHAMPION, promote, record_canary, with_absolute_store
    from ..deploy.servers import ServerError
    from ..tracking import RegistryError

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
    set_step_outputs(challenger=str(run.challenger), verdict=verdict)
    add_to_job_summary(f"## Canary\n\n```\n{format_run(run)}\n```\n")
    if not run.verdict.passed:
        return 1
    if args.promote:
        move = _registry_call(promote, settings, run.challenger)
        print(f"promote: {settings.mlflow.registered_model} version {move.version} is the {CHAMPION}")
    return 0


def _registry_call(function, *args):
    from ..tracking import RegistryError

    try:
        return function(*args)
    except RegistryError as err:
        raise StageFailed(str(err)) from None


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
