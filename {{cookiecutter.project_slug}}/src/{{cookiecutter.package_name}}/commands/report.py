"""The reports' commands: the PR gate's report, the ML Test Score, staleness and plots. They
judge from files and git alone."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from ..paths import Paths
from ..pipeline.stage import StageFailed, relative, write_json
from .runner import add_to_job_summary, append_text
from .values import checked_ref


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
    from ..config.reading import ConfigError
    from ..gate.compare import NoResults, ReportError, read_predictions, take_results
    from ..gate.judge import gate_record, judge
    from ..gate.policy import PolicyNote, policy_changes, read_policy
    from ..gate.render import render, render_error

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
    from ..gate.compare import noise_of
    from ..gate.noise import Unjudged

    if rows is None or isinstance(rows, Unjudged):
        return rows
    return noise_of(rows, gate)


def _curves(rows):
    """The base's and this pull request's curves, for the report's charts (gate/curves.py)."""
    from ..gate.curves import curves

    return curves(*rows)


def _staleness(paths: Paths) -> dict | None:
    """This tree's reports/staleness.json (the pull request's, when handed over); None without one."""
    from ..staleness import StalenessUnknown, read_report

    try:
        return read_report(paths.staleness)
    except StalenessUnknown:
        return None


def _comparison(root: Path, base: str, handed_over: bool):
    """The workspace against the base's results: committed, or the base reproduced (gate/baseline.py)."""
    from ..gate.baseline import baseline
    from ..gate.compare import compare, results_uncommitted

    found = baseline(root, base)
    return dataclasses.replace(
        compare(root, base, found.revision),
        reproduced=found.reproduced,
        reproduce_failed=found.failed,
        results_uncommitted=results_uncommitted(root, handed_over),
    )


def _approval(event_file: str | None):
    """The approval of a policy change that the workflow's event carries (none outside CI)."""
    from ..gate.policy import approval_from_event

    event = None
    if event_file:
        try:
            event = json.loads(Path(event_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = None
    return approval_from_event(event)


def _judged_commit(paths: Paths, args: argparse.Namespace) -> str | None:
    """The commit the verdict is on: this tree's, unless the results came from elsewhere (--results)."""
    from ..provenance import git_commit

    return None if args.results is not None else git_commit(paths.root)


def _write_report(markdown: str, record: dict, args: argparse.Namespace) -> None:
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown, encoding="utf-8")
    write_json(args.json, record)
    if args.summary:
        append_text(args.summary, markdown + "\n")
    else:
        add_to_job_summary(markdown + "\n")


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


def cmd_test_score(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Print the ML Test Score from test results; exit 0 whatever the score (it is a report), 2
    when the table or a results file cannot be read."""
    from ..ml_test_score import (
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise StageFailed(f"{path.name}: cannot be read ({err.strerror})") from None


def cmd_staleness(settings: None, paths: Paths, args: argparse.Namespace) -> int:
    """Print quality against model age; with --age, exit 1 when a model that old is too old."""
    from ..staleness import read_report, render_table, too_old

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
    from ..plots import PlotError, write_plots

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
