"""The one error mapper: domain errors, invalid requests and surprises → HTTP, in each API's style.

`/v1/...` answers in OpenAI's error JSON (`{"error": {"message", "type", "param", "code"}}`, schema
errors as 400), which OpenAI clients parse into their exceptions; every other route answers
`{"detail": ...}` (schema errors as 422, FastAPI's convention and the original API's).
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.core.errors import DomainError

log = logging.getLogger("csharp_ai_buddy")
OPENAI_PREFIX = "/v1/"
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
                503: "server_error"}
_ERROR_CODES = {401: "missing_api_key", 403: "invalid_api_key", 413: "request_too_large",
                429: "rate_limit_exceeded"}


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX)


def openai_error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict:
    """OpenAI's error JSON: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code or _ERROR_CODES.get(status)}}


def error_payload(path: str, status: int, message: str, *, code: str | None = None) -> dict:
    """The error body for `path` in its API's style (also used by the pure ASGI middlewares)."""
    return openai_error_body(status, message, code=code) if is_openai_path(path) else {"detail": message}


def _openai_validation_body(errors: list[dict]) -> dict:
    """A 400 body naming the first invalid field (never echoing the submitted value)."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", []) if p != "body"]
    param = ".".join(loc) or None
    message = first.get("msg", "Invalid request body.")
    if first.get("type") == "json_invalid":
        message, param = "The request body is not valid JSON.", None
    return openai_error_body(400, f"{param}: {message}" if param else message, param=param, code="invalid_request")


def _validation_detail(errors: list[dict]) -> list[dict]:
    # Only field locations and pydantic's messages: never the submitted values back.
    return [{"loc": list(err.get("loc", [])), "msg": err.get("msg", "invalid value"), "type": err.get("type", "")}
            for err in errors]


def domain_error_response(path: str, exc: DomainError) -> JSONResponse:
    """A domain error as HTTP: its status, Retry-After and headers, the body in `path`'s API style."""
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = error_payload(path, exc.status, exc.message, code=exc.code)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def register_error_handlers(app: FastAPI) -> None:
    """Install the mapper on `app`."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if is_openai_path(request.url.path):
            return JSONResponse(_openai_validation_body(list(exc.errors())), status_code=400)
        return JSONResponse({"detail": _validation_detail(list(exc.errors()))}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        # FastAPI's own refusals (404/405, an unparsable body). JSON nested past Python's recursion
        # limit reaches here as "error parsing the body" caused by a RecursionError: say what it is.
        if isinstance(exc.__cause__, RecursionError):
            exc = HTTPException(400, "The request body's JSON is nested too deeply.", headers=exc.headers)
        if is_openai_path(request.url.path) and exc.status_code >= 400:
            message = exc.detail if isinstance(exc.detail, str) else "The request could not be processed."
            return JSONResponse(openai_error_body(exc.status_code, message), status_code=exc.status_code,
                                headers=exc.headers)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error (request %s) on %s %s", request_id, request.method, request.url.path)
        message = f"Internal error (request id {request_id}). Please try again."
        return JSONResponse(error_payload(request.url.path, 500, message), status_code=500)
