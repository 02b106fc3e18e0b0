"""The canary: serve the challenger, replay recent requests to it and to the champion, and judge.

Both registered versions are served by the real model server (`serve`), each in
its own process on a free loopback port, pinned to its version number (an alias
that moves during the canary changes nothing). The rows replayed are trusted
rows only: the latest `canary.sample_size` rows of the prediction log (the folder
`serving.log.uri` names, `logs/predictions/` by default) that came with a trusted token
(the server marks them `"trusted": true`, see `config.TRUSTED_TOKEN_ENV`) when it holds
that many, else a seeded sample of the test set without its target. Anonymous requests are never
replayed: anyone who can reach the server could otherwise choose the rows that
decide a promotion.
Each row is sent alone, to both servers in turn, after a few warm-up requests;
each server gets the row cut to the inputs its model takes (from its OpenAPI
document), so a challenger with a new feature is compared fairly.

The verdict (`judge`) is a pure function of the recorded replies:

- agreement: the share of rows, among those both models answered, on which
  they agree: a classifier's label is the same and its class probabilities are
  within `canary.tolerance` of the champion's; a regressor's prediction is
  within `canary.tolerance` times the spread (5th to 95th percentile) of the
  champion's predictions on the sample;
- error rate: the share of rows the challenger did not answer with 200;
- p99 latency: the 99th percentile (nearest rank) of the challenger's request
  times, measured at the client.

Against the champion's figures from the same run (`figures.Figures`), as ratios:

- slowdown: the challenger's median request time over the champion's;
- memory: the peak resident memory of the challenger's server over the champion's;
- train_time: the challenger's fit time over the champion's (from each version's train run;
  fits under `canary.min_training_seconds` count as that long).

A figure that was not measured (a version registered without its train run; in `--from-log`,
memory and request time: both models share one process, and the shadow is scored off the
request path) is shown as n/a, not judged.
Without a champion (the first deploy) only the error rate and latency are judged.
The figures are recorded on the challenger's version (`canary_*` tags).

`--from-log` (`run_from_log`) replays nothing: it pairs the trusted rows the challenger
scored in shadow (`serving.shadow`) with the served model's answers to the same requests,
and judges those by the same checks.
"""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..config.canary import CanarySettings
from ..config.settings import Settings
from ..paths import Paths
from ..tracking import version_uri
from .figures import Figures, latency_figures, peak_rss_mb, percentile, ratio
from .servers import REQUEST_TIMEOUT, connect, exchange, running, served_inputs

WARM_UP = 5  # requests per server before measuring
ONE_MODEL = ("--no-log", "--no-challenger")  # each canary server answers with its pinned version only


class CanaryError(RuntimeError):
    """The canary could not be run (no challenger, no rows to replay)."""


@dataclass(frozen=True)
class Reply:
    """One answer to one row: did it succeed, how long it took, and what it said."""

    ok: bool
    latency_ms: float
    prediction: object = None
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    limit: str
    passed: bool


@dataclass(frozen=True)
class CanaryVerdict:
    passed: bool
    first_deploy: bool
    rows: int
    checks: tuple[Check, ...]
    champion_error_rate: float | None = None
    champion_p99_ms: float | None = None
    figures: Figures | None = None  # the challenger's
    champion_figures: Figures | None = None


def reply_from(status: int, body: object, latency_ms: float) -> Reply:
    """A /predict answer for one row -> Reply (anything but a 200 with one prediction is a failure)."""
    if status != 200 or not isinstance(body, dict):
        return Reply(False, latency_ms)
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 1:
        return Reply(False, latency_ms)
    probabilities = body.get("probabilities")
    first = probabilities[0] if isinstance(probabilities, list) and probabilities else None
    return Reply(True, latency_ms, predictions[0], first if isinstance(first, dict) else None)


def error_rate(replies: Sequence[Reply]) -> float:
    return sum(not reply.ok for reply in replies) / len(replies) if replies else 1.0


