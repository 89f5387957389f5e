"""Dependencies shared by the routers, defined once."""

from typing import Annotated

from fastapi import Depends, Request

from services.app_services import AppServices


async def get_services(request: Request) -> AppServices:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop that
    # cost ~0.3 ms on every request here (benchmarks/bench_read_endpoints.py)
    return request.app.state.services


ServicesDep = Annotated[AppServices, Depends(get_services)]
