"""Running the app under uvicorn: timeouts, concurrency bounds, graceful shutdown."""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import asyncio
import contextlib
import logging
import signal
import socket
import threading

from ..config.serving import ServingSettings
from ..config.settings import Settings
from ..paths import Paths
from ..schema import Contract
from ..served_log import local_folder
from .access import Access, check_access
from .app import create_app
from .errors import ServeError
from .middleware import read_timeout
from .sources import ModelSource, RegistrySource, Served, default_source, parse_source

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 10
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_CONCURRENCY = 512  # connections plus requests in progress; beyond, new requests get 503


def run(
    settings: Settings,
    paths: Paths,
    model: str | None,
    host: str,
    port: int,
    log: bool,
    challenger: str | None = None,
    shared_port: bool = False,
) -> None:
    """Load the model from its source, then serve until SIGTERM or SIGINT (exit 0 after a clean stop).

    Refused (before anything loads) on an address that is not loopback without an admin token.
    `challenger`: the second model's source ("" : none, None: the alias in serving.shadow or split).
    `shared_port`: one of several worker processes on the address (serving/workers.py).
    """
    from ..schema import load_contract

    access = Access.from_env(host)
    check_access(host, access)
    source = parse_source(model, settings, paths) if model else default_source(settings, paths)
    second = challenger_source(settings, paths, challenger)
    contract = load_contract(paths.contract)
    served = source.load(contract)
    loaded = first_load(second, contract)
    log_folder = local_folder(settings.serving.log, paths) if log else None
    app = create_app(served, contract, settings.serving, log_folder, source, access, loaded, second)
    config = server_config(app, host, port, settings.serving)
    print(f"serve: model {served.version} from {source} on http://{host}:{port}", flush=True)
    if second is not None:
        how = (
            "in shadow" if settings.serving.shadow else f"on {settings.serving.split.share:g} of the requests"
        )
        what = f"challenger {loaded.version}" if loaded else "no challenger yet"
        print(f"serve: {what} from {second}, {how}", flush=True)
    uvicorn_server(config).run(sockets=[shared_socket(host, port)] if shared_port else None)


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening address that several processes bind at once (SO_REUSEPORT): the kernel spreads
    new connections among them. Only processes of the same user may share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ServeError(f"{host}:{port}: cannot listen there ({err.strerror})") from None
    return sock


def challenger_source(settings: Settings, paths: Paths, given: str | None) -> ModelSource | None:
    """Where the second model comes from: `--challenger`, else the alias serving.shadow or
    serving.split.alias names in the registry; None without either (or with `--challenger ""`)."""
    from ..tracking import absolute_uri

    serving = settings.serving
    if given:
        if not serving.challenger:
            raise ServeError("--challenger: set serving.shadow or serving.split.alias to say how it is used")
        return parse_source(given, settings, paths)
    if given == "" or not serving.challenger:
        return None
    uri = absolute_uri(settings.mlflow.tracking_uri, paths.root)
    return RegistrySource(settings.mlflow.registered_model, uri, alias=serving.challenger)


def first_load(source: ModelSource | None, contract: Contract) -> Served | None:
    """The challenger at start; None (loaded by a later poll) while its alias does not exist yet."""
    if source is None:
        return None
    try:
        source.fingerprint()
    except ServeError as err:
        logger.warning("no challenger yet: %s", err)
        return None
    return source.load(contract)


def server_config(app, host: str, port: int, serving: ServingSettings):
    """uvicorn's settings: quiet, bounded in connections and in the time a slow client is given."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONCURRENCY,
        http=head_timeout_protocol(read_timeout(serving)),
    )


def head_timeout_protocol(seconds: float) -> type:
    """uvicorn's HTTP protocol, closing a connection whose next request head is not in within `seconds`.

    uvicorn times out only a kept-alive connection that sends nothing; one that is opened and
    stays silent, or trickles its head byte by byte, would be held forever.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class Protocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_head(None)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head(self.cycle)

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self, previous) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(seconds, self._head_overdue, previous)

        def _head_overdue(self, previous) -> None:
            # No request begun since `previous` (None: since the connection opened) was answered.
            waiting = self.cycle is previous and (previous is None or previous.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return Protocol


def uvicorn_server(config):
    """uvicorn's server, but SIGTERM or SIGINT is a clean stop with exit code 0, not a re-raised signal."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield  # signals reach the main thread only (a server run by a test in a thread)
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server(config)