def agreement(challenger: Sequence[Reply], champion: Sequence[Reply], task: str, tolerance: float) -> float:
    """Share of rows, among those both answered, on which the two models agree (0 if there are none)."""
    if len(challenger) != len(champion):
        raise ValueError("challenger and champion must answer the same rows")
    pairs = [(a, b) for a, b in zip(challenger, champion, strict=True) if a.ok and b.ok]
    if not pairs:
        return 0.0
    if task == "classification":
        return sum(_same_class(a, b, tolerance) for a, b in pairs) / len(pairs)
    reference = [float(b.prediction) for _, b in pairs]  # type: ignore[arg-type]
    within = tolerance * (percentile(reference, 95) - percentile(reference, 5))
    close = sum(
        abs(float(a.prediction) - float(b.prediction)) <= within  # type: ignore[arg-type]
        if within > 0
        else math.isclose(float(a.prediction), float(b.prediction))  # type: ignore[arg-type]
        for a, b in pairs
    )
    return close / len(pairs)


def _same_class(a: Reply, b: Reply, tolerance: float) -> bool:
    if a.prediction != b.prediction:
        return False
    if a.probabilities is None or b.probabilities is None:
        return True
    classes = set(a.probabilities) | set(b.probabilities)
    return all(abs(a.probabilities.get(c, 0.0) - b.probabilities.get(c, 0.0)) <= tolerance for c in classes)


def judge(
    challenger: Sequence[Reply], champion: Sequence[Reply] | None, limits: CanarySettings, task: str
) -> CanaryVerdict:
    """Pass or refuse the challenger on agreement (when there is a champion), error rate and p99 latency."""
    if not challenger:
        raise ValueError("no replies to judge")
    errors = error_rate(challenger)
    p99 = percentile([reply.latency_ms for reply in challenger], 99)
    checks = []
    if champion is None:
        checks.append(Check("agreement", None, "n/a: first deploy, no champion", True))
    else:
        agreed = agreement(challenger, champion, task, limits.tolerance)
        checks.append(
            Check("agreement", agreed, f">= {limits.min_agreement:g}", agreed >= limits.min_agreement)
        )
    checks.append(
        Check("error_rate", errors, f"<= {limits.max_error_rate:g}", errors <= limits.max_error_rate)
    )
    checks.append(Check("p99_ms", p99, f"<= {limits.max_p99_ms:g}", p99 <= limits.max_p99_ms))
    return CanaryVerdict(
        passed=all(check.passed for check in checks),
        first_deploy=champion is None,
        rows=len(challenger),
        checks=tuple(checks),
        champion_error_rate=None if champion is None else error_rate(champion),
        champion_p99_ms=None if champion is None else percentile([r.latency_ms for r in champion], 99),
    )


def with_figures(
    verdict: CanaryVerdict, challenger: Figures, champion: Figures | None, limits: CanarySettings
) -> CanaryVerdict:
    """The verdict with the cost checks against the champion's figures (n/a where one is missing)."""
    theirs = champion or Figures()
    checks = (
        _cost("slowdown", ratio(challenger.p50_ms, theirs.p50_ms), limits.max_slowdown, champion),
        _cost(
            "memory", ratio(challenger.peak_rss_mb, theirs.peak_rss_mb), limits.max_memory_growth, champion
        ),
        _cost(
            "train_time",
            ratio(challenger.fit_seconds, theirs.fit_seconds, floor=limits.min_training_seconds),
            limits.max_training_slowdown,
            champion,
        ),
    )
    every = (*verdict.checks, *checks)
    passed = all(check.passed for check in every)
    return replace(verdict, checks=every, passed=passed, figures=challenger, champion_figures=champion)


def _cost(name: str, value: float | None, most: float, champion: Figures | None) -> Check:
    if champion is None:
        return Check(name, None, "n/a: first deploy, no champion", True)
    if value is None:
        return Check(name, None, "n/a: not measured for both", True)
    return Check(name, value, f"<= {most:g} x champion", value <= most)


