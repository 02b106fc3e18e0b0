"""Latency per model version: each version's p99 against the version served before it.

Both figures come from the same log (the server's own request times, same machine, same kind of
traffic), so a ratio is meaningful where an absolute bound would be noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..deploy.figures import percentile


@dataclass(frozen=True)
class Latency:
    model_version: str
    requests: int
    p99_ms: float | None  # None: no answered request


def latency_by_version(records: list[dict]) -> list[Latency]:
    """The answered requests of each version (in order of first appearance) and their p99, in ms."""
    times: dict[str, list[float]] = {}
    for record in records:
        version, latency = record.get("model_version"), record.get("latency_ms")
        if "error" in record or not isinstance(version, str) or not isinstance(latency, int | float):
            continue
        times.setdefault(version, []).append(float(latency))
    return [Latency(version, len(found), percentile(found, 99)) for version, found in times.items()]


def slowdowns(latencies: list[Latency]) -> list[tuple[Latency, Latency]]:
    """Each version paired with the one before it."""
    return list(zip(latencies[1:], latencies[:-1], strict=True))
