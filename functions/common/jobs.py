"""The job document (a superset of the TRD v3 JOB) and its place in the state bucket.

One job model, several renderings: each dialect renders a ``JobDocument`` in its own shape.
Statuses follow TRD v3: QUEUED → IN_PROGRESS → COMPLETED | FAILED | STOPPED, and DELETED.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from events.models import JobFailed
from functions.common.clock import utcnow
from functions.common.errors import Missing
from functions.common.gather import gather_limited
from functions.common.job_index import FileFacts, JobIndex, JobRow
from functions.common.state_store import Document, StateStore, update


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    DELETED = "DELETED"

    @property
    def finished(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.DELETED}


class Stage(StrEnum):
    """Process states of the TRD batch document."""

    INITIAL = "INITIAL"
    NORMALIZING = "NORMALIZING"
    NORMALIZED = "NORMALIZED"
    DIARIZING = "DIARIZING"
    DIARIZED = "DIARIZED"
    RECOGNIZING = "RECOGNIZING"
    RECOGNIZED = "RECOGNIZED"


class Control(StrEnum):
    """Whether the pipeline may move the job on (TRD batch control, before the job finishes)."""

    IDLE = "IDLE"  # registered, waiting for a start
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # the current stage finishes, the next does not begin


class Accounted(BaseModel):
    seconds: float = 0.0
    segments: int = 0


class Progress(BaseModel):
    """How far a running transcription has come; transcribe writes it every few seconds."""

    audio_s: float = 0.0  # audio decoded so far, in channel-seconds
    total_s: float = 0.0  # the audio to decode, in channel-seconds
    segments: int = 0  # segments done so far
    accounted: dict[str, Accounted] = Field(default_factory=dict)  # their speech by segment status

    @property
    def fraction(self) -> float:
        return min(1.0, self.audio_s / self.total_s) if self.total_s > 0 else 0.0


class MediaFacts(BaseModel):
    key: str = ""  # the original object in the media bucket
    etag: str = ""  # of that object when it was registered (its events carry it)
    normalized_key: str = ""  # 16 kHz PCM WAV, every channel kept
    content_type: str = ""
    md5: str = ""
    size: int = 0
    format: str = ""
    codec: str = ""
    duration: float = 0.0
    channels: int = 0
    sample_rate: int = 0
    bit_rate: int = 0
    bandwidth: float = 0.0  # Hz below which 99% of the spectral energy lies
    redundant_channel: bool = False  # stereo whose channels carry the same signal
    speech: list[float] = Field(default_factory=list)  # seconds of recognised speech per channel


class RecognitionOptions(BaseModel):
    language: str | None = None  # None = detect
    model: str = ""  # the dialect's model name as given
    timestamps: bool = False
    word_confidence: bool = False
    speaker_labels: bool = False
    diarization_threshold: float | None = None  # None = the engine's default
    hints: list[str] = Field(default_factory=list)  # words to bias the decoder towards
    max_silence_s: float | None = None  # a longer pause ends a segment; None = Whisper's segments only
    max_chunk_s: float | None = None  # the longest chunk decoded at once; None = Whisper's 30 s
    alternatives: int = 1  # readings per segment (TRD's decoder.max_sentences)
    tasks: list[str] = Field(default_factory=list)  # Kashf text datasets that tag each segment
    task: str = "transcribe"  # Whisper's task: "translate" reads the speech as English text
    temperature: float = 0.0  # above 0: sample at it from the first reading (OpenAI's temperature)


class WatsonCallback(BaseModel):
    url: str
    events: list[str]
    user_token: str = ""


class OpenAIRequest(BaseModel):
    """What an OpenAI-compatible request asked for beyond the recognition (``/v1/audio``)."""

    task: str = "transcribe"  # or "translate" (into English)
    response_format: str = "json"  # json | text | srt | verbose_json | vtt
    timestamp_granularities: list[str] = Field(default_factory=lambda: ["segment"])
    temperature: float = 0.0
    callback_url: str = ""  # async mode: notified when the job ends (Standard Webhooks payload)


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str = ""
    latency_ms: float | None = None  # from sending the request to its answer (None: none came)
    next_retry_at: datetime | None = None  # when the schedule tries again (None: it does not)
    replay: str = ""  # the replay request that made this attempt ("": the retry schedule)


class Delivery(BaseModel):
    """Every attempt to deliver one notification (one event to one URL)."""

    url: str
    event: str
    delivered: bool = False
    given_up: bool = False
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    webhook_id: str = ""  # Standard Webhooks' webhook-id: the same on every attempt and replay
    dialect: str = ""  # watson | trd | openai: whose body and signature it carries
    replays: list[str] = Field(default_factory=list)  # replay requests already carried out


class JobDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    tenant: str
    status: JobStatus = JobStatus.QUEUED
    stage: Stage = Stage.INITIAL
    control: Control = Control.RUNNING
    priority: int = 50  # 0..100, higher first (TRD's config.priority)
    source: str = ""  # which door it came in: watson, trd, harf, drop
    filename: str = ""
    tag: str = ""
    batch: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    diarized_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    results_ttl_minutes: int | None = None
    media: MediaFacts = Field(default_factory=MediaFacts)
    options: RecognitionOptions = Field(default_factory=RecognitionOptions)
    callback: WatsonCallback | None = None
    callback_urls: list[str] = Field(default_factory=list)
    openai: OpenAIRequest | None = None  # a job sent through the OpenAI-compatible API
    config: dict[str, Any] = Field(default_factory=dict)  # the TRD configuration, as honoured
    deliveries: dict[str, Delivery] = Field(default_factory=dict)
    failure_reason: str = ""
    callback_failure_reason: str = ""
    processing_attempts: int = 0
    accounted: dict[str, Accounted] = Field(default_factory=dict)  # speech by segment status
    progress: Progress | None = None  # while IN_PROGRESS: how far the transcription has come

    @property
    def may_advance(self) -> bool:
        return self.control == Control.RUNNING and not self.status.finished

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def completed_now(self, now: datetime) -> None:
        self.status = JobStatus.COMPLETED
        self.stage = Stage.RECOGNIZED
        self.completed_at = now
        if self.results_ttl_minutes is not None:
            self.expires_at = now + timedelta(minutes=self.results_ttl_minutes)


_last_id_clock = 0


def new_job_id() -> str:
    """A UUIDv7: unique, and sorting by id sorts by creation time.

    The 12 bits after the millisecond hold the sub-millisecond fraction (RFC 9562, method 3),
    bumped when needed so that ids made by one process are strictly increasing.
    """
    global _last_id_clock
    ns = time.time_ns()
    clock = max((ns // 1_000_000) << 12 | (ns % 1_000_000) * 4096 // 1_000_000, _last_id_clock + 1)
    _last_id_clock = clock
    ms, sub_ms = clock >> 12, clock & 0xFFF
    rand = int.from_bytes(os.urandom(8), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | sub_ms << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def job_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/jobs/{job_id}.json"


def result_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/results/{job_id}.json"


def jobs_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/jobs/"


class JobNotFound(Missing):
    pass


def drop_marker_key(dedupe_key: str) -> str:
    """Where a drop-folder object's job id is remembered (``bucket/key@etag``; a reset points it at
    the new job)."""
    return f"objects/{hashlib.sha256(dedupe_key.encode()).hexdigest()}.json"


class JobRepository:
    """Jobs of every tenant in the state store, with their index rows kept in step."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.index = JobIndex(store)

    async def create(self, job: JobDocument) -> None:
        await self._store.create(job_key(job.tenant, job.id), _dump(job))
        await self.index.put(job.tenant, index_row(job))

    async def find(self, tenant: str, job_id: str) -> JobDocument | None:
        found = await self._store.get(job_key(tenant, job_id))
        return JobDocument.model_validate(found[0]) if found else None

    async def get(self, tenant: str, job_id: str) -> JobDocument:
        job = await self.find(tenant, job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id}")
        return job

    async def fail(self, tenant: str, job_id: str, reason: str) -> list[JobFailed]:
        """Unless it is finished, the job FAILED with ``reason``; the event that announces it
        (none when it was already finished, or is gone)."""

        def mark(job: JobDocument) -> bool:
            if job.status.finished:
                return False
            job.status, job.failure_reason = JobStatus.FAILED, reason
            return True

        job = await self.change(tenant, job_id, mark)
        if job is None or job.status != JobStatus.FAILED:
            return []
        return [JobFailed.for_job(tenant, job_id, reason=job.failure_reason)]

    async def change(
        self, tenant: str, job_id: str, apply: Callable[[JobDocument], bool]
    ) -> JobDocument | None:
        """Apply ``apply(job) -> bool`` (mutating a fresh copy; False = leave as is)."""
        before: list[JobRow] = []

        def mutate(doc: Document | None) -> Document | None:
            if doc is None:
                return None
            job = JobDocument.model_validate(doc)
            before[:] = [index_row(job)]
            if not apply(job):
                return None
            job.updated_at = utcnow()
            return _dump(job)

        doc = await update(self._store, job_key(tenant, job_id), mutate)
        if doc is None:
            return None
        job = JobDocument.model_validate(doc)
        row = index_row(job)
        if not before or row.differs(before[0]):
            await self.index.put(tenant, row)
        return job

    async def list_ids(self, tenant: str) -> list[str]:
        """Every job id of the tenant, from the documents themselves (slow: use the index)."""
        prefix = jobs_prefix(tenant)
        return [k[len(prefix) : -len(".json")] for k in await self._store.list_keys(prefix)]

    async def delete(self, tenant: str, job_id: str) -> None:
        await self._store.delete(result_key(tenant, job_id))
        await self._store.delete(job_key(tenant, job_id))
        await self.index.remove(tenant, job_id)

    async def find_many(self, tenant: str, job_ids: list[str]) -> list[JobDocument]:
        """The jobs that exist of ``job_ids``, in that order, read ``AT_ONCE`` at a time."""
        found = await gather_limited(self.find(tenant, job_id) for job_id in job_ids)
        return [job for job in found if job is not None]

    async def rebuild_index(self, tenant: str) -> int:
        """Recreate the tenant's index from its job documents; returns the number of jobs."""
        found = await self.find_many(tenant, await self.list_ids(tenant))
        rows = [index_row(job) for job in found]
        await self.index.replace_all(tenant, rows)
        return len(rows)


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment else ""


def index_row(job: JobDocument) -> JobRow:
    return JobRow(
        id=job.id,
        status=job.status.value,
        created_at=_utc(job.created_at),
        tag=job.tag,
        filename=job.filename,
        source=job.source,
        failure_reason=job.failure_reason,
        callback_failure_reason=job.callback_failure_reason,
        batch=job.batch,
        updated_at=_utc(job.updated_at),
        user_token=job.callback.user_token if job.callback else "",
        expires_at=_utc(job.expires_at),
        file=file_facts(job) if job.batch else None,
    )


def file_facts(job: JobDocument) -> FileFacts:
    media = job.media
    accounted = tuple((name, a.seconds, a.segments) for name, a in job.accounted.items())
    return FileFacts(
        control=job.control.value, stage=job.stage.value, size=media.size, duration=media.duration,
        channels=1 if media.redundant_channel else max(media.channels, 1), started_at=_utc(job.started_at),
        completed_at=_utc(job.completed_at), accounted=accounted,
    )  # fmt: skip


def _dump(job: JobDocument) -> Document:
    return job.model_dump(mode="json")