def server_figures(replies: Sequence[Reply], pid: int | None, fit_seconds: float | None) -> Figures:
    """A server's figures from its measured replies, its process (while it runs) and its train run."""
    measured = latency_figures([reply.latency_ms for reply in replies if reply.ok])
    memory = None if pid is None else peak_rss_mb(pid)
    return replace(measured, peak_rss_mb=memory, fit_seconds=fit_seconds)


def recent_rows(log: Path, size: int) -> list[dict]:
    """The latest `size` trusted request rows of the prediction log's folder, oldest first (fewer if
    it has fewer). Anonymous requests, and records written before requests were marked, are skipped.
    """
    from ..served_log import newest_records

    if size <= 0:
        return []
    newest_first: list[dict] = []
    for record in newest_records(log):
        newest_first.extend(reversed(_trusted_rows(record)))
        if len(newest_first) >= size:
            break
    return list(reversed(newest_first[:size]))


def _trusted_rows(record: dict) -> list[dict]:
    if record.get("trusted") is not True:
        return []
    inputs = record.get("inputs")
    return [row for row in inputs if isinstance(row, dict)] if isinstance(inputs, list) else []


def shadow_pairs(
    newest_first: Iterable[dict], version: str, size: int
) -> tuple[list[Reply], list[Reply], str | None]:
    """The latest `size` trusted rows that `version` scored in shadow, oldest first: the
    challenger's replies, the served model's replies to the same rows, and the served model's
    latest version (None when there is no pair). `newest_first`: the prediction log's records."""
    waiting: dict[str, dict] = {}  # a shadow record, until its request's answered record comes
    challenger: list[Reply] = []
    champion: list[Reply] = []
    latest = None
    for record in newest_first:
        request_id = record.get("request_id")
        if record.get("trusted") is not True or not isinstance(request_id, str):
            continue
        if record.get("shadow") is True:
            if record.get("model_version") == version:
                waiting[request_id] = record
            continue
        shadowed = waiting.pop(request_id, None)
        if shadowed is None:
            continue
        theirs, ours = logged_replies(shadowed), logged_replies(record)
        if len(theirs) != len(ours):
            continue
        latest = latest or str(record.get("model_version"))
        challenger.extend(reversed(theirs))
        champion.extend(reversed(ours))
        if len(challenger) >= size:
            break
    return list(reversed(challenger[:size])), list(reversed(champion[:size])), latest


def logged_replies(record: dict) -> list[Reply]:
    """A logged request's answers as replies, one per row (a batch's rows share its latency)."""
    inputs, outputs = record.get("inputs"), record.get("outputs")
    if not isinstance(inputs, list):
        return []
    latency = float(record.get("latency_ms") or 0.0)
    if "error" in record or not isinstance(outputs, list) or len(outputs) != len(inputs):
        return [Reply(False, latency) for _ in inputs]
    probabilities = record.get("probabilities")
    per_row = probabilities if isinstance(probabilities, list) and len(probabilities) == len(inputs) else None
    return [
        Reply(True, latency, output, per_row[index] if per_row and isinstance(per_row[index], dict) else None)
        for index, output in enumerate(outputs)
    ]


def holdout_rows(test: Path, target: str, size: int, seed: int) -> list[dict]:
    """A seeded sample of the held-out set, without the target, as JSON-ready rows (NaN -> null)."""
    import pandas as pd

    if not test.exists():
        return []
    frame = pd.read_csv(test).drop(columns=[target], errors="ignore")
    sample = frame.sample(n=min(size, len(frame)), random_state=seed)
    return json.loads(sample.to_json(orient="records"))


def pick_rows(settings: Settings, paths: Paths) -> tuple[list[dict], str]:
    """The rows to replay and where they came from: the log's trusted rows if enough, else the test set."""
    from ..served_log import local_folder, shown

    size = settings.canary.sample_size
    log = local_folder(settings.serving.log, paths)
    rows = recent_rows(log, size)
    if len(rows) >= size:
        return rows, shown(log, paths.root)
    rows = holdout_rows(paths.test, settings.data.target, size, settings.split.seed)
    if not rows:
        raise CanaryError(
            f"no rows to replay: {shown(log, paths.root)} has fewer than {size} trusted rows "
            f"and {paths.test.relative_to(paths.root)} is missing or empty (run the pipeline first)"
        )
    return rows, str(paths.test.relative_to(paths.root))


