"""Domain errors: services raise these; `web/errors.py` maps them to HTTP for both API styles."""


class StartupError(RuntimeError):
    """The service cannot start (data dir in use, KB built by another model...): one line says why and what to do."""


def describe_failure(exc: BaseException) -> str:
    """The exception and its root cause, a line each at most (chained transport errors are long), for one-line reports."""
    def line(error: BaseException) -> str:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {text}" if text else type(error).__name__

    root = exc
    for _ in range(10):  # bounded: a chain can loop
        cause = root.__cause__ or (None if root.__suppress_context__ else root.__context__)
        if cause is None:
            break
        root = cause
    return line(exc) if root is exc else f"{line(exc)} ({line(root)})"


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


class Overloaded(ServiceUnavailable):
    """This process already runs MAX_CONCURRENT_CHATS chat streams (services.core.admission)."""

    code = "overloaded"
