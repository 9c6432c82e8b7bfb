"""The TRD batch (drop folder) operations on top of the service core: start, pause and reset
files, and find a batch's files. Drop-folder files are jobs like any other; what is particular is
their control state (IDLE / RUNNING / PAUSED) and that a reset makes a new job of the same object.
"""

from __future__ import annotations

import asyncio

from events.models import Event, JobQueued, ObjectCreated
from functions.api.service import JobService, rerun_of
from functions.common.batch_status import BatchTotals
from functions.common.drop_files import drop_result_keys, move_name
from functions.common.errors import Conflict, NotFound
from functions.common.jobs import (
    Control,
    JobDocument,
    JobStatus,
    MediaFacts,
    Stage,
    drop_marker_key,
    new_job_id,
)
from functions.common.media_store import normalized_key, upload_key


class DropBatchService(JobService):
    async def resume(self, tenant: str, job_id: str, strict: bool = True) -> JobDocument:
        """IDLE or PAUSED → RUNNING; the event that moves the job on from its stage is published.

        ``strict``: a job in any other state is a conflict (for one file); else it is left alone
        (for a batch, where RUNNING and finished files are skipped).
        """
        job = await self.get(tenant, job_id)
        if job.status.finished or job.control == Control.RUNNING:
            if strict:
                state = "FINISHED or FAILED" if job.status.finished else "RUNNING"
                raise Conflict(f"only IDLE or PAUSED files can be started; {job.filename} is {state}")
            return job

        def run(current: JobDocument) -> bool:
            current.control = Control.RUNNING
            return True

        resumed = await self.deps.jobs.change(tenant, job_id, run)
        assert resumed is not None
        step = self._next_step(resumed)
        if step is not None:
            await self.deps.bus.publish(step)
        return resumed

    def _next_step(self, job: JobDocument) -> Event | None:
        """A fresh event for the stage the job waits in (fresh ids: not dropped as repeats)."""
        again = f"resume-{new_job_id()}"
        if job.stage in {Stage.INITIAL, Stage.NORMALIZING}:
            key = job.media.key or self._upload_of(job)
            return ObjectCreated(id=f"{key}@{again}", bucket=self.deps.settings.media_bucket, key=key,
                                 etag=job.media.etag, size=job.media.size, source="resume")  # fmt: skip
        if job.status == JobStatus.QUEUED:
            queued_id = f"{job.id}.job.queued.{again}"
            return JobQueued(id=queued_id, tenant=job.tenant, job_id=job.id, priority=job.priority)
        return None  # recognising: it runs on

    async def pause(self, tenant: str, job_id: str, strict: bool = True) -> JobDocument:
        """RUNNING → PAUSED: the current stage finishes, the next one does not begin."""

        def hold(job: JobDocument) -> bool:
            if job.status.finished or job.control != Control.RUNNING:
                if strict:
                    raise Conflict(f"only RUNNING files can be stopped; {job.filename} is not running")
                return False
            job.control = Control.PAUSED
            return True

        await self.get(tenant, job_id)
        paused = await self.deps.jobs.change(tenant, job_id, hold)
        assert paused is not None
        return paused

    async def reset(self, tenant: str, job_id: str) -> JobDocument:
        """The file again from INITIAL, IDLE, as a new job (the document: "retorna um novo id de
        arquivo"); the old job and its results, the S3 readers' copies included, are removed."""
        old = await self.get(tenant, job_id)
        media = MediaFacts(
            key=old.media.key, etag=old.media.etag, size=old.media.size, md5=old.media.md5,
            content_type=old.media.content_type,
        )  # fmt: skip
        job = rerun_of(old, control=Control.IDLE, media=media)
        await self.deps.jobs.create(job)
        if old.source == "drop":
            bucket = self.deps.settings.media_bucket
            dedupe = f"{bucket}/{old.media.key}@{old.media.etag}"
            marker = {"tenant": tenant, "job_id": job.id, "object": dedupe}
            await self.deps.state.put(drop_marker_key(dedupe), marker)
            await move_name(self.deps.state, bucket, old.media.key, old.id, job.id)
            for key in (normalized_key(tenant, old.id), *drop_result_keys(old)):
                await self.deps.media.delete(key)
            await self.deps.jobs.delete(tenant, old.id)
        else:
            await self.deps.media.copy(
                old.media.key or self._upload_of(old), upload_key(tenant, job.id, job.filename)
            )
            await self.purge(old)
        return job

    async def batch_totals(self, tenant: str, batch: str) -> tuple[BatchTotals, list[JobDocument]]:
        """A batch's sums from the index (at most ``api_poll_max_age_s`` old) and the documents of
        its running files (as polled); 404 for a batch with no files."""
        totals = (await self.polls.index.snapshot(tenant)).batches.get(batch)
        if totals is None:
            raise NotFound(f"no files in the batch {batch!r}")
        running = await asyncio.gather(*(self.polls.job(tenant, job_id) for job_id in totals.running))
        return totals, [polled.job for polled in running if polled is not None]

    async def batch_jobs(self, tenant: str, batch: str) -> list[JobDocument]:
        """The files of a drop-folder batch, oldest first; 404 for a batch with none."""
        rows = await self.deps.jobs.index.rows(
            tenant, lambda r: r.batch == batch and r.status != JobStatus.DELETED
        )
        jobs = await self.deps.jobs.find_many(tenant, [row.id for row in reversed(rows)])
        if not jobs:
            raise NotFound(f"no files in the batch {batch!r}")
        return jobs
