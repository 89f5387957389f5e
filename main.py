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

log = logging.getLogger("csharp_ai_buddy")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, *, model: Model | None = None, embedder: Embedder | None = None,
               clock: Callable[[], float] | None = None) -> FastAPI:
    """Build the FastAPI app; every client is opened in the lifespan from `settings`.

    `model` replaces the configured model (e.g. `agents.testing.ScriptedModel`), `embedder` the
    configured embedder (tests share one loaded model), `clock` the rate limits' monotonic clock.
    """
    settings = settings or Settings()
    from services.lifespan import open_services

    overrides = {k: v for k, v in (("model", model), ("embedder", embedder), ("clock", clock)) if v is not None}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with open_services(settings, **overrides) as services:
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
    from services.core.rate_limits import RATE_LIMIT_HEADERS
    from web.body_limit import BodyLimitMiddleware
    from web.errors import register_error_handlers
    from web.metrics_middleware import MetricsMiddleware

    # Added before CORS so CORS stays outermost: a 413 still carries the CORS headers a browser needs.
    app.add_middleware(BodyLimitMiddleware)
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
