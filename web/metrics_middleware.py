"""Counts every HTTP request by route template (not raw path), method and status, into the app's metrics."""

from __future__ import annotations

import time

from services.observability.metrics import Metrics

UNMATCHED_ROUTE = "<unmatched>"
# Any other method string becomes one label: a client must not be able to mint label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Pure ASGI middleware: counts every HTTP request by route template (not raw path) and status."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics = _app_metrics(scope)
            if metrics is not None:
                route = _route_template(scope)
                method = scope.get("method", "")
                method = method if method in KNOWN_METHODS else "OTHER"
                metrics.http_requests.labels(method=method, route=route, status=str(status["code"])).inc()
                metrics.http_duration.labels(method=method, route=route).observe(time.perf_counter() - started)


def _app_metrics(scope) -> Metrics | None:
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    return getattr(services, "metrics", None)


def _route_template(scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is not None:
        return path or "/"
    # Refused before routing (body too large) or not found: one label, never the raw path.
    return UNMATCHED_ROUTE
