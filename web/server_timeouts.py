"""uvicorn options for `python main.py`: bounded waits for slow clients (slow-loris) and no proxy guessing.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and caps a request head's size
(`h11_max_incomplete_event_size`), but a client that trickles its request line and headers, one
byte every few seconds, keeps its connection (and a file descriptor) forever. `TimedH11Protocol`
gives each request head BODY_READ_TIMEOUT_SECONDS to arrive, then answers 408 and closes; the body
has the same budget, enforced by web/body_limit.py.

`proxy_headers=False`: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1
(FORWARDED_ALLOW_IPS); here TRUSTED_PROXIES alone decides (web/client_ip.py).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from services.core.settings import Settings

KEEP_ALIVE_SECONDS = 5
MAX_HEAD_BYTES = 16 * 1024  # request line + headers; larger heads are refused by h11 (400, or the connection dropped)
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     b"content-length: 16\r\nconnection: close\r\n\r\nRequest timeout.")


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for every request head (request line and headers)."""

    head_timeout_seconds: float = 15.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._head_timer = None
        self._head_cycle = None
        super().connection_made(transport)
        self._arm_head_timer()

    def handle_events(self) -> None:
        super().handle_events()
        if self._head_timer is not None and self.cycle is not self._head_cycle:  # a new request's head is in
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        self._arm_head_timer()  # first: the parent may start a pipelined request, which cancels it again
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_cycle = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        # Written raw: h11 will not send a response to a request whose head it has not seen.
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` that bound how long and how much a client may send."""
    protocol = type("TimedH11Protocol", (TimedH11Protocol,),
                    {"head_timeout_seconds": max(float(settings.body_read_timeout_seconds), 0.1)})
    return {"http": protocol, "timeout_keep_alive": KEEP_ALIVE_SECONDS,
            "h11_max_incomplete_event_size": MAX_HEAD_BYTES, "proxy_headers": False}
