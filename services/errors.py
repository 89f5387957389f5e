"""Domain errors: services raise these; `main.register_error_handlers` maps them to HTTP."""


class DomainError(Exception):
    """Base class; `status` and `message` are safe to show to a person."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    status = 400


class KeyRequired(DomainError):
    status = 401


class KeyForbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class PayloadTooLarge(DomainError):
    status = 413


class RateLimited(DomainError):
    status = 429

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers or {}


class ServiceUnavailable(DomainError):
    status = 503
