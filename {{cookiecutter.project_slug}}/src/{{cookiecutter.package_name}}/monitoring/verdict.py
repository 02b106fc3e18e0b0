"""The monitor's checks, its verdict (exit 0 ok, 1 alert) and how it is shown: GFM and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config.monitor import MonitorSettings
from ..deploy.model_card import escaped
from .drift import Drift
from .latency import Latency
from .quality import ONLINE_METRIC, Quality, quality_drop, rank_correlation

OK, ALERT = 0, 1


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    limit: str
    passed: bool | None  # None: not judged (too little data), which is no alert


def drift_check(drift: Drift, settings: MonitorSettings, what: str = "drift") -> Check:
    value = f"PSI {drift.psi:.3f}, p {drift.p_value:.2g} ({drift.served_rows} served rows)"
    limit = f"PSI <= {settings.max_psi:g} or p >= {settings.alpha:g}"
    return Check(f"{what}: {drift.column}", value, limit, not drift.drifted(settings.max_psi, settings.alpha))


def contract_check(refused: int, requests: int, settings: MonitorSettings) -> Check:
    rate = refused / requests if requests else 0.0
    value = f"{rate:.4f} ({refused} of {requests} requests refused by the contract)"
    return Check(
        "contract violations", value, f"<= {settings.max_invalid_rate:g}", rate <= settings.max_invalid_rate
    )


def non_finite_check(unanswered: int, rows: int, settings: MonitorSettings) -> Check:
    rate = unanswered / rows if rows else 0.0
    limit = f"<= {settings.max_non_finite_rate:g}"
    return Check(
        "non-finite answers",
        f"{rate:.4f} ({unanswered} of {rows} rows)",
        limit,
        rate <= settings.max_non_finite_rate,
    )


def quality_check(
    quality: Quality,
    offline: float | None,
    task: str,
    settings: MonitorSettings,
    source: str = "metrics.json",
) -> Check:
    """A version's online metric against its offline one (`source`: the registry's, or metrics.json)."""
    name = f"online {ONLINE_METRIC[task]}: version {quality.model_version}"
    if quality.online is None or offline is None or quality.labelled < settings.min_labels:
        why = f"{quality.labelled} labelled rows (monitor.min_labels: {settings.min_labels})"
        return Check(name, "not judged", why if offline is not None else "no offline metric", None)
    drop = quality_drop(quality.online, offline, task)
    value = f"{quality.online:.4g} on {quality.labelled} labelled rows; offline {offline:.4g} ({source})"
    return Check(name, value, f"worse by <= {settings.max_quality_drop:g}", drop <= settings.max_quality_drop)


CORRELATION = "offline/online correlation"


def correlation_check(
    pairs: list[tuple[str, float, float]], settings: MonitorSettings, unread: str | None
) -> Check:
    """Whether the versions that serve better online are the ones the offline test rated better:
    Spearman's rho over (version, registered offline metric, online metric)."""
    fewest = settings.min_correlated_versions
    if len(pairs) < fewest:
        why = f"{len(pairs)} versions with min_labels labels and a registered offline metric (need {fewest})"
        return Check(CORRELATION, "not judged", why + (f"; registry: {unread}" if unread else ""), None)
    rho = rank_correlation([offline for _, offline, _ in pairs], [online for _, _, online in pairs])
    if rho is None:
        return Check(CORRELATION, "not judged", "the metrics do not vary across versions", None)
    each = "; ".join(
        f"{version}: {offline:.4g} offline, {online:.4g} online" for version, offline, online in pairs
    )
    value = f"Spearman {rho:.2f} over versions ({each})"
    return Check(CORRELATION, value, f">= {settings.min_correlation:g}", rho >= settings.min_correlation)


def latency_check(version: Latency, previous: Latency, settings: MonitorSettings) -> Check:
    """A version's p99 request time against the previous version's, in the same window."""
    name = f"latency: version {version.model_version}"
    fewest = min(version.requests, previous.requests)
    if fewest < settings.min_latency_requests or not previous.p99_ms or version.p99_ms is None:
        why = f"{fewest} answered requests (monitor.min_latency_requests: {settings.min_latency_requests})"
        return Check(name, "not judged", why, None)
    ratio = version.p99_ms / previous.p99_ms
    against = f"version {previous.model_version} ({previous.p99_ms:.3g} ms)"
    value = f"p99 {version.p99_ms:.3g} ms, x{ratio:.2f} of {against}"
    return Check(name, value, f"<= x{settings.max_slowdown:g}", ratio <= settings.max_slowdown)


def exit_code(checks: list[Check]) -> int:
    return ALERT if any(check.passed is False for check in checks) else OK


def as_json(checks: list[Check], window: dict, retrain_on_alert: bool = False) -> dict:
    """The verdict; `retrain`: an alert, with monitor.retrain on (the monitor workflow then retrains)."""
    code = exit_code(checks)
    return {
        "verdict": "alert" if code else "ok",
        "retrain": bool(code) and retrain_on_alert,
        "window": window,
        "checks": [asdict(c) for c in checks],
    }


def as_markdown(checks: list[Check], window: dict) -> str:
    code = exit_code(checks)
    alerts = [check for check in checks if check.passed is False]
    head = f"## Monitor: {'ALERT' if code else 'ok'}"
    summary = (
        f"Window: the last {window['hours']:g} h: {window['requests']} requests, {window['rows']} rows, "
        f"model versions {', '.join(escaped(v) for v in window['versions']) or 'none'}; "
        f"{window['labelled']} rows with delayed labels"
        + (f"; {window['shadow_rows']} rows scored in shadow." if window.get("shadow_rows") else ".")
    )
    lines = [head, "", summary, ""]
    if alerts:
        lines += [f"**{len(alerts)} alert(s):** " + "; ".join(escaped(check.name) for check in alerts), ""]
    lines += ["| check | value | limit | |", "|---|---|---|---|"]
    mark = {True: "ok", False: "**ALERT**", None: "not judged"}
    for check in checks:
        cells = (escaped(check.name), escaped(check.value), escaped(check.limit), mark[check.passed])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
