"""Domain events: frozen, versioned, named in the past tense.

Every event carries ``id`` (used as ``Nats-Msg-Id`` so a republished event is dropped by the
stream), ``type`` (which also picks the subject), ``time``, ``tenant`` and its payload. Ids of
job lifecycle events are derived from the job and the transition, so that a handler that runs
twice for the same delivery publishes the same event id twice and the stream keeps one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SUBJECT_PREFIX = "shenava"
SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    type: str
    version: int = SCHEMA_VERSION
    time: datetime = Field(default_factory=utcnow)
    tenant: str

    @property
    def subject(self) -> str:
        return self.subject_of()

    @classmethod
    def subject_of(cls) -> str:
        """The subject an event type travels on: the prefix and its ``type``, spelled once."""
        return f"{SUBJECT_PREFIX}.{cls.model_fields['type'].default}"


class ObjectCreated(Event):
    """An object landed in a bucket (MinIO, SeaweedFS via the bridge, or AWS S3)."""

    type: Literal["s3.object.created"] = "s3.object.created"
    tenant: str = ""  # unknown at the edge; ingest decides from the key
    bucket: str
    key: str  # URL-decoded
    size: int = 0
    etag: str = ""
    sequencer: str = ""
    source: str = ""  # minio | seaweedfs | aws

    @property
    def dedupe_key(self) -> str:
        return f"{self.bucket}/{self.key}@{self.etag or self.sequencer}"


class JobEvent(Event):
    job_id: str

    @classmethod
    def for_job(cls, tenant: str, job_id: str, **payload: Any) -> Self:
        kind = cls.model_fields["type"].default
        return cls(id=f"{job_id}.{kind}", tenant=tenant, job_id=job_id, **payload)


class JobQueued(JobEvent):
    type: Literal["job.queued"] = "job.queued"
    priority: int = 50  # TRD's 0..100, higher first: one subject per band (see events/subjects.py)

    @property
    def subject(self) -> str:
        band = ".high" if self.priority > 50 else ".low" if self.priority < 50 else ""
        return f"{self.subject_of()}{band}"


class JobStarted(JobEvent):
    type: Literal["job.started"] = "job.started"


class JobDiarized(JobEvent):
    type: Literal["job.diarized"] = "job.diarized"


class JobCompleted(JobEvent):
    type: Literal["job.completed"] = "job.completed"


class JobFailed(JobEvent):
    type: Literal["job.failed"] = "job.failed"
    reason: str


class JobStopped(JobEvent):
    type: Literal["job.stopped"] = "job.stopped"


class DeliveryReplayRequested(JobEvent):
    """Send a job's webhook deliveries ``delivery_ids`` again, a new attempt each with the same
    ``webhook-id`` (``failed_only``: not those delivered meanwhile). ``replay_id`` names the request:
    notify carries it out once, however often the event arrives."""

    type: Literal["job.replay.requested"] = "job.replay.requested"
    replay_id: str
    delivery_ids: tuple[str, ...] = ()
    failed_only: bool = False

    @classmethod
    def for_replay(
        cls,
        tenant: str,
        job_id: str,
        replay_id: str,
        delivery_ids: tuple[str, ...],
        failed_only: bool = False,
    ) -> Self:
        kind = cls.model_fields["type"].default
        return cls(id=f"{job_id}.{kind}.{replay_id}", tenant=tenant, job_id=job_id, replay_id=replay_id,
                   delivery_ids=delivery_ids, failed_only=failed_only)  # fmt: skip


class DatasetEvent(Event):
    """Work on a Kashf dataset. ``run_id`` names the request: a redelivered event repeats the same run."""

    dataset: str  # slug
    run_id: str

    @classmethod
    def for_run(cls, tenant: str, dataset: str, run_id: str, attempt: str = "", **payload: Any) -> Self:
        """``attempt`` tells apart a run asked for again (a failed tagging request retried): the
        stream drops a repeated ``Nats-Msg-Id`` inside its dedupe window."""
        kind = cls.model_fields["type"].default
        run = f"{run_id}.{attempt}" if attempt else run_id
        return cls(id=f"{tenant}.{dataset}.{run}.{kind}", tenant=tenant, dataset=dataset, run_id=run_id,
                   **payload)  # fmt: skip


class DatasetTrainRequested(DatasetEvent):
    type: Literal["dataset.train.requested"] = "dataset.train.requested"


class DatasetRetagRequested(DatasetEvent):
    type: Literal["dataset.retag.requested"] = "dataset.retag.requested"
    max_predictions: int


class DatasetExportRequested(DatasetEvent):
    type: Literal["dataset.export.requested"] = "dataset.export.requested"


class DatasetImportRequested(DatasetEvent):
    type: Literal["dataset.import.requested"] = "dataset.import.requested"


class TaggingRequested(DatasetEvent):
    """Tag texts, images, faces or videos with the dataset's model (the request is in the state bucket)."""

    type: Literal["dataset.tagging.requested"] = "dataset.tagging.requested"


class DatasetWorkDone(DatasetEvent):
    """A dataset run (training, retagging, export, import, tagging) finished, well or not: waiters wake."""

    type: Literal["dataset.work.done"] = "dataset.work.done"
    work: str  # the request's type
    failure: str = ""


AnyEvent = Annotated[
    ObjectCreated
    | JobQueued
    | JobStarted
    | JobDiarized
    | JobCompleted
    | JobFailed
    | JobStopped
    | DeliveryReplayRequested
    | DatasetTrainRequested
    | DatasetRetagRequested
    | DatasetExportRequested
    | DatasetImportRequested
    | TaggingRequested
    | DatasetWorkDone,
    Field(discriminator="type"),
]
_any_event: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(data: bytes | str) -> Event:
    """Validate a message body into its event model (raises pydantic.ValidationError)."""
    return _any_event.validate_json(data)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode()
