"""The service core every dialect calls: submit media, read, list, delete jobs; callbacks.

A submission registers the job document first, then writes the media to
``uploads/<tenant>/<job_id>/<filename>``; the bucket event carries it to ingest. The API never
calls the engine itself.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from functions.common.bootstrap import Deps
from functions.common.errors import BadRequest, NotFound, ServiceUnavailable
from functions.common.jobs import (
    JobDocument,
    JobStatus,
    RecognitionOptions,
    WatsonCallback,
    new_job_id,
    result_key,
)
from functions.common.media_store import normalized_key, upload_key
from functions.common.transcript import Transcript
from functions.notify.callbacks import CallbackRegistry, Registration

log = logging.getLogger("shenava.api")

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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


def safe_filename(name: str) -> str:
    cleaned = SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).strip("._")
    return cleaned[:120] or "audio"


class JobService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @property
    def callbacks(self) -> CallbackRegistry:
        return CallbackRegistry(self.deps.state, self.deps.secrets)

    async def submit(self, submission: Submission) -> JobDocument:
        filename = safe_filename(submission.filename)
        job = JobDocument(
            id=new_job_id(),
            tenant=submission.tenant,
            source=submission.source,
            filename=filename,
            tag=submission.tag,
            options=submission.options,
            callback=submission.callback,
            callback_urls=list(submission.callback_urls),
            results_ttl_minutes=submission.results_ttl_minutes,
        )
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

    async def transcript(self, job: JobDocument) -> Transcript | None:
        found = await self.deps.state.get(result_key(job.tenant, job.id))
        return Transcript.model_validate(found[0]) if found else None

    async def recent(self, tenant: str, limit: int) -> list[JobDocument]:
        """The tenant's most recent jobs, newest first, found through the index."""
        now, jobs = self.deps.clock(), []
        for row in await self.deps.jobs.index.rows(tenant, lambda r: r.status != JobStatus.DELETED):
            job = await self.deps.jobs.find(tenant, row.id)
            if job is None:
                continue
            if job.expired(now):
                await self.purge(job)
                continue
            jobs.append(job)
            if len(jobs) >= limit:
                break
        return jobs

    async def delete(self, tenant: str, job_id: str) -> None:
        job = await self.get(tenant, job_id)
        if job.status == JobStatus.IN_PROGRESS:
            raise BadRequest(f"the job {job_id} is being processed and cannot be deleted now")
        await self.purge(job)

    async def purge(self, job: JobDocument) -> None:
        """Remove the media, transcript and job document."""
        await self.deps.media.delete_prefix(f"uploads/{job.tenant}/{job.id}/")
        await self.deps.media.delete(normalized_key(job.tenant, job.id))
        await self.deps.jobs.delete(job.tenant, job.id)

    async def register_callback(self, tenant: str, url: str, secret: str | None) -> Registration:
        settings = self.deps.settings
        return await self.callbacks.register(
            tenant, url, secret, self.deps.http, settings.callback_challenge_timeout_s
        )
