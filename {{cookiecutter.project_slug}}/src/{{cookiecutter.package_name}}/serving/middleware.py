"""ASGI middleware of the server: body size and time limits on /predict, and request timing."""

import asyncio
import json
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

from ..config.serving import ServingSettings


class PredictGuard:
    """ASGI middleware for one path: refuse bodies over the limit (413), time and count requests."""

    def __init__(self, app, limit: int, path: str, record: Callable[[dict, int, float], None]) -> None:
        self.app, self.limit, self.path, self.record = app, limit, path, record

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        started = scope["started"] = time.perf_counter()
        status = [500]
        recorded = [False]

        async def reply(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that has its answer finds it in /metrics.
                self.record(scope, status[0], time.perf_counter() - started)
                recorded[0] = True
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(reply)  # counted by reply
            return
        seen = 0

        async def limited():
            # A body without a length (chunked) is counted as it arrives.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, reply)
        if not recorded[0]:
            self.record(scope, status[0], time.perf_counter() - started)

    async def _too_large(self, send) -> None:
        body = json.dumps({"error": f"request body over {self.limit} bytes", "detail": []}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyDeadline:
    """ASGI middleware: the whole request body must arrive within `seconds` of its head, else 408.

    Only reading the body is bounded; waiting for a disconnect after it is not.
    """

    def __init__(self, app, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        done = False

        async def timed():
            nonlocal done
            if done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.seconds) from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


class BodyTimeout(HTTPException):
    """The body did not arrive in time (an HTTPException, so FastAPI passes it on, as BodyTooLarge)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s")


class BodyTooLarge(HTTPException):
    """Raised while reading a body without a length that grows over the limit.

    An HTTPException, so that FastAPI passes it on instead of calling it a parse error (400).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


def read_timeout(serving: ServingSettings) -> float:
    """Seconds for a request's head, and then its body, to arrive."""
    return float(serving.body_timeout_seconds)
