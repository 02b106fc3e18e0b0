"""A model version's cost figures: request time, throughput, peak memory of its server, time to fit.

The canary measures them for the challenger and the champion in the same run, on the same
machine and the same rows, so their ratios mean something where absolute bounds would be noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figures:
    """What serving and training one version cost; None where it was not measured."""

    p50_ms: float | None = None
    p99_ms: float | None = None
    requests_per_s: float | None = None  # one row per request, one request at a time
    peak_rss_mb: float | None = None  # the server process's peak resident memory
    fit_seconds: float | None = None  # the train stage's fit, as logged to its MLflow run


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_figures(latencies_ms: Sequence[float]) -> Figures:
    """p50, p99 and sequential throughput of request times in ms (empty: nothing measured)."""
    if not latencies_ms:
        return Figures()
    mean = sum(latencies_ms) / len(latencies_ms)
    return Figures(
        p50_ms=percentile(latencies_ms, 50),
        p99_ms=percentile(latencies_ms, 99),
        requests_per_s=1000 / mean if mean > 0 else None,
    )


def peak_rss_mb(pid: int, proc: Path = Path("/proc")) -> float | None:
    """The peak resident memory (VmHWM) of a running process in MB; None where /proc does not say."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) / 1024  # reported in kB
    return None


def ratio(new: float | None, old: float | None, floor: float = 0.0) -> float | None:
    """new / max(old, floor): how many times the old figure the new one is; None if either is unknown.

    The floor keeps figures too small to time reliably from failing on noise."""
    if new is None or old is None:
        return None
    base = max(old, floor)
    return new / base if base > 0 else None
