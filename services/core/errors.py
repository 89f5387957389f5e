"""Domain errors: services raise these; `web/errors.py` maps them to HTTP for both API styles."""


class StartupError(RuntimeError):
    """The service cannot start (data dir in use, KB built by another model...): one line says why and what to do."""


class DomainError(Exception):
    """Base class; `status` and `message` are safe to show to a person; `code` is a machine-readable tag."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, *, retry_after: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.headers = headers or {}


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


class ServiceUnavailable(DomainError):
    status = 503
