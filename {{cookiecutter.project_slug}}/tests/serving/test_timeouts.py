"""Slow clients are cut off: many connections that stall in their body, their head or after
an answer are answered 408 or closed within `serving.body_timeout_seconds`, while
predictions go on; past MAX_CONCURRENCY, new requests get 503. The app runs in uvicorn
as `serve` configures it, in a thread on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from {{ cookiecutter.package_name }}.deploy.servers import free_port
from {{ cookiecutter.package_name }}.serving import server as serve
from {{ cookiecutter.package_name }}.serving.server import KEEP_ALIVE_SECONDS, MAX_CONCURRENCY, server_config

pytestmark = pytest.mark.serving

TIMEOUT = 1.0  # serving.body_timeout_seconds in these servers
SLACK = 2.0  # seconds allowed past the timeout on a shared machine
STALLED = 50
HEAD = b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
STALLED_BODY = HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"rows": ['  # 990 bytes short


@contextmanager
def running(app, serving) -> Iterator[str]:
    """The app in `serve`'s uvicorn server on a free loopback port; stopped at the end."""
    port = free_port()
    server = serve.uvicorn_server(server_config(app, "127.0.0.1", port, serving))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(serve.GRACEFUL_SHUTDOWN_SECONDS + 5)
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def timed_settings(settings):
    return settings.serving.model_copy(update={"body_timeout_seconds": TIMEOUT})


@pytest.fixture
def url(app_for, served, timed_settings) -> Iterator[str]:
    with running(app_for(served, body_timeout_seconds=TIMEOUT), timed_settings) as address:
        yield address


def predict(url: str, row: dict) -> int:
    """The status of one prediction (503 from uvicorn is plain text, not JSON)."""
    request = urllib.request.Request(
        f"{url}/predict", data=json.dumps(row).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert len(json.load(answer)["predictions"]) == 1
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def open_stalled(url: str, count: int, payload: bytes) -> list[socket.socket]:
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(count):
        stalled = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + SLACK)
        if payload:
            stalled.sendall(payload)
        sockets.append(stalled)
    return sockets


def until_closed(stalled: socket.socket, deadline: float) -> tuple[bytes, float]:
    """What the server sent before it closed the connection, and when it closed (fails at `deadline`)."""
    received = b""
    with stalled:
        while True:
            stalled.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = stalled.recv(65536)
            except TimeoutError:
                pytest.fail(f"still open {TIMEOUT + SLACK:g} s after it stalled; received {received[:80]!r}")
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return received, time.monotonic()
            received += chunk


def one_response(connection: socket.socket) -> bytes:
    """A whole HTTP response, head and body (Content-Length): a loaded machine may send it in parts."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a whole response head: {received[:80]!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, f"closed before the whole body: {body[:80]!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_stalled_bodies_get_408_and_closed_while_predictions_are_answered(url, rows):
    opened = time.monotonic()
    sockets = open_stalled(url, STALLED, STALLED_BODY)
    assert predict(url, rows[0]) == 200  # meanwhile, a client that sends its body
    deadline = opened + TIMEOUT + SLACK
    answers = [until_closed(stalled, deadline) for stalled in sockets]
    assert all(received.startswith(b"HTTP/1.1 408 ") for received, _ in answers), answers[0][0][:200]
    assert all(b"not received within 1 s" in received for received, _ in answers)
    lived = max(closed for _, closed in answers) - opened
    print(f"\n{STALLED} stalled bodies: all answered 408 and closed {lived:.2f} s after they were opened")
    assert predict(url, rows[0]) == 200


@pytest.mark.parametrize(
    "payload", [b"", HEAD[:20], HEAD + b"X-Slow: "], ids=["silent", "half-a-request-line", "half-the-headers"]
)
def test_connections_that_stall_before_their_head_is_complete_are_closed(url, rows, payload):
    opened = time.monotonic()
    sockets = open_stalled(url, STALLED, payload)
    assert predict(url, rows[0]) == 200
    answers = [until_closed(stalled, opened + TIMEOUT + SLACK) for stalled in sockets]
    assert all(received == b"" for received, _ in answers)
    assert all(closed - opened >= TIMEOUT * 0.9 for _, closed in answers)  # given the time, not cut at once


def test_a_kept_alive_connection_that_trickles_its_next_request_is_closed(url, rows):
    port = int(url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + SLACK)
    body = b'{"rows": []}'
    connection.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert one_response(connection).startswith(b"HTTP/1.1 422 ")  # answered; the connection is kept alive
    connection.sendall(HEAD[:30])  # the next request, never finished: uvicorn's keep-alive timer stops
    sent = time.monotonic()
    received, closed = until_closed(connection, sent + TIMEOUT + SLACK)
    assert received == b"" and closed - sent < TIMEOUT + SLACK
    assert KEEP_ALIVE_SECONDS <= 10  # an idle kept-alive connection (nothing sent) goes sooner still


def test_past_the_concurrency_bound_new_requests_get_503(app_for, served, rows, timed_settings, monkeypatch):
    assert 100 <= MAX_CONCURRENCY <= 4096
    monkeypatch.setattr(serve, "MAX_CONCURRENCY", 8)
    with running(app_for(served, body_timeout_seconds=TIMEOUT), timed_settings) as address:
        opened = time.monotonic()
        sockets = open_stalled(address, 8, STALLED_BODY)
        time.sleep(0.2)  # all eight heads read: eight requests in progress
        assert predict(address, rows[0]) == 503
        for stalled in sockets:
            until_closed(stalled, opened + TIMEOUT + SLACK)
        assert predict(address, rows[0]) == 200  # the stalled ones cut: room again
