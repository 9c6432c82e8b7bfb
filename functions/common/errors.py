"""The error family of ``functions``. API errors carry the HTTP status each dialect renders in
its own body shape; how a handler steers its runner (``PoisonError``, ``RetryableError``) is the
runner's contract and lives in ``events.errors``.
"""

from __future__ import annotations


class ShenavaError(Exception):
    """Base of every error Shenava raises on purpose."""


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
