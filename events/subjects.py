"""Subjects, the stream and the durable consumers: one place for every name on the bus."""

from __future__ import annotations

from dataclasses import dataclass

SUBJECT_PREFIX = "shenava"
OBJECT_CREATED = f"{SUBJECT_PREFIX}.s3.object.created"
JOB_QUEUED = f"{SUBJECT_PREFIX}.job.queued"
JOB_STARTED = f"{SUBJECT_PREFIX}.job.started"
JOB_DIARIZED = f"{SUBJECT_PREFIX}.job.diarized"
JOB_COMPLETED = f"{SUBJECT_PREFIX}.job.completed"
JOB_FAILED = f"{SUBJECT_PREFIX}.job.failed"
JOB_STOPPED = f"{SUBJECT_PREFIX}.job.stopped"
ALL_SUBJECTS = [f"{SUBJECT_PREFIX}.>"]


@dataclass(frozen=True)
class ConsumerSpec:
    """A function's durable pull consumer: what it listens to."""

    durable: str
    subjects: tuple[str, ...]


INGEST = ConsumerSpec("ingest", (OBJECT_CREATED,))
# transcribe takes a queued job (claims it, announces job.started) and then the started job
# (runs the engine): the announcement reaches subscribers before the long work begins.
TRANSCRIBE = ConsumerSpec("transcribe", (JOB_QUEUED, JOB_STARTED))
NOTIFY = ConsumerSpec("notify", (JOB_STARTED, JOB_COMPLETED, JOB_FAILED, JOB_STOPPED))
