"""The monitor's gauges to a Prometheus Pushgateway, for a monitor that runs where Prometheus
cannot scrape it (a scheduled CI job). One group per model: each push replaces the last, so a
check that is no longer judged leaves no stale gauge behind."""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

JOB = "model_monitor"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT_SECONDS = 15.0


class PushError(Exception):
    """The gauges could not be pushed: one line saying where and why."""


@dataclass(frozen=True)
class Target:
    url: str  # the group's address, without credentials
    headers: dict[str, str]
    shown: str  # the gateway as messages name it: never its password


def target(gateway: str, model: str) -> Target:
    """The group (job JOB, label model) at the gateway `http(s)://[user:password@]host[:port][/path]`;
    credentials in the address become a basic-auth header. Raises PushError for another address."""
    parts = urllib.parse.urlsplit(gateway.strip())
    shown = _without_credentials(parts)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
        raise PushError(f"{shown!r}: expected http(s)://host[:port] of a Pushgateway")
    if parts.query or parts.fragment:
        raise PushError(f"{shown!r}: expected an address without ?query or #fragment")
    base = shown.rstrip("/")
    # base64 in the path: a model name may hold any character, even a slash.
    encoded = base64.urlsafe_b64encode(model.encode()).decode() or "="
    headers = {"Content-Type": TEXT_FORMAT}
    if parts.username is not None:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return Target(f"{base}/metrics/job/{JOB}/model@base64/{encoded}", headers, base)


def push(text: str, to: Target, timeout: float = TIMEOUT_SECONDS) -> None:
    """PUT the gauges (text format) as the group's whole content. Raises PushError, naming the
    gateway and its answer, when it is unreachable or refuses them."""
    sent = urllib.request.Request(to.url, data=text.encode(), headers=to.headers, method="PUT")
    try:
        with urllib.request.urlopen(sent, timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        said = err.read(500).decode(errors="replace").strip().splitlines()
        reason = f"HTTP {err.code}" + (f": {said[0]}" if said else "")
        raise PushError(f"the Pushgateway at {to.shown} refused the gauges ({reason})") from None
    except (urllib.error.URLError, OSError) as err:
        why = getattr(err, "reason", err)
        raise PushError(f"no Pushgateway answered at {to.shown} within {timeout:g} s ({why})") from None


def _without_credentials(parts: urllib.parse.SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _port_ok(parts: urllib.parse.SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 (reading it checks it: a port past 65535 or not a number raises)
    except ValueError:
        return False
    return True
