"""A tenant with many jobs, written straight into the state bucket (for ``bench.api_load``).

Going through the API (or ``JobRepository.create``) costs an upload, a conditional write of the
job and a conditional update of its index shard per job, one after another: minutes for 10,000
jobs. Here every job document is built in memory and written with a plain ``put``, many at once,
and the index shards are built from the same documents and written once each
(``JobIndex.replace_all``): what ``rebuild-index`` would write, without reading anything back.
Transcripts are written only for the completed jobs that the benchmark reads.

The tenant, newest last:
- ``history`` jobs spread over the last 30 days (mostly COMPLETED, some FAILED or STOPPED), from
  the Watson, TRD and Harf doors, tagged ``tag-0`` … ``tag-9``;
- a drop-folder batch (``BATCH``) created today: most files recognised, a few failed, two being
  recognised (with progress), some queued and some IDLE;
- the newest ``pending`` jobs, QUEUED or IN_PROGRESS: what clients are waiting for.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from functions.common.jobs import (
    Accounted,
    Control,
    Delivery,
    DeliveryAttempt,
    JobDocument,
    JobStatus,
    MediaFacts,
    Progress,
    RecognitionOptions,
    Stage,
    WatsonCallback,
    index_row,
    job_key,
    result_key,
)
from functions.common.state_store import StateStore
from functions.common.transcript import Segment, Transcript, Word

T = TypeVar("T")
BATCH = "lote-1"
SOURCES = ("watson", "trd", "harf-upload")
TRD_CONFIG: dict[str, Any] = {
    "diarization": {"vad": {"chunk_max_silence": 1200, "chunk_max_length": 3600},
                    "clustering": {"threshold": -0.4, "enabled": True}},
    "recognition": {"lm": "builtin:slm/callcenter-small", "decoder": {"max_sentences": 1, "word_details": 1}},
    "priority": 50,
}  # fmt: skip


@dataclass
class SeededTenant:
    """What was written, for the benchmark to ask about."""

    tenant: str
    completed: list[str] = field(default_factory=list)  # with transcripts
    pending: list[str] = field(default_factory=list)  # QUEUED or IN_PROGRESS
    batch_files: list[str] = field(default_factory=list)  # of BATCH, with transcripts when completed
    batch_size: int = 0  # files in BATCH
    everyone: list[str] = field(default_factory=list)  # every job that is not a batch file


def job_id_at(moment: datetime) -> str:
    """A UUIDv7 made at ``moment`` (the index files a job under the day in its id)."""
    ms = int(moment.timestamp() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    sub_ms = rand >> 64 & 0xFFF
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | sub_ms << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def media(n: int) -> MediaFacts:
    duration = 30.0 + n % 240
    return MediaFacts(
        key=f"uploads/x/{n}/call.wav", etag=f"etag-{n}", normalized_key=f"normalized/x/{n}.wav",
        content_type="audio/wav", md5=f"{n:032x}", size=int(duration * 16000), format="wav",
        codec="pcm_s16le", duration=duration, channels=1 + n % 2, sample_rate=8000, bit_rate=128000,
        bandwidth=3400.0, speech=[duration * 0.6] * (1 + n % 2),
    )  # fmt: skip


def finished(job: JobDocument, n: int) -> None:
    job.started_at = job.created_at + timedelta(seconds=5)
    job.completed_at = job.created_at + timedelta(seconds=5 + job.media.duration / 10)
    job.updated_at = job.completed_at
    job.stage = Stage.RECOGNIZED
    if n % 29 == 0:
        job.status, job.failure_reason = JobStatus.FAILED, "ffprobe: invalid data found when processing input"
    elif n % 31 == 0:
        job.status = JobStatus.STOPPED
    else:
        job.completed_now(job.completed_at)
        job.accounted = {"RECOGNIZED": Accounted(seconds=round(job.media.duration * 0.6, 3), segments=20)}


def history_job(tenant: str, n: int, created: datetime) -> JobDocument:
    source = SOURCES[n % len(SOURCES)]
    job = JobDocument(
        id=job_id_at(created), tenant=tenant, source=source, filename=f"call-{n}.wav", tag=f"tag-{n % 10}",
        created_at=created, updated_at=created, media=media(n), results_ttl_minutes=60 * 24 * 365,
        options=RecognitionOptions(language="pt", timestamps=True, word_confidence=True),
    )  # fmt: skip
    if source == "watson":
        job.callback = WatsonCallback(url="https://example.org/hook", events=["recognitions.completed"],
                                      user_token=f"user-{n}")  # fmt: skip
    if source == "trd":
        job.config, job.callback_urls = TRD_CONFIG, ["https://example.org/done"]
    finished(job, n)
    attempt = DeliveryAttempt(at=job.updated_at, status_code=200)
    job.deliveries = {"completed": Delivery(url="https://example.org/hook", event="completed", delivered=True,
                                            attempts=[attempt])}  # fmt: skip
    return job


def batch_file(tenant: str, n: int, created: datetime) -> JobDocument:
    job = JobDocument(
        id=job_id_at(created), tenant=tenant, source="drop", filename=f"audio-{n:05d}.wav", batch=BATCH,
        created_at=created, updated_at=created, media=media(n), config=TRD_CONFIG,
    )  # fmt: skip
    share = n % 100
    if share < 70:
        finished(job, n)
    elif share < 72:
        job.status, job.stage, job.started_at = JobStatus.IN_PROGRESS, Stage.RECOGNIZING, created
        total = job.media.duration * job.media.channels
        so_far = {"RECOGNIZED": Accounted(seconds=total / 5, segments=7)}
        job.progress = Progress(audio_s=total / 3, total_s=total, segments=7, accounted=so_far)
    elif share < 80:
        job.stage = Stage.NORMALIZED
    else:
        job.control = Control.IDLE
        job.media = MediaFacts(key=job.media.key, size=job.media.size, md5=job.media.md5)
    return job


def pending_job(tenant: str, n: int, created: datetime) -> JobDocument:
    job = history_job(tenant, n, created)
    job.status, job.stage, job.completed_at, job.expires_at = JobStatus.QUEUED, Stage.NORMALIZED, None, None
    job.started_at, job.accounted, job.deliveries, job.failure_reason = None, {}, {}, ""
    if n % 2:
        job.status, job.stage, job.started_at = JobStatus.IN_PROGRESS, Stage.RECOGNIZING, created
    return job


def transcript(job: JobDocument) -> Transcript:
    segments = []
    for s in range(20):
        start = s * job.media.duration / 20
        words = tuple(
            Word(text=f"palavra{w}", start=start + w * 0.3, end=start + w * 0.3 + 0.25, confidence=0.9)
            for w in range(8)
        )
        text = " ".join(w.text for w in words)
        segments.append(Segment(channel=s % job.media.channels, start=start, end=start + 2.6, text=text,
                                confidence=0.91, words=words))  # fmt: skip
    return Transcript(job_id=job.id, language="pt", duration=job.media.duration,
                      channels=job.media.channels, segments=tuple(segments))  # fmt: skip


def plan(tenant: str, total: int, batch_files: int, pending: int, now: datetime) -> list[JobDocument]:
    history = total - batch_files - pending
    start = now - timedelta(days=30)
    step = (timedelta(days=30) - timedelta(hours=2)) / max(history, 1)
    jobs = [history_job(tenant, n, start + n * step) for n in range(history)]
    today = now - timedelta(hours=1)
    jobs += [batch_file(tenant, n, today + n * timedelta(milliseconds=50)) for n in range(batch_files)]
    jobs += [pending_job(tenant, history + n, now - timedelta(minutes=pending - n)) for n in range(pending)]
    return jobs


async def bounded(concurrency: int, items: list[T], action: Callable[[T], Awaitable[Any]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with gate:
            await action(item)

    await asyncio.gather(*(one(item) for item in items))


async def seed(
    state: StateStore, tenant: str, total: int, batch_files: int = 1000, pending: int = 50,
    with_results: int = 200, concurrency: int = 64,
) -> SeededTenant:  # fmt: skip
    """Write the tenant's jobs, their index, and transcripts for ``with_results`` completed jobs."""
    from functions.common.job_index import JobIndex

    jobs = plan(tenant, total, batch_files, pending, datetime.now(UTC))
    await bounded(concurrency, jobs, lambda j: state.put(job_key(tenant, j.id), j.model_dump(mode="json")))
    await JobIndex(state).replace_all(tenant, [index_row(job) for job in jobs])
    seeded = SeededTenant(tenant, batch_size=batch_files)
    done = [j for j in jobs if j.status == JobStatus.COMPLETED]
    half = with_results // 2
    chosen = [j for j in done if not j.batch][-half:] + [j for j in done if j.batch][:half]

    async def write_result(job: JobDocument) -> None:
        await state.put(result_key(tenant, job.id), transcript(job).model_dump(mode="json"))

    await bounded(concurrency, chosen, write_result)
    seeded.completed = [j.id for j in chosen if not j.batch]
    seeded.batch_files = [j.id for j in chosen if j.batch]
    seeded.pending = [j.id for j in jobs if not j.status.finished and not j.batch]
    seeded.everyone = [j.id for j in jobs if not j.batch]
    return seeded
