"""The service core every dialect calls: submit media, read, list, delete jobs; callbacks.

A submission registers the job document first, then writes the media to
``uploads/<tenant>/<job_id>/<filename>``; the bucket event carries it to ingest. The API never
calls the engine itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from events.errors import PoisonError
from events.models import JobCompleted, JobStopped
from functions.api import listings
from functions.api.listings import JobQuery
from functions.api.poll_cache import PollCache, PolledJob
from functions.common.bootstrap import Deps
from functions.common.callbacks import CallbackRegistry, Registration
from functions.common.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from functions.common.fetch import FetchedMedia, FetchLimits, fetch_media
from functions.common.gather import gather_limited
from functions.common.job_index import JobRow
from functions.common.jobs import (
    JobDocument,
    JobStatus,
    MediaFacts,
    OpenAIRequest,
    RecognitionOptions,
    WatsonCallback,
    new_job_id,
    result_key,
)
from functions.common.media_store import normalized_key, upload_key
from functions.common.probe import file_md5, media_facts, probe
from functions.common.transcript import Segment, Transcript

log = logging.getLogger("shenava.api")

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
FETCH_CONCURRENCY = 4  # media URLs of one request downloaded at once


@dataclass(frozen=True)
class Submission:
    tenant: str
    source: str
    media_path: Path
    content_type: str
    filename: str = "audio"
    options: RecognitionOptions = field(default_factory=RecognitionOptions)
    callback: WatsonCallback | None = None
    callback_urls: tuple[str, ...] = ()
    tag: str = ""
    results_ttl_minutes: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    priority: int = 50
    openai: OpenAIRequest | None = None  # what an OpenAI-compatible request asked for


def safe_filename(name: str) -> str:
    cleaned = SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).strip("._")
    return cleaned[:120] or "audio"


def new_job(submission: Submission) -> JobDocument:
    """The job a submission registers, QUEUED, with a fresh id."""
    return JobDocument(
        id=new_job_id(),
        tenant=submission.tenant,
        source=submission.source,
        filename=safe_filename(submission.filename),
        tag=submission.tag,
        options=submission.options,
        callback=submission.callback,
        callback_urls=list(submission.callback_urls),
        results_ttl_minutes=submission.results_ttl_minutes,
        config=submission.config,
        priority=submission.priority,
        openai=submission.openai,
    )


def rerun_of(old: JobDocument, **changes: Any) -> JobDocument:
    """A new job (fresh id, QUEUED, nothing measured yet) for the same request as ``old``."""
    carried = {
        "tenant": old.tenant, "source": old.source, "filename": old.filename, "tag": old.tag,
        "batch": old.batch, "priority": old.priority, "options": old.options, "callback": old.callback,
        "callback_urls": old.callback_urls, "config": old.config,
        "results_ttl_minutes": old.results_ttl_minutes,
    }  # fmt: skip
    return JobDocument(id=new_job_id(), **{**carried, **changes})


class JobService:
    def __init__(self, deps: Deps, polls: PollCache | None = None) -> None:
        self.deps = deps
        # the process's (``poll_cache.install``); without one, nothing outlives the request
        self.polls = polls or PollCache(deps.state, max_age_s=0.0)

    @property
    def callbacks(self) -> CallbackRegistry:
        return CallbackRegistry(self.deps.state, self.deps.secrets)

    async def check_queue(self) -> None:
        """503 when more jobs wait for transcription than ``max_queue_depth``."""
        limit = self.deps.settings.max_queue_depth
        waiting = await self.deps.bus.queue_depth() if limit > 0 else None
        if waiting is not None and waiting > limit:
            raise ServiceUnavailable(f"{waiting} jobs are waiting; try again later")

    async def wait_finished(self, tenant: str, job_id: str, timeout_s: float) -> JobStatus:
        """The job's final status, or its current one once ``timeout_s`` has passed."""
        status = JobStatus.QUEUED

        async def finished() -> bool:
            nonlocal status
            status = (await self.deps.jobs.get(tenant, job_id)).status
            return status.finished

        await self.deps.bus.wait(job_id, finished, timeout_s)
        return status

    async def submit(self, submission: Submission) -> JobDocument:
        job = new_job(submission)
        filename = job.filename
        # Known at upload (TRD's create answers them), and kept if the media turns out unreadable.
        job.media.md5 = await asyncio.to_thread(file_md5, submission.media_path)
        job.media.size = submission.media_path.stat().st_size
        job.media.content_type = submission.content_type
        await self.deps.jobs.create(job)
        key = upload_key(job.tenant, job.id, filename)
        metadata = {"job-id": job.id, "tenant": job.tenant, "content-type": submission.content_type}
        try:
            await self.deps.media.put_file(key, submission.media_path, submission.content_type, metadata)
        except Exception as exc:  # no media, no job: never leave one waiting forever
            log.exception("storing the media failed", extra={"job_id": job.id, "tenant": job.tenant})
            await self.deps.jobs.delete(job.tenant, job.id)
            raise ServiceUnavailable("the media could not be stored; try again later") from exc
        return job

    async def get(self, tenant: str, job_id: str) -> JobDocument:
        job = await self.deps.jobs.find(tenant, job_id)
        if job is None or job.status == JobStatus.DELETED:
            raise NotFound(f"no job with id {job_id}")
        if job.expired(self.deps.clock()):
            await self.purge(job)
            raise NotFound(f"the job {job_id} expired and its results were removed")
        return job

    async def poll(self, tenant: str, job_id: str) -> PolledJob:
        """What a polling client asks for: the job as read at most ``api_poll_max_age_s`` ago (the
        process's copy); 404 when it is deleted or expired (then its results are removed)."""
        polled = await self.polls.job(tenant, job_id)
        if polled is None or polled.job.status == JobStatus.DELETED:
            raise NotFound(f"no job with id {job_id}")
        if polled.job.expired(self.deps.clock()):  # set when it completed, never changed since
            await self.purge(polled.job)
            raise NotFound(f"the job {job_id} expired and its results were removed")
        return polled

    async def transcript(self, job: JobDocument) -> Transcript | None:
        return await self.polls.transcript(job.tenant, job.id, job.status == JobStatus.COMPLETED)

    async def recent(self, tenant: str, limit: int) -> listings.Newest:
        """The tenant's most recent jobs, newest first, from the index (expired ones are purged)."""
        snapshot = await self.polls.index.snapshot(tenant)
        newest = listings.newest(snapshot, limit, self.deps.clock())
        purged: set[str] = snapshot.remember("purged", set)
        due = [row.id for row in newest.expired if row.id not in purged]
        purged.update(due)
        await gather_limited(self.purge_id(tenant, job_id) for job_id in due)  # a TTL may end many at once
        return newest

    async def delete(self, tenant: str, job_id: str) -> None:
        job = await self.get(tenant, job_id)
        if job.status == JobStatus.IN_PROGRESS:
            raise BadRequest(f"the job {job_id} is being processed and cannot be deleted now")
        await self.purge(job)

    async def purge(self, job: JobDocument) -> None:
        """Remove the media, transcript and job document."""
        await self.purge_id(job.tenant, job.id)

    async def purge_id(self, tenant: str, job_id: str) -> None:
        await self.deps.media.delete_prefix(f"uploads/{tenant}/{job_id}/")
        await self.deps.media.delete(normalized_key(tenant, job_id))
        await self.deps.jobs.delete(tenant, job_id)

    async def stop(self, tenant: str, job_id: str) -> JobDocument:
        """QUEUED or IN_PROGRESS → STOPPED; a running transcription notices between segments, and
        the job's callbacks hear of it (transcribe may announce it again: the same event id)."""
        await self.get(tenant, job_id)

        def stop(job: JobDocument) -> bool:
            if job.status not in {JobStatus.QUEUED, JobStatus.IN_PROGRESS}:
                raise Conflict(f"only QUEUED or IN_PROGRESS jobs can be stopped; {job_id} is {job.status}")
            job.status, job.completed_at = JobStatus.STOPPED, self.deps.clock()
            return True

        stopped = await self.deps.jobs.change(tenant, job_id, stop)
        assert stopped is not None
        await self.deps.bus.publish(JobStopped.for_job(tenant, job_id))
        return stopped

    async def retry(self, tenant: str, job_id: str) -> JobDocument:
        """A FAILED or STOPPED job's media again, as a new job (new id, QUEUED)."""
        old = await self.get(tenant, job_id)
        if old.status not in {JobStatus.FAILED, JobStatus.STOPPED}:
            raise Conflict(f"only FAILED or STOPPED jobs can be retried; {job_id} is {old.status}")
        media = MediaFacts(content_type=old.media.content_type, md5=old.media.md5, size=old.media.size)
        job = rerun_of(old, media=media)  # the same file: its md5 and size are known
        await self.deps.jobs.create(job)
        try:
            await self.deps.media.copy(
                old.media.key or self._upload_of(old), upload_key(tenant, job.id, job.filename)
            )
        except FileNotFoundError as exc:
            await self.deps.jobs.delete(tenant, job.id)
            raise Conflict(f"the media of {job_id} is no longer stored; send the file again") from exc
        return job

    def _upload_of(self, job: JobDocument) -> str:
        return upload_key(job.tenant, job.id, job.filename)

    async def close(self, tenant: str, job_id: str) -> JobDocument:
        """A finished job → DELETED: its media and results are removed, the record stays."""
        job = await self.get(tenant, job_id)
        if not job.status.finished:
            raise Conflict(f"only STOPPED, FAILED or COMPLETED jobs can be deleted; {job_id} is {job.status}")
        await self.deps.media.delete_prefix(f"uploads/{tenant}/{job_id}/")
        await self.deps.media.delete(normalized_key(tenant, job_id))
        await self.deps.state.delete(result_key(tenant, job_id))

        def tombstone(current: JobDocument) -> bool:
            current.status = JobStatus.DELETED
            return True

        deleted = await self.deps.jobs.change(tenant, job_id, tombstone)
        assert deleted is not None
        return deleted

    async def query(self, tenant: str, query: JobQuery) -> tuple[int, list[JobRow]]:
        """Index rows matching ``query``, oldest first (ascending ids, as TRD's examples list them;
        new jobs go to the last page, so earlier pages stay put): the total and the requested page."""
        total, rows = listings.page(await self.polls.index.snapshot(tenant), query)
        return total, list(rows)

    async def register_callback(self, tenant: str, url: str, secret: str | None) -> Registration:
        settings = self.deps.settings
        return await self.callbacks.register(
            tenant, url, secret, self.deps.http, settings.callback_challenge_timeout_s
        )

    async def submit_urls(
        self, urls: Sequence[str], submission_for: Callable[[FetchedMedia], Submission]
    ) -> list[JobDocument]:
        """Download every media URL (see ``fetch``: guarded hop by hop, capped, timed, sniffed),
        then submit each as a job. All or nothing: one refused URL and no job is made."""
        limits = FetchLimits.from_settings(self.deps.settings)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)
        with tempfile.TemporaryDirectory(prefix="shenava-fetch-") as tmp:

            async def fetch_one(index: int, url: str) -> FetchedMedia:
                directory = Path(tmp) / str(index)
                directory.mkdir()
                async with gate:
                    return await fetch_media(url, directory, limits)

            tasks = [asyncio.create_task(fetch_one(i, url)) for i, url in enumerate(urls)]
            try:
                fetched = await asyncio.gather(*tasks)
            finally:  # the first refusal ends the others' downloads too
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return [await self.submit(submission_for(media)) for media in fetched]

    async def store_transcribed(
        self, submission: Submission, segments: Sequence[Segment], language: str
    ) -> JobDocument:
        """A job transcribed piece by piece elsewhere in the pipeline (a live stream's utterance
        jobs): stored completed at once, media and transcript. It is created COMPLETED before its
        media lands, so ingest leaves it alone and it is never transcribed twice."""
        try:
            facts = await probe(submission.media_path)
        except PoisonError as exc:
            raise BadRequest(f"the audio cannot be stored: {exc}") from exc
        job = new_job(submission)
        filename = job.filename
        key = upload_key(job.tenant, job.id, filename)
        job.media = media_facts(facts, key=key, content_type=submission.content_type)
        job.started_at = job.created_at
        job.completed_now(self.deps.clock())
        transcript = Transcript(
            job_id=job.id,
            language=language,
            duration=facts.duration,
            channels=facts.channels,
            segments=tuple(segments),
        )
        await self.deps.state.put(result_key(job.tenant, job.id), transcript.model_dump(mode="json"))
        await self.deps.jobs.create(job)
        try:
            metadata = {"job-id": job.id, "tenant": job.tenant}
            await self.deps.media.put_file(key, submission.media_path, submission.content_type, metadata)
        except Exception as exc:
            log.exception("storing the media failed", extra={"job_id": job.id, "tenant": job.tenant})
            await self.deps.jobs.delete(job.tenant, job.id)
            raise ServiceUnavailable("the media could not be stored; try again later") from exc
        try:
            await self.deps.bus.publish(JobCompleted.for_job(job.tenant, job.id))
        except Exception:  # the job and its transcript are stored; an unannounced job loses nothing
            log.warning("announcing a stored job failed", extra={"job_id": job.id, "tenant": job.tenant})
        return job
