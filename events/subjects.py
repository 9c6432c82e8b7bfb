"""Subjects, the stream and the durable consumers: one place for every name on the bus."""

from __future__ import annotations

from dataclasses import dataclass

SUBJECT_PREFIX = "shenava"
OBJECT_CREATED = f"{SUBJECT_PREFIX}.s3.object.created"
JOB_QUEUED = f"{SUBJECT_PREFIX}.job.queued"
JOB_QUEUED_HIGH = f"{JOB_QUEUED}.high"  # TRD priority above 50
JOB_QUEUED_LOW = f"{JOB_QUEUED}.low"  # TRD priority below 50
JOB_STARTED = f"{SUBJECT_PREFIX}.job.started"
JOB_DIARIZED = f"{SUBJECT_PREFIX}.job.diarized"
JOB_COMPLETED = f"{SUBJECT_PREFIX}.job.completed"
JOB_FAILED = f"{SUBJECT_PREFIX}.job.failed"
JOB_STOPPED = f"{SUBJECT_PREFIX}.job.stopped"
DATASET_TRAIN = f"{SUBJECT_PREFIX}.dataset.train.requested"
DATASET_RETAG = f"{SUBJECT_PREFIX}.dataset.retag.requested"
DATASET_EXPORT = f"{SUBJECT_PREFIX}.dataset.export.requested"
DATASET_IMPORT = f"{SUBJECT_PREFIX}.dataset.import.requested"
DATASET_TAGGING = f"{SUBJECT_PREFIX}.dataset.tagging.requested"
DATASET_DONE = f"{SUBJECT_PREFIX}.dataset.work.done"
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
NOTIFY = ConsumerSpec("notify", (JOB_STARTED, JOB_COMPLETED, JOB_FAILED, JOB_STOPPED))
# train reads tagging requests first (a caller may be waiting on them), then the long dataset work.
TRAIN_TAGGING = ConsumerSpec("train-tagging", (DATASET_TAGGING,))
TRAIN = ConsumerSpec("train", (DATASET_TRAIN, DATASET_RETAG, DATASET_EXPORT, DATASET_IMPORT))
TRAIN_ORDER = (TRAIN_TAGGING, TRAIN)
