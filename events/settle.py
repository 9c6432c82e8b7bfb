"""What becomes of an event after its handler ran: one policy for the NATS and the SQS runners.

``settle(error, attempt, …)`` is pure: no error → ``Ack``; ``PoisonError`` → ``Fail`` with its
message as the job's reason; any other error → ``Retry`` after the error's own delay
(``RetryableError.delay_s``) or the backoff for this attempt, until the last allowed attempt,
which → ``Fail`` naming the error and the attempts. Each runner carries the outcome out its own
way: ``ack``/``nak(delay)``/``on_failure`` + ``term`` on NATS; delete, a visibility timeout, or
``on_failure`` on SQS.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from events.errors import PoisonError, RetryableError
from events.models import Event, JobEvent


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Retry:
    delay_s: float


@dataclass(frozen=True)
class Fail:
    reason: str


Outcome = Ack | Retry | Fail


def settle(error: Exception | None, attempt: int, max_deliver: int, backoff_s: Sequence[float]) -> Outcome:
    if error is None:
        return Ack()
    if isinstance(error, PoisonError):
        return Fail(str(error))
    if attempt >= max_deliver:
        detail = str(error) or type(error).__name__
        return Fail(f"{detail} (gave up after {attempt} attempts)")
    own = error.delay_s if isinstance(error, RetryableError) else None
    return Retry(own or backoff(attempt, backoff_s))


def backoff(attempt: int, backoff_s: Sequence[float]) -> float:
    """The delay after failed attempt ``attempt`` (from 1); the last one repeats."""
    return backoff_s[min(max(attempt, 1) - 1, len(backoff_s) - 1)]


def log_context(function: str, event: Event, attempt: int) -> dict[str, object]:
    """Log fields: which function, which event (and job and tenant), which attempt."""
    context: dict[str, object] = {
        "function": function, "event_id": event.id, "event_type": event.type, "attempt": attempt,
    }  # fmt: skip
    if isinstance(event, JobEvent):
        context.update(job_id=event.job_id, tenant=event.tenant)
    return context


def log_outcome(
    log: logging.Logger, outcome: Outcome, error: Exception | None, context: dict[str, object]
) -> None:
    """One line per failed attempt, at the level it deserves."""
    attempt = context.get("attempt")
    if isinstance(outcome, Retry):
        expected = isinstance(error, RetryableError)
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "attempt %s failed, retrying in %.1fs: %r", attempt, outcome.delay_s, error,
            extra=context, exc_info=not expected,
        )  # fmt: skip
    elif isinstance(outcome, Fail) and isinstance(error, PoisonError):
        log.warning("permanent failure: %s", error, extra=context)
    elif isinstance(outcome, Fail):
        log.error("giving up after %s attempts: %s", attempt, error, extra=context)
