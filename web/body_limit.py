"""A cap on request body size, enforced before anything reads the body (413, never a 500 or a stall).

Without it every POST body is read whole into memory (the rate limiter reads it to find the magic
key, FastAPI to parse it), so one client could make the server buffer any amount. The largest real
request is a chat with a long history; 512 KiB holds ~130k tokens of text, far past any useful turn.
"""

from __future__ import annotations

import json

from web.errors import error_payload

MAX_BODY_BYTES = 512 * 1024


class BodyLimitMiddleware:
    """Pure ASGI: refuse a body over `max_bytes` by its Content-Length, or while a chunked one arrives."""

    def __init__(self, app, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:  # the server enforces the declared framing, so the header is the size
            if declared > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # Chunked upload: read it here up to the cap (every route reads it whole anyway), then replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the client to go away, as usual

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send) -> None:
        text = f"The request body is larger than {self.max_bytes // 1024} KB."
        body = json.dumps(error_payload(scope.get("path", ""), 413, text)).encode()
        await send({"type": "http.response.start", "status": 413,
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
