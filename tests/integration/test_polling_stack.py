"""Polling at scale on the real stack: the index view over SeaweedFS's listings, and several API
processes sharing one port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from events.models import JobCompleted
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap
from functions.common.index_view import IndexView
from functions.common.job_index import index_prefix
from functions.common.jobs import JobDocument, JobStatus, new_job_id
from functions.common.s3_reads import SignedReads
from functions.common.settings import Settings
from functions.common.state_store import Document, StateStore
from infra.probes import http_ok
from tests.fakes import MonotonicClock
from tests.integration.pipeline import REPO, free_port, settings_env


class CountedReads:
    """A state store that counts ``get``s (and passes everything on)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.reads = 0

    async def get(self, key: str) -> tuple[Document, str] | None:
        self.reads += 1
        return await self.inner.get(key)

    async def versions(self, prefix: str) -> dict[str, str]:
        return await self.inner.versions(prefix)


async def test_the_index_view_reads_again_only_the_shard_that_changed(stack_settings: Settings) -> None:
    tenant = f"poll-{uuid.uuid4().hex[:8]}"
    async with bootstrap(stack_settings) as deps:
        jobs = [JobDocument(id=new_job_id(), tenant=tenant, filename=f"{n}.wav") for n in range(24)]
        for job in jobs:
            await deps.jobs.create(job)
        versions = await deps.state.versions(index_prefix(tenant))
        assert len(versions) > 1
        for key, etag in versions.items():  # a listing's etag is the etag a read returns
            assert (await deps.state.get(key) or ({}, ""))[1] == etag

        counted, clock = CountedReads(deps.state), MonotonicClock()
        view = IndexView(counted, max_age_s=1.0, clock=clock)  # type: ignore[arg-type]
        assert {row.id for row in (await view.snapshot(tenant)).rows} == {job.id for job in jobs}
        assert counted.reads == len(versions)

        def fail(current: JobDocument) -> bool:  # another process changes one job
            current.status = JobStatus.FAILED
            return True

        await deps.jobs.change(tenant, jobs[5].id, fail)
        clock.advance(1.0)
        assert (await view.snapshot(tenant)).by_id[jobs[5].id].status == "FAILED"
        assert counted.reads == len(versions) + 1


@contextmanager
def api_processes(
    settings: Settings, port: int, health_ports: list[int], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = settings_env(settings) | {
        "SHENAVA_API_PORT": str(port),
        "SHENAVA_API_PROCESSES": str(len(health_ports)),
    }
    children = []
    try:
        for n, health in enumerate(health_ports):
            log = (logs / f"api-{n}.log").open("wb")
            own = {**env, "SHENAVA_METRICS_PORT": str(health)}
            command = [sys.executable, "-m", "functions.api"]
            children.append(
                subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=own)
            )
            log.close()  # the child has its own copy
        yield children
    finally:
        for child in children:
            child.terminate()
            child.wait(timeout=20)


async def ready(urls: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all([await http_ok(url) for url in urls]):
        assert time.monotonic() < deadline, f"not ready: {urls}"
        await asyncio.sleep(0.2)


async def test_several_api_processes_share_one_port(stack_settings: Settings, tmp_path: Path) -> None:
    port, health = free_port(), [free_port(), free_port()]
    async with bootstrap(stack_settings) as deps:
        key = await create_key(deps.state, "polling")
    with api_processes(stack_settings, port, health, tmp_path) as children:
        await ready([f"http://127.0.0.1:{h}/healthz" for h in health])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            for _ in range(10):  # each a new connection: the kernel picks a process for it
                listed = await client.get("/v1/recognitions", headers={"Authorization": f"Bearer {key}",
                                                                        "Connection": "close"})  # fmt: skip
                assert listed.status_code == 200 and listed.json() == {"recognitions": []}
            children[0].terminate()
            children[0].wait(timeout=20)
            for _ in range(10):  # the other one takes every connection
                assert (await client.get("/healthz", headers={"Connection": "close"})).status_code == 200


class CountedStore(CountedReads):
    """``CountedReads`` with the writes too, to stand under ``SignedReads``."""

    async def put(self, key: str, doc: Document) -> str:
        return await self.inner.put(key, doc)


async def test_signed_listings_page_through_a_long_listing(stack_settings: Settings) -> None:
    async with bootstrap(stack_settings) as deps:
        reads = SignedReads.for_settings(deps.state, stack_settings)
        prefix = f"tenants/many-{uuid.uuid4().hex[:8]}/index/"
        try:
            await asyncio.gather(*(deps.state.put(f"{prefix}{n:05d}.json", {"n": n}) for n in range(1100)))
            listed = await reads.versions(prefix)
            assert len(listed) == 1100 and listed == await deps.state.versions(prefix)
        finally:
            await reads.close()


async def test_signed_reads_return_what_botocore_does_and_fall_back_when_refused(
    stack_settings: Settings,
) -> None:
    async with bootstrap(stack_settings) as deps:
        inner = CountedStore(deps.state)
        reads = SignedReads.for_settings(inner, stack_settings)  # type: ignore[arg-type]
        refused = stack_settings.model_copy(update={"s3_secret_key": "not-the-secret"})
        wrong = SignedReads.for_settings(inner, refused)  # type: ignore[arg-type]
        try:
            assert SignedReads.applies(stack_settings)
            for key in ("tenants/t/jobs/plain.json", "tenants/t/jobs/a b+c=d&é~(1).json"):
                etag = await deps.state.put(key, {"key": key, "text": "سلام"})
                assert (
                    await reads.get(key) == ({"key": key, "text": "سلام"}, etag) == await deps.state.get(key)
                )
            assert await reads.get("tenants/t/jobs/absent.json") is None
            assert inner.reads == 0  # none of those needed botocore
            assert await wrong.get("tenants/t/jobs/plain.json") == await deps.state.get(
                "tenants/t/jobs/plain.json"
            )
            assert inner.reads == 1  # refused (403): botocore read it
            for prefix in ("tenants/t/", "tenants/t/jobs/a b", "tenants/nobody/"):
                assert await reads.versions(prefix) == await deps.state.versions(prefix)
            assert await wrong.versions("tenants/t/") == await deps.state.versions("tenants/t/")
        finally:
            await reads.close()
            await wrong.close()


async def test_a_job_event_on_nats_refreshes_the_api_s_copy_at_once(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"api_poll_max_age_s": 600.0})  # only the event can
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s") as client,
    ):
        deps = app.state.deps
        await deps.bus.connect()  # the API hears events from here on
        key = await create_key(deps.state, "events")
        waiting = JobDocument(id=new_job_id(), tenant="events", source="watson")
        await deps.jobs.create(waiting)
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get(f"/v1/recognitions/{waiting.id}", headers=auth)).json()[
            "status"
        ] == "waiting"
        async with bootstrap(settings) as elsewhere:  # transcribe, in another process

            def complete(current: JobDocument) -> bool:
                current.status = JobStatus.COMPLETED
                return True

            await elsewhere.jobs.change("events", waiting.id, complete)
            await elsewhere.bus.publish(JobCompleted.for_job("events", waiting.id))
        deadline = time.monotonic() + 10
        while (await client.get(f"/v1/recognitions/{waiting.id}", headers=auth)).json()[
            "status"
        ] != "completed":
            assert time.monotonic() < deadline, "the event did not reach the API's copy"
            await asyncio.sleep(0.05)
