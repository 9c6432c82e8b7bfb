"""The error family. Handlers and the API raise these; runners and dialects map them once.

``RetryableError`` means "try the same event again later" (the runner naks with a delay);
``PoisonError`` means "this event can never succeed" (the job ends FAILED and the message is
terminated). API errors carry the HTTP status each dialect renders in its own body shape.
"""

from __future__ import annotations


class ShenavaError(Exception):
    """Base of every error Shenava raises on purpose."""


class RetryableError(ShenavaError):
    """A transient failure: the same input may succeed later."""

    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PoisonError(ShenavaError):
    """A permanent failure for this input: retrying cannot help. The message is the user's reason."""


class ConflictError(ShenavaError):
    """A conditional write lost against a concurrent writer more often than it may retry."""


class ApiError(ShenavaError):
    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self)


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class Unprocessable(ApiError):
    status = 422


class ServiceUnavailable(ApiError):
    status = 503


class OutboundRefused(ShenavaError):
    """An outbound request to a private, loopback or link-local address that is not allowed."""
