"""C# AI Buddy API: `create_app(settings)` builds the app; `python main.py` serves it.

`python main.py ingest ...` and `python main.py seed` run the ingestion commands (see README).
"""

from __future__ import annotations

import logging
import sys
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from services.errors import DomainError
from services.settings import VERSION, Settings

log = logging.getLogger("csharp_ai_buddy")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _validation_message(exc: RequestValidationError) -> list[dict]:
    # Only field locations and pydantic's messages: never the submitted values back.
    return [{"loc": list(err.get("loc", [])), "msg": err.get("msg", "invalid value"), "type": err.get("type", "")}
            for err in exc.errors()]


def register_error_handlers(app: FastAPI) -> None:
    """The one place domain errors and unexpected failures become HTTP responses."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", {}) or {})
        if getattr(exc, "retry_after", None) is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error (request %s) on %s %s", request_id, request.method, request.url.path)
        return JSONResponse({"detail": f"Internal error (request id {request_id}). Please try again."}, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; every client is opened in the lifespan from `settings`."""
    settings = settings or Settings()
    from services.lifespan import open_services

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with open_services(settings) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="C# AI Buddy API",
        version=VERSION,
        description="A C#/.NET AI domain expert: grounded, cited answers streamed as NDJSON.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    origins = ["*"] if settings.is_development else settings.cors_origins
    from services.body_limit import BodyLimitMiddleware
    from services.metrics import MetricsMiddleware
    from services.rate_limit import RATE_LIMIT_HEADERS, RateLimitMiddleware

    # Added before CORS so CORS stays outermost: a 429 still carries the CORS headers a browser needs.
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware)  # outside the rate limiter, which reads the whole body
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=not settings.is_development,
                       allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"], expose_headers=RATE_LIMIT_HEADERS)
    register_error_handlers(app)

    from routers import chat, conversations, feedback, health, metrics, news, openai_compat, samples, site, telemetry

    for module in (health, chat, conversations, site, news, samples, feedback, telemetry, metrics, openai_compat):
        app.include_router(module.router)
    if STATIC_DIR.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("ingest", "seed"):
        from services.cli import run_cli

        return run_cli(argv)
    import uvicorn

    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
