"""Dependencies shared by the routers, defined once."""

from typing import Annotated

from fastapi import Depends, Request

from services.app_services import AppServices


def get_services(request: Request) -> AppServices:
    return request.app.state.services


ServicesDep = Annotated[AppServices, Depends(get_services)]
