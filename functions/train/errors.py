"""The train function's errors: what makes a run fail at once (``Missing``, ``Invalid``: retrying
cannot change them) and what is worth another delivery (``RetryableError``).

Dataset-level errors (``DatasetNotFound``, ``NotTrained``, …) come from ``common.dataset_errors``.
"""

from __future__ import annotations

from events.errors import RetryableError
from functions.common.errors import DomainError, Invalid, Missing


class TrainError(DomainError):
    """Base of the train function's own errors."""


class MediaGone(TrainError, Missing):
    """An object the request names is no longer in the media bucket."""


class UnreadableMedia(TrainError, Invalid):
    """An image or video the models cannot read."""


class OperationMismatch(TrainError, Invalid):
    """The event names an export, the stored operation is an import (or the other way round)."""


class MediaUnavailable(RetryableError):
    """The media bucket did not answer; another delivery may find it."""
