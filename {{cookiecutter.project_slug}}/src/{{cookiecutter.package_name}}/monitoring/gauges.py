"""The monitor's verdict as Prometheus gauges (text format), for node_exporter's textfile
collector or a Pushgateway: what monitoring/alerts.yml alerts on (drift, model age, a silent monitor)."""

from __future__ import annotations

from .verdict import Check

# A check's kind, from the start of its name (the names are made in verdict.py and run.py).
KINDS = (
    ("drift: ", "drift"),
    ("prediction drift: ", "drift"),
    ("model age", "age"),
    ("training/serving skew", "skew"),
    ("contract violations", "contract"),
    ("non-finite answers", "non_finite"),
    ("online ", "quality"),
    ("offline/online correlation", "quality"),
    ("latency: ", "latency"),
)


def kind_of(name: str) -> str:
    return next((kind for prefix, kind in KINDS if name.startswith(prefix)), "other")


def label_value(text: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def as_prometheus(checks: list[Check], now: float) -> str:
    """One gauge per judged check (1: alert, 0: ok), the overall verdict and when it was made."""
    lines = [
        "# HELP monitor_check_alert 1 when the monitor's check alerts, 0 when it passes (not judged: absent)",
        "# TYPE monitor_check_alert gauge",
    ]
    for check in checks:
        if check.passed is not None:
            labels = f'check="{label_value(check.name)}",kind="{kind_of(check.name)}"'
            lines.append("monitor_check_alert{" + labels + "} " + ("0" if check.passed else "1"))
    alerting = any(check.passed is False for check in checks)
    lines += [
        "# HELP monitor_alert 1 when any check of the monitor's last verdict alerts",
        "# TYPE monitor_alert gauge",
        f"monitor_alert {int(alerting)}",
        "# HELP monitor_run_timestamp_seconds When the monitor last judged (Unix time)",
        "# TYPE monitor_run_timestamp_seconds gauge",
        f"monitor_run_timestamp_seconds {now:.3f}",
    ]
    return "\n".join(lines) + "\n"