def only(rows: list[dict], inputs: Sequence[str]) -> list[dict]:
    """Each row with the model's inputs only: the server refuses columns it does not know."""
    return [{name: row.get(name) for name in inputs} for row in rows]


def replay(urls: dict[str, str], rows: dict[str, list[dict]]) -> dict[str, list[Reply]]:
    """Send row i alone to every server in turn (alternating who goes first), on kept-alive connections.

    `rows` holds, per server, the same rows cut to the inputs that server's model takes.
    """
    connections = {name: connect(url, REQUEST_TIMEOUT) for name, url in urls.items()}
    replies: dict[str, list[Reply]] = {name: [] for name in urls}
    order = list(urls)
    try:
        for name in order:  # warm-up: not measured
            for row in rows[name][:WARM_UP]:
                _timed(connections, name, urls[name], row)
        for index in range(len(rows[order[0]])):
            for name in order if index % 2 == 0 else reversed(order):
                replies[name].append(_timed(connections, name, urls[name], rows[name][index]))
    finally:
        for connection in connections.values():
            connection.close()
    return replies


def _timed(connections: dict, name: str, url: str, row: dict) -> Reply:
    started = time.perf_counter()
    try:
        status, body = exchange(connections[name], "POST", "/predict", row)
    except (OSError, http.client.HTTPException):
        connections[name].close()
        connections[name] = connect(url, REQUEST_TIMEOUT)  # a timeout or reset: the next row reconnects
        return Reply(False, (time.perf_counter() - started) * 1000)
    return reply_from(status, body, (time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class CanaryRun:
    verdict: CanaryVerdict
    challenger: str
    champion: str | None
    origin: str

    def as_dict(self) -> dict:
        return {
            "challenger": self.challenger,
            "champion": self.champion,
            "rows_from": self.origin,
            **asdict(self.verdict),
        }


def run_canary(settings: Settings, paths: Paths) -> CanaryRun:
    """Serve challenger and champion (pinned to their versions), replay the sample, judge."""
    from .registry import CHALLENGER, CHAMPION, alias_version, check_servable, fit_seconds

    name = settings.mlflow.registered_model
    challenger = alias_version(settings, CHALLENGER)
    if challenger is None:
        raise CanaryError(f"no '{CHALLENGER}' alias on {name}: run `register` first")
    champion = alias_version(settings, CHAMPION)
    for version in (challenger, champion):
        if version is not None:
            check_servable(settings, version)  # one clear line, not a server that fails to start
    rows, origin = pick_rows(settings, paths)
    servers = {"challenger": ["--model", version_uri(name, challenger), *ONE_MODEL]}
    if champion is not None:
        servers["champion"] = ["--model", version_uri(name, champion), *ONE_MODEL]
    fits = {"challenger": fit_seconds(settings, challenger)}
    if champion is not None:
        fits["champion"] = fit_seconds(settings, champion)
    with running(paths.root, settings.mlflow.tracking_uri, servers) as started:
        urls = {server: process.url for server, process in started.items()}
        per_server = {}
        for server, url in urls.items():
            inputs = served_inputs(url)
            if inputs is None:  # not found in its OpenAPI document: what training would select
                from ..pipeline.features import model_inputs

                inputs = model_inputs(list(rows[0]), settings.data.target, settings.data.banned_features)
            per_server[server] = only(rows, inputs)
        replies = replay(urls, per_server)
        # Read while the servers still run: their peak memory dies with them.
        figures = {
            server: server_figures(replies[server], process.process.pid, fits[server])
            for server, process in started.items()
        }
    verdict = judge(replies["challenger"], replies.get("champion"), settings.canary, settings.task)
    verdict = with_figures(verdict, figures["challenger"], figures.get("champion"), settings.canary)
    return CanaryRun(verdict, challenger, champion, origin)


def run_from_log(settings: Settings, paths: Paths) -> CanaryRun:
    """Judge the challenger on the rows it scored in shadow (`serving.shadow`), against the answers
    the served model gave to the same requests: real traffic, no replay. Trusted requests only."""
    from ..served_log import local_folder, newest_records, shown
    from .registry import CHALLENGER, alias_version, fit_seconds

    challenger = alias_version(settings, CHALLENGER)
    if challenger is None:
        raise CanaryError(
            f"no '{CHALLENGER}' alias on {settings.mlflow.registered_model}: run `register` first"
        )
    log, size = local_folder(settings.serving.log, paths), settings.canary.sample_size
    theirs, ours, champion = shadow_pairs(newest_records(log), challenger, size)
    if len(theirs) < size:
        raise CanaryError(
            f"{len(theirs)} trusted rows scored by version {challenger} in shadow "
            f"in {shown(log, paths.root)}: "
            f"fewer than canary.sample_size ({size}); serve with serving.shadow: {CHALLENGER} for longer, "
            "or run the canary without --from-log"
        )
    verdict = judge(theirs, ours, settings.canary, settings.task)
    # Fit times only: both models ran in one process (no memory of their own), and the shadow's
    # scoring time off the request path is not measured like a served request's time.
    figures = Figures(fit_seconds=fit_seconds(settings, challenger))
    served = Figures(fit_seconds=None if champion is None else fit_seconds(settings, champion))
    verdict = with_figures(verdict, figures, served, settings.canary)
    return CanaryRun(verdict, challenger, champion, f"the shadow log in {shown(log, paths.root)}")


DIGITS = {"p99_ms": 1, "slowdown": 2, "memory": 2, "train_time": 2}  # shown per check


def format_figures(figures: Figures) -> str:
    """`p50 1.2 ms, p99 3.4 ms, 812 requests/s, peak RSS 180 MB, fit 0.4 s` (n/a where unknown)."""
    parts = (
        ("p50", figures.p50_ms, "{:.1f} ms"),
        ("p99", figures.p99_ms, "{:.1f} ms"),
        ("", figures.requests_per_s, "{:.0f} requests/s"),
        ("peak RSS", figures.peak_rss_mb, "{:.0f} MB"),
        ("fit", figures.fit_seconds, "{:.2f} s"),
    )
    shown = (f"{label} {'n/a' if value is None else unit.format(value)}" for label, value, unit in parts)
    return ", ".join(text.strip() for text in shown)


def format_run(run: CanaryRun) -> str:
    against = f"champion version {run.champion}" if run.champion else "no champion (first deploy)"
    lines = [
        f"canary: challenger version {run.challenger} against {against}, "
        f"{run.verdict.rows} rows from {run.origin}",
        f"  {'check':11}  {'value':>9}  {'limit':30}  result",
    ]
    for check in run.verdict.checks:
        value = "-" if check.value is None else f"{check.value:.{DIGITS.get(check.name, 3)}f}"
        lines.append(f"  {check.name:11}  {value:>9}  {check.limit:30}  {'pass' if check.passed else 'FAIL'}")
    if run.verdict.champion_p99_ms is not None:
        champion_errors, champion_p99 = run.verdict.champion_error_rate, run.verdict.champion_p99_ms
        lines.append(f"  champion: error_rate {champion_errors:.3f}, p99_ms {champion_p99:.1f}")
    for who, figures in (("challenger", run.verdict.figures), ("champion", run.verdict.champion_figures)):
        if figures is not None:
            lines.append(f"  {who} figures: {format_figures(figures)}")
    if run.verdict.passed:
        first = " (first deploy: judged on error rate and latency only)" if run.verdict.first_deploy else ""
        lines.append(f"canary: pass{first}: version {run.challenger} may be promoted")
    else:
        failed = ", ".join(check.name for check in run.verdict.checks if not check.passed)
        lines.append(f"canary: refused: version {run.challenger} fails {failed}")
    return "\n".join(lines)
