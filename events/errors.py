"""How a handler tells a runner what to do with an event it could not handle.

``RetryableError``: try the same event again later (the runner naks with a delay, or the SQS
runner hides the message for that long). ``PoisonError``: this event can never succeed (the
function's ``on_failure`` ends the job FAILED with the message as its reason; the message is
terminated). Any other exception is retried like ``RetryableError`` until the attempts run out.
"""

from __future__ import annotations


class EventError(Exception):
    """Base of the errors a handler raises to steer its runner."""


class RetryableError(EventError):
    """A transient failure: the same input may succeed later."""

    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PoisonError(EventError):
    """A permanent failure for this input: retrying cannot help. The message is the user's reason."""
