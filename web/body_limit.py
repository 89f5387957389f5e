"""A cap on request body size and on the time the body may take to arrive (413 / 408, never a 500 or a stall).

The bytes that actually arrive decide, whatever the framing: a request may declare
`Content-Length: 20` and still send a chunked body (`Transfer-Encoding` wins in the server), so
the declared length is only used to refuse early, never to trust a body. Nothing is buffered here:
`receive` is wrapped to count what the server delivers, and once the count passes the cap the app
gets an error instead of more bytes, and the client a 413 (the rest of its body is never read).

The body must also arrive within `read_timeout_seconds` of the request's start (a slow-loris
client trickling its body would otherwise hold a worker slot for as long as it likes): 408.

The largest real request is a chat with a long history; 512 KiB holds ~130k tokens of text, far
past any useful turn.
"""

from __future__ import annotations

import asyncio
import json

from web.errors import error_payload

MAX_BODY_BYTES = 512 * 1024
BODY_READ_TIMEOUT_SECONDS = 15.0


class BodyRefused(Exception):
    """Raised into the app from `receive`: the body went over the cap or took too long."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BodyLimitMiddleware:
    """Pure ASGI: refuse a body over `max_bytes` (as counted) or slower than `read_timeout_seconds`."""

    def __init__(self, app, *, max_bytes: int = MAX_BODY_BYTES,
                 read_timeout_seconds: float | None = BODY_READ_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout_seconds if read_timeout_seconds and read_timeout_seconds > 0 else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:  # refused before a byte of it is read
            await self._refuse(scope, send, 413)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout if self.read_timeout else None
        state = {"received": 0, "complete": False, "refused": None, "started": False, "replaced": False}

        async def counted_receive():
            if state["refused"] is not None:
                raise BodyRefused(state["refused"])
            if state["complete"]:  # after the body only the hang-up comes: no deadline for that wait
                return await receive()
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except asyncio.TimeoutError:
                state["refused"] = 408
                raise BodyRefused(408) from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["refused"] = 413
                    raise BodyRefused(413)
                if not message.get("more_body", False):
                    state["complete"] = True
            else:
                state["complete"] = True
            return message

        async def guarded_send(message) -> None:
            if state["replaced"]:
                return
            if state["refused"] is not None and not state["started"]:
                # The app turned the refused read into its own error response (FastAPI: a 400): ours instead.
                state["started"] = state["replaced"] = True
                await self._refuse(scope, send, state["refused"])
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyRefused:
            if not state["started"]:
                state["started"] = True
                await self._refuse(scope, send, state["refused"] or 413)
            return
        if state["refused"] is not None and not state["started"]:
            await self._refuse(scope, send, state["refused"])  # the app gave up without answering

    async def _refuse(self, scope, send, status: int) -> None:
        if status == 408:
            text = "The request body did not arrive in time."
        else:
            text = f"The request body is larger than {self.max_bytes // 1024} KB."
        body = json.dumps(error_payload(scope.get("path", ""), status, text)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
