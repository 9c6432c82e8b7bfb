"""Waiting on a job's lifecycle events, for the synchronous endpoints.

The API process subscribes once to ``shenava.job.>`` (plain NATS, no consumer: a waiting
request only cares about events published while it waits) and wakes the requests waiting on
that job. A waiter registers first and then re-reads the job document, so an event published
just before it registered is not missed. Nothing here outlives the request that waits.
"""

from __future__ import annotations

import logging
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from events.models import JobEvent, parse_event
from events.subjects import SUBJECT_PREFIX
from functions.api.waiters import Waiters
from functions.common.jobs import JobRepository, JobStatus

log = logging.getLogger("shenava.api.events")


class JobEventSource(Protocol):
    async def wait_finished(
        self, jobs: JobRepository, tenant: str, job_id: str, timeout_s: float
    ) -> JobStatus:
        """The job's final status, or the current one if ``timeout_s`` passed first."""
        ...


class NatsJobEvents:
    def __init__(self) -> None:
        self._waiters = Waiters()
        self._subscription: Subscription | None = None

    async def start(self, nc: NATS) -> None:
        self._subscription = await nc.subscribe(f"{SUBJECT_PREFIX}.job.>", cb=self._on_message)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = parse_event(msg.data)
        except ValidationError:
            return
        if isinstance(event, JobEvent):
            self._waiters.wake(event.job_id)

    async def wait_finished(
        self, jobs: JobRepository, tenant: str, job_id: str, timeout_s: float
    ) -> JobStatus:
        status = JobStatus.QUEUED

        async def finished() -> bool:
            nonlocal status
            status = (await jobs.get(tenant, job_id)).status
            return status.finished

        await self._waiters.wait(job_id, finished, timeout_s)
        return status
