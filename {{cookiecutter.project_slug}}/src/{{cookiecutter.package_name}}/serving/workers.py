"""Several server processes on one address (`serving.workers`, `serve --workers N`).

Each worker is the whole server (serving/server.py's `run`) in a process of its own, started
fresh (spawn), listening on the shared port: the kernel spreads connections among them. Each
loads and follows the model source on its own (a promotion or rollback reaches every worker
within serving.reload_seconds), writes its own prediction log file, and counts into one
PROMETHEUS_MULTIPROC_DIR (made here when not given), so any worker's /metrics counts them all.
SIGTERM or SIGINT stops them all gracefully; a worker that stops on its own stops the others
and the command fails, for the supervisor (systemd, Kubernetes) to restart the whole.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Any

from ..config.settings import Settings
from ..paths import Paths
from .access import Access, check_access
from .errors import ServeError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STOP_SECONDS = 20  # after SIGTERM, a worker still running is killed


def serve_workers(
    settings: Settings,
    paths: Paths,
    model: str | None,
    host: str,
    port: int,
    log: bool,
    challenger: str | None,
    workers: int,
) -> None:
    """Run `workers` servers on host:port until SIGTERM or SIGINT; ServeError when one stops first."""
    import multiprocessing

    check_access(host, Access.from_env(host))  # refused before any worker starts
    made = None
    if not os.environ.get(MULTIPROC_ENV):
        made = tempfile.mkdtemp(prefix="serve-metrics-")
        os.environ[MULTIPROC_ENV] = made  # the workers inherit it
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of this one's state
    arguments = (settings, paths, model, host, port, log, challenger, True)
    processes = [context.Process(target=worker, args=arguments, name=f"serve-{n}") for n in range(workers)]
    try:
        for process in processes:
            process.start()
        print(f"serve: {workers} workers on http://{host}:{port}", flush=True)
        ended = wait_for(processes, stopping)
    finally:
        stop_all(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
            del os.environ[MULTIPROC_ENV]
    if ended is not None:
        raise ServeError(
            f"a worker stopped (exit code {ended.exitcode}): its lines above say why; all stopped"
        )


def worker(*arguments: Any) -> None:
    """One worker process: the server, or one `error:` line and exit 1 when it cannot start."""
    from .server import run

    try:
        run(*arguments)
    except ValueError as err:  # ServeError, and every refusal of settings or data
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def wait_for(processes: list[Any], stopping: threading.Event) -> Any:
    """Until a stop is asked for (None) or a worker ends on its own (that worker)."""
    while not stopping.wait(0.5):
        for process in processes:
            if not process.is_alive():
                return process
    return None


def stop_all(processes: list[Any]) -> None:
    """SIGTERM to every worker still running (each stops gracefully), then a kill past STOP_SECONDS."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
