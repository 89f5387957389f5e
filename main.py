"""C# AI Buddy API: `create_app(settings)` builds the app; `python main.py` serves it.

`python main.py ingest ...` and `python main.py seed` run the ingestion commands (see README).
"""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.core.settings import VERSION, Settings

if TYPE_CHECKING:
    from agents.models.interface import Model

    from services.retrieval.embeddings import Embedder
    from services.storage.database import Database

log = logging.getLogger("csharp_ai_buddy")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, *, model: Model | None = None, embedder: Embedder | None = None,
               clock: Callable[[], float] | None = None, database: Database | None = None) -> FastAPI:
    """Build the FastAPI app; every client is opened in the lifespan from `settings`.

    `model` replaces the configured model (e.g. `agents.testing.ScriptedModel`), `embedder` the
    configured embedder (tests share one loaded model), `clock` the rate limits' monotonic clock,
    `database` an already open database the caller owns (tests run two apps on one, as two workers).
    """
    settings = settings or Settings()
    from services.lifespan import open_services

    overrides = {k: v for k, v in (("model", model), ("embedder", embedder), ("clock", clock), ("database", database))
                 if v is not None}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from services.core.errors import StartupError

        try:
            async with open_services(settings, **overrides) as services:
                app.state.services = services
                yield
        except StartupError as exc:
            app.state.startup_error = exc  # `serve` prints it as one line
            raise

    app = FastAPI(
        title="C# AI Buddy API",
        version=VERSION,
        description="A C#/.NET AI domain expert: grounded, cited answers streamed as NDJSON.",
        lifespan=lifespan,
        docs_url=None,  # served by web/docs.py with assets from a pinned package: no CDN, works offline
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,  # DOCS_ENABLED=false: no schema, no docs
    )
    app.state.settings = settings
    origins = ["*"] if settings.is_development else settings.cors_origins
    from services.core.rate_limits import RATE_LIMIT_HEADERS
    from web.admission_gate import AdmissionGateMiddleware
    from web.body_limit import BodyLimitMiddleware
    from web.errors import register_error_handlers
    from web.metrics_middleware import MetricsMiddleware

    # Added before CORS so CORS stays outermost: a 413 still carries the CORS headers a browser needs.
    app.add_middleware(BodyLimitMiddleware, read_timeout_seconds=settings.body_read_timeout_seconds)
    app.add_middleware(AdmissionGateMiddleware)  # a full server refuses chats before reading them (counted, CORS'd)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=not settings.is_development,
                       allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"], expose_headers=RATE_LIMIT_HEADERS)
    register_error_handlers(app)
    from web.docs import add_offline_docs

    add_offline_docs(app)

    from routers import chat, conversations, feedback, health, metrics, news, openai_compat, samples, site, telemetry

    for module in (health, chat, conversations, site, news, samples, feedback, telemetry, metrics, openai_compat):
        app.include_router(module.router)
    if STATIC_DIR.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def serve(settings: Settings) -> int:
    """Run uvicorn; a known start-up failure prints one line (no traceback) and exits with 2."""
    import uvicorn

    from services.cli import EXIT_STARTUP

    from web.server_timeouts import uvicorn_options

    options = {**uvicorn_options(settings), **_event_loop()}
    workers = settings.workers
    if workers > 1 and settings.uses_embedded_store:
        log.warning("WORKERS=%d ignored: the embedded database serves one process, so one worker runs; set "
                    "MONGODB_URI (MongoDB/Atlas) to run several", workers)
        workers = 1
    if workers > 1:
        return _serve_workers(settings, workers, options)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(_OneLineStartupFailures(app), host=settings.bind_host, port=settings.port,
                                           log_level="info", lifespan="on", **options))
    try:
        server.run()
    except SystemExit:  # uvicorn exits with 3 on a failed start-up; we say why and use our code
        pass
    error = getattr(app.state, "startup_error", None)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_STARTUP
    return 0 if server.started else EXIT_STARTUP


def _event_loop() -> dict:
    """uvloop when installed (requirements.txt): ~the same code, less CPU per streamed event (README "Capacity")."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"loop": "uvloop"}


def _serve_workers(settings: Settings, workers: int, options: dict) -> int:
    """`workers` processes under uvicorn's supervisor, each building its app from the environment.

    uvicorn's own multiprocess mode (not gunicorn): no second server package or config, the same
    protocol options and timeouts as one process, and its supervisor pings and restarts dead workers.
    Each worker runs `create_worker_app` (import string + factory: spawned processes cannot be handed
    an app object), which reads `Settings()` from the environment like this process did.
    """
    import os

    import uvicorn

    os.environ["HOST"], os.environ["PORT"] = settings.bind_host, str(settings.port)  # the CLI's overrides too
    options = {**options, "http": _worker_protocol(options.get("http"))}
    log.info("starting %d workers (MONGODB_URI: shared store; MAX_CONCURRENT_CHATS=%d each)", workers,
             settings.max_concurrent_chats)
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from services.cli import EXIT_STARTUP

    config = uvicorn.Config("main:create_worker_app", factory=True, workers=workers, host=settings.bind_host,
                            port=settings.port, log_level="info", lifespan="on", **options)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()  # until a signal, or a worker fails to start (it printed its one line)
    return EXIT_STARTUP if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


def _worker_protocol(protocol):
    # A worker gets its options by pickling; uvicorn_options' per-settings subclass does not pickle, so
    # workers get the importable class and `create_worker_app` sets the timeout from the settings.
    from web.server_timeouts import TimedH11Protocol

    if isinstance(protocol, type) and issubclass(protocol, TimedH11Protocol):
        return TimedH11Protocol
    return protocol


def create_worker_app() -> "_OneLineStartupFailures":
    """One worker's app (`WORKERS` > 1): settings from the environment, the head timeout from them."""
    settings = Settings()
    from web.server_timeouts import TimedH11Protocol

    TimedH11Protocol.head_timeout_seconds = max(float(settings.body_read_timeout_seconds), 0.1)
    return _OneLineStartupFailures(create_app(settings), print_error=True)


class _OneLineStartupFailures:
    """Drops the traceback uvicorn would log for a `StartupError`; `serve` prints its one line instead."""

    def __init__(self, app: FastAPI, *, print_error: bool = False) -> None:
        self.app = app
        self.print_error = print_error  # a worker says it itself: its parent process cannot see the app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet_send(message) -> None:
            error = getattr(self.app.state, "startup_error", None)
            if message["type"] == "lifespan.startup.failed" and error is not None:
                message = {**message, "message": ""}
                if self.print_error:
                    print(f"error: {error}", file=sys.stderr, flush=True)
            await send(message)

        await self.app(scope, receive, quiet_send)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from services.cli import build_parser, run_cli

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    if args.command not in (None, "serve"):
        return run_cli(argv)
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError: a setting has an unusable value
        print(f"error: invalid settings: {exc}".splitlines()[0] + " (see .env.example)", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None)))
                 if v is not None}
    return serve(settings.model_copy(update=overrides) if overrides else settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
