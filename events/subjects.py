"""The stream's subjects and the functions' durable consumers: one place for every name on the bus.

An event's subject is derived from its ``type`` (``events.models``), so each name is spelled once.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.models import (
    SUBJECT_PREFIX,
    DatasetExportRequested,
    DatasetImportRequested,
    DatasetRetagRequested,
    DatasetTrainRequested,
    DatasetWorkDone,
    DeliveryReplayRequested,
    JobCompleted,
    JobDiarized,
    JobFailed,
    JobQueued,
    JobStarted,
    JobStopped,
    ObjectCreated,
    TaggingRequested,
)

OBJECT_CREATED = ObjectCreated.subject_of()
JOB_QUEUED = JobQueued.subject_of()
JOB_QUEUED_HIGH = f"{JOB_QUEUED}.high"  # TRD priority above 50
JOB_QUEUED_LOW = f"{JOB_QUEUED}.low"  # TRD priority below 50
JOB_STARTED = JobStarted.subject_of()
JOB_DIARIZED = JobDiarized.subject_of()
JOB_COMPLETED = JobCompleted.subject_of()
JOB_FAILED = JobFailed.subject_of()
JOB_STOPPED = JobStopped.subject_of()
DELIVERY_REPLAY = DeliveryReplayRequested.subject_of()
DATASET_TRAIN = DatasetTrainRequested.subject_of()
DATASET_RETAG = DatasetRetagRequested.subject_of()
DATASET_EXPORT = DatasetExportRequested.subject_of()
DATASET_IMPORT = DatasetImportRequested.subject_of()
DATASET_TAGGING = TaggingRequested.subject_of()
DATASET_DONE = DatasetWorkDone.subject_of()
ALL_SUBJECTS = [f"{SUBJECT_PREFIX}.>"]


@dataclass(frozen=True)
class ConsumerSpec:
    """A function's durable pull consumer: what it listens to."""

    durable: str
    subjects: tuple[str, ...]


def event_type(subject: str) -> str:
    """The event type a subject carries (priority bands are one type: ``job.queued``)."""
    kind = subject.removeprefix(f"{SUBJECT_PREFIX}.")
    return kind.removesuffix(".high").removesuffix(".low")


INGEST = ConsumerSpec("ingest", (OBJECT_CREATED,))
# transcribe takes a queued job (claims it, announces job.started) and then the started job
# (runs the engine): the announcement reaches subscribers before the long work begins.
# A worker reads its consumers in this order: the work of a job it (or another) claimed first,
# then queued jobs by priority band; within a band, in arrival order.
TRANSCRIBE_STARTED = ConsumerSpec("transcribe-started", (JOB_STARTED,))
TRANSCRIBE_HIGH = ConsumerSpec("transcribe-high", (JOB_QUEUED_HIGH,))
TRANSCRIBE = ConsumerSpec("transcribe", (JOB_QUEUED,))
TRANSCRIBE_LOW = ConsumerSpec("transcribe-low", (JOB_QUEUED_LOW,))
TRANSCRIBE_ORDER = (TRANSCRIBE_STARTED, TRANSCRIBE_HIGH, TRANSCRIBE, TRANSCRIBE_LOW)
TRANSCRIBE_QUEUES = (TRANSCRIBE_HIGH, TRANSCRIBE, TRANSCRIBE_LOW)
NOTIFY = ConsumerSpec("notify", (JOB_STARTED, JOB_COMPLETED, JOB_FAILED, JOB_STOPPED, DELIVERY_REPLAY))
# train reads tagging requests first (a caller may be waiting on them), then the long dataset work.
TRAIN_TAGGING = ConsumerSpec("train-tagging", (DATASET_TAGGING,))
TRAIN = ConsumerSpec("train", (DATASET_TRAIN, DATASET_RETAG, DATASET_EXPORT, DATASET_IMPORT))
TRAIN_ORDER = (TRAIN_TAGGING, TRAIN)
