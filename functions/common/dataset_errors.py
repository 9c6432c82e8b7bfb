"""What can go wrong with a Kashf dataset, in the datasets' own terms.

Each error is one of the domain kinds of ``functions.common.errors`` — ``Missing`` (404, poison in
a worker), ``Invalid`` (400, poison) or ``WrongState`` (409) — so the API maps them once and a
worker fails a run at once instead of retrying what cannot change.
"""

from __future__ import annotations

from functions.common.errors import DomainError, Invalid, Missing, WrongState


class DatasetError(DomainError):
    """Base of the datasets' errors."""


class InvalidSlug(DatasetError, Invalid):
    pass


class DatasetNotFound(DatasetError, Missing):
    pass


class DatasetExists(DatasetError, WrongState):
    pass


class DatasetBusy(DatasetError, WrongState):
    """A training or retagging run is in progress."""


class WrongDatasetType(DatasetError, Invalid):
    """The dataset holds another kind of data than the request is about."""


class NotTrained(DatasetError, Invalid):
    """The dataset has no trained version to tag with (a 400, as Kashf has always answered)."""


class NothingToTrain(DatasetError, Invalid):
    """No active tag, no report on one, or no usable item."""


class TagNotFound(DatasetError, Missing):
    pass


class TagOfAnotherDataset(DatasetError, Invalid):
    pass


class TagTitleTaken(DatasetError, WrongState):
    pass


class ReportNotFound(DatasetError, Missing):
    pass


class EmptyQuery(DatasetError, Invalid):
    pass


class OperationNotFound(DatasetError, Missing):
    """No export or import of that id."""


class TaggingRequestGone(DatasetError, Missing):
    pass


class StoredFileGone(DatasetError, Missing):
    """A dataset image or an export's file is no longer in the media bucket."""
