"""Refuses a chat at the door when MAX_CONCURRENT_CHATS are running: before the body is read or validated.

The routers hold the slots (services/core/admission.py); this pure ASGI middleware only answers early
what they would answer anyway, the same `Overloaded` 503 mapped by web/errors.py. Measured with a
burst of 1,000 chats at once (benchmarks/bench_capacity.py --burst): refusing in the handler costs
~3 ms of the one event loop per refusal (body parsing, validation, dependencies, the exception
path), time taken from the admitted chats; here it is the cost of the request head alone.
"""

from __future__ import annotations

from services.core.errors import Overloaded
from web.errors import domain_error_response

CHAT_PATHS = frozenset({"/api/chat", "/v1/chat/completions"})


class AdmissionGateMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in CHAT_PATHS:
            services = getattr(getattr(scope.get("app"), "state", None), "services", None)
            admission = getattr(services, "admission", None)
            if admission is not None and admission.full:
                try:
                    admission.refuse_if_full()
                except Overloaded as exc:
                    await domain_error_response(scope["path"], exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
