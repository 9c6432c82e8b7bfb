"""Waiting on a job's lifecycle events, for the synchronous endpoints.

The API process subscribes once to ``shenava.job.>`` (plain NATS, no consumer: a waiting
request only cares about events published while it waits) and wakes the requests waiting on
that job. A waiter registers first and then re-reads the job document, so an event published
just before it registered is not missed. Nothing here outlives the request that waits.
"""

from __future__ import annotations

import logging
from typing import Protocol

from events.models import JobEvent
from events.subjects import SUBJECT_PREFIX
from functions.api.waiters import BusWaiters
from functions.common.jobs import JobRepository, JobStatus

log = logging.getLogger("shenava.api.events")


class JobEventSource(Protocol):
    async def wait_finished(
        self, jobs: JobRepository, tenant: str, job_id: str, timeout_s: float
    ) -> JobStatus:
        """The job's final status, or the current one if ``timeout_s`` passed first."""
        ...


class NatsJobEvents(BusWaiters):
    def __init__(self) -> None:
        super().__init__(f"{SUBJECT_PREFIX}.job.>", lambda e: e.job_id if isinstance(e, JobEvent) else None)

    async def wait_finished(
        self, jobs: JobRepository, tenant: str, job_id: str, timeout_s: float
    ) -> JobStatus:
        status = JobStatus.QUEUED

        async def finished() -> bool:
            nonlocal status
            status = (await jobs.get(tenant, job_id)).status
            return status.finished

        await self.wait(job_id, finished, timeout_s)
        return status
