"""Serve one benchmark target on 127.0.0.1 with identical uvicorn flags: `app` (the service, configured
from the environment like `python main.py`) or `bare` (a bare FastAPI JSON endpoint, the baseline).

    python benchmarks/serve.py app|bare     # PORT from the environment; BARE_PAYLOAD: a JSON file for /bare
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def bare_app():
    from fastapi import FastAPI

    path = os.environ.get("BARE_PAYLOAD")
    payload = json.loads(Path(path).read_text()) if path else {"message": "hello"}
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "healthy"}

    @app.get("/bare")
    async def bare() -> dict:
        return payload

    return app


def main() -> None:
    import uvicorn

    target = sys.argv[1] if len(sys.argv) > 1 else "app"
    if target == "bare":
        app = bare_app()
    else:
        from main import create_app
        from services.core.settings import Settings

        app = create_app(Settings(_env_file=None))
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
