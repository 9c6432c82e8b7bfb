"""The error family of ``functions``.

- **Domain errors** say what went wrong in Shenava's own terms: ``Missing`` (a document that is
  not there), ``Invalid`` (input that can never be right), ``WrongState`` (not allowed in the
  state the thing is in). Each package names its own (``JobNotFound``, ``DatasetNotFound``, …).
  The API maps them to status codes once (404, 400, 409; a dialect may say otherwise) and each
  dialect renders its own body. In a worker, ``Missing`` and ``Invalid`` are poison: retrying
  cannot make them right, so the job fails at once with the message as its reason.
- **API errors** (``ApiError``) are the HTTP layer's own: authentication, sizes, media types,
  availability; each carries its status.

How a handler steers its runner (``PoisonError``, ``RetryableError``) is the runner's contract
and lives in ``events.errors``.
"""

from __future__ import annotations

from events.errors import PoisonError


class ShenavaError(Exception):
    """Base of every error Shenava raises on purpose."""


class DomainError(ShenavaError):
    """What went wrong, in Shenava's terms."""


class Missing(DomainError, PoisonError):
    """A document that is not there (a job, a dataset, a tag)."""


class Invalid(DomainError, PoisonError):
    """Input that can never be right (an unknown language, a malformed value)."""


class WrongState(DomainError):
    """Not allowed in the state the thing is in now."""


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
