"""notify: one bad callback URL fails only its own delivery; the failure reason is there from the
first failed attempt and follows every attempt. A real receiver on loopback takes the good one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from events.errors import RetryableError
from events.models import JobCompleted
from functions.common.bootstrap import Deps
from functions.common.jobs import JobDocument, JobStatus
from functions.notify import handler as notify
from tests.fakes import memory_deps
from tests.receiver import Receiver

BAD = "http://012.0.0.1/hook"  # httpx raises InvalidURL for it (an ambiguous IPv4 address)


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as built:
        yield built


async def completed_job(deps: Deps, urls: list[str]) -> JobDocument:
    job = JobDocument(id="0190a000-0000-7000-8000-00000000000a", tenant="t1", source="trd",
                      status=JobStatus.COMPLETED, callback_urls=urls)  # fmt: skip
    await deps.jobs.create(job)
    return job


def attempts(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("shenava_webhook_attempts_total", {"dialect": "trd", "outcome": outcome})
        or 0
    )


async def test_a_malformed_callback_url_fails_alone_and_is_reported_at_once(
    deps: Deps, receiver: Receiver
) -> None:
    job = await completed_job(deps, [BAD, receiver.url])
    event = JobCompleted.for_job(job.tenant, job.id)
    refused_before, delivered_before = attempts("refused"), attempts("delivered")

    with pytest.raises(RetryableError, match=r"012\.0\.0\.1"):
        await notify.handle(event, deps)

    received = await receiver.next(timeout=5)
    assert received.json["job"]["id"] == job.id
    after_one = await deps.jobs.get(job.tenant, job.id)
    assert [d.delivered for d in after_one.deliveries.values()] == [False, True]
    assert BAD in after_one.callback_failure_reason and "attempt 1" in after_one.callback_failure_reason
    assert (attempts("refused"), attempts("delivered")) == (refused_before + 1, delivered_before + 1)

    with pytest.raises(RetryableError):  # the redelivery: the good URL is not called again
        await notify.handle(event, deps)
    after_two = await deps.jobs.get(job.tenant, job.id)
    assert "attempt 2" in after_two.callback_failure_reason
    assert len(receiver.all_notifications) == 1

    await notify.on_failure(event, deps, "gave up")
    given_up = await deps.jobs.get(job.tenant, job.id)
    assert "failed after 2 attempts" in given_up.callback_failure_reason


async def test_the_reason_is_cleared_when_a_retry_delivers(deps: Deps, receiver: Receiver) -> None:
    job = await completed_job(deps, [receiver.url])
    event = JobCompleted.for_job(job.tenant, job.id)
    await receiver.down()
    with pytest.raises(RetryableError):
        await notify.handle(event, deps)
    assert "attempt 1" in (await deps.jobs.get(job.tenant, job.id)).callback_failure_reason

    await receiver.up()
    assert await notify.handle(event, deps) == []
    assert (await deps.jobs.get(job.tenant, job.id)).callback_failure_reason == ""
