"""Polling at scale, on in-memory fakes: what an API process keeps, for how long, and what it no
longer reads. "Another process" is played by writing the store directly; the caches' clock is the
test's (``create_app(monotonic=…)``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from events.models import JobCompleted
from functions.api.app import create_app
from functions.api.poll_cache import PollCache
from functions.common.apikeys import create_key, key_hash
from functions.common.batch_status import render_batch_status
from functions.common.jobs import (
    Accounted,
    Control,
    JobDocument,
    JobRepository,
    JobStatus,
    MediaFacts,
    Progress,
    Stage,
    new_job_id,
    result_key,
)
from functions.common.settings import Settings
from functions.common.state_store import Document, MemoryStateStore
from functions.common.transcript import Segment, Transcript
from tests.fakes import DirMediaStore, MemoryBus, MonotonicClock

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingStore(MemoryStateStore):
    """Counts reads by the kind of document: ``jobs``, ``results``, ``index``, ``keys``."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()

    async def get(self, key: str) -> tuple[Document, str] | None:
        parts = key.split("/")
        self.reads[parts[2] if parts[0] == "tenants" and len(parts) > 3 else parts[0]] += 1
        return await super().get(key)


@dataclass
class Api:
    client: httpx.AsyncClient
    state: CountingStore  # as another process sees it
    clock: MonotonicClock
    settings: Settings
    key: str
    polls: PollCache

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.state)

    async def get(self, path: str, key: str | None = None, **headers: str) -> httpx.Response:
        return await self.client.get(path, headers={"Authorization": f"Bearer {key or self.key}", **headers})

    def wait_max_age(self) -> None:
        self.clock.advance(self.settings.api_poll_max_age_s)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), drop_tenant="acme")
    state, clock = CountingStore(), MonotonicClock()
    app = create_app(settings, monotonic=clock, state=state, media=DirMediaStore(tmp_path / "m"),
                     bus=MemoryBus(), clock=lambda: NOW)  # fmt: skip
    key = await create_key(state, "acme")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s") as client,
    ):
        yield Api(client, state, clock, settings, key, app.state.polls)


def job(status: JobStatus = JobStatus.COMPLETED, batch: str = "", **fields: Any) -> JobDocument:
    media = MediaFacts(size=1000, duration=10.0, channels=1)
    source = "drop" if batch else "trd"
    made = JobDocument(id=new_job_id(), tenant="acme", status=status, batch=batch, source=source,
                       filename="call.wav", media=media, **fields)  # fmt: skip
    if status == JobStatus.COMPLETED:
        made.stage, made.started_at, made.completed_at = Stage.RECOGNIZED, NOW - timedelta(seconds=9), NOW
        made.accounted = {"RECOGNIZED": Accounted(seconds=6.0, segments=2)}
    return made


async def completed(api: Api) -> JobDocument:
    done = job()
    await api.jobs.create(done)
    segment = Segment(start=0.0, end=2.0, text="bom dia", confidence=0.9)
    transcript = Transcript(job_id=done.id, language="pt", duration=10.0, channels=1, segments=(segment,))
    await api.state.put(result_key("acme", done.id), transcript.model_dump(mode="json"))
    return done


async def test_a_revoked_key_works_until_the_cache_ttl_has_passed(api: Api) -> None:
    assert (await api.get("/v1/recognitions")).status_code == 200
    await api.state.delete(f"keys/{key_hash(api.key)}.json")  # revoked (the CLI: another process)
    api.clock.advance(api.settings.api_cache_ttl_s - 0.1)
    assert (await api.get("/v1/recognitions")).status_code == 200
    api.clock.advance(0.1)
    assert (await api.get("/v1/recognitions")).status_code == 401


async def test_a_rotated_key_works_at_once_and_each_key_is_read_once_per_ttl(api: Api) -> None:
    new = await create_key(api.state, "acme")
    before = api.state.reads["keys"]
    for _ in range(5):
        assert (await api.get("/v1/recognitions", key=new)).status_code == 200
        assert (await api.get("/v1/recognitions", key="shv_unknown")).status_code == 401
    assert api.state.reads["keys"] - before == 2  # the new key and the unknown one, once each


SINGLE_READS = [
    "/v1/recognitions/{id}",
    "/trd/v3/job/status/{id}",
    "/trd/v3/job/result/{id}",
    "/trd/v3/job/result/{id}?format=csv",
    "/trd/audiofile/{id}",
    "/trd/transcription/status/audiofile/{id}",
    "/trd/transcription/result/audiofile/{id}?format=csv",
]


@pytest.mark.parametrize("path", SINGLE_READS)
async def test_a_finished_job_is_served_with_an_etag_and_304_when_unchanged(api: Api, path: str) -> None:
    done = await completed(api)
    first = await api.get(path.format(id=done.id))
    assert first.status_code == 200 and first.content and first.headers["etag"]
    again = await api.get(path.format(id=done.id), **{"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", first.headers["etag"])

    def webhook_failed(current: JobDocument) -> bool:  # notify, in another process
        current.callback_failure_reason = "https://example.org answered 500"
        return True

    await api.jobs.change("acme", done.id, webhook_failed)
    api.wait_max_age()
    changed = await api.get(path.format(id=done.id), **{"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]


async def test_a_completed_job_and_its_transcript_are_read_once_while_polled(api: Api) -> None:
    done = await completed(api)
    bodies = {(await api.get(f"/v1/recognitions/{done.id}")).content for _ in range(5)}
    assert len(bodies) == 1 and b"bom dia" in bodies.pop()
    assert (api.state.reads["jobs"], api.state.reads["results"]) == (1, 1)
    api.wait_max_age()  # the document is looked at again; a completed job's transcript never changes
    assert (await api.get(f"/v1/recognitions/{done.id}")).status_code == 200
    assert (api.state.reads["jobs"], api.state.reads["results"]) == (2, 1)


async def test_a_poll_sees_another_process_s_change_within_the_max_age(api: Api) -> None:
    pending = job(JobStatus.QUEUED)
    await api.jobs.create(pending)
    assert (await api.get(f"/v1/recognitions/{pending.id}")).json()["status"] == "waiting"

    def start(current: JobDocument) -> bool:
        current.status = JobStatus.IN_PROGRESS
        return True

    await api.jobs.change("acme", pending.id, start)
    api.wait_max_age()
    assert (await api.get(f"/v1/recognitions/{pending.id}")).json()["status"] == "processing"
    listed = (await api.get("/v1/recognitions")).json()["recognitions"]
    assert [(r["id"], r["status"]) for r in listed] == [(pending.id, "processing")]


async def test_a_job_this_process_changes_is_seen_at_once(api: Api) -> None:
    pending = job(JobStatus.QUEUED)
    await api.jobs.create(pending)
    assert (await api.get(f"/trd/v3/job/status/{pending.id}")).json()["job"]["status"] == "QUEUED"
    assert (await api.get("/trd/v3/job")).json()["total"] == 1
    stopped = await api.client.post(
        f"/trd/v3/job/stop/{pending.id}", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert stopped.status_code == 200
    assert (await api.get(f"/trd/v3/job/status/{pending.id}")).json()["job"]["status"] == "STOPPED"
    assert (await api.get("/trd/v3/job")).json()["results"][0]["job"]["status"] == "STOPPED"


LISTINGS = [
    "/v1/recognitions",
    "/trd/v3/job?page=1&limit=100",
    "/trd/v3/job?tag=x&limit=5",
    "/trd/transcription/status/batch/b1",
]


@pytest.mark.parametrize("path", LISTINGS)
async def test_listings_read_the_index_and_no_job_document(api: Api, path: str) -> None:
    for n in range(30):
        await api.jobs.create(job(JobStatus.COMPLETED if n % 3 else JobStatus.FAILED, tag="x"))
    for _ in range(5):
        await api.jobs.create(job(JobStatus.COMPLETED, batch="b1"))
    reads = Counter(api.state.reads)
    first = await api.get(path)
    assert first.status_code == 200
    assert api.state.reads["jobs"] == reads["jobs"] and api.state.reads["index"] > reads["index"]
    shards_read = api.state.reads["index"]
    api.wait_max_age()  # nothing changed: the index is listed again, no shard is read again
    assert (await api.get(path)).content == first.content
    assert (api.state.reads["jobs"], api.state.reads["index"]) == (reads["jobs"], shards_read)


async def test_polling_many_harf_tasks_reads_no_job_document(api: Api) -> None:
    tasks = [job(JobStatus.COMPLETED if n else JobStatus.QUEUED) for n in range(16)]
    for task in tasks:
        await api.jobs.create(task)
    before = api.state.reads["jobs"]
    body = {"task_ids": [t.id for t in tasks], "wait": False}
    polled = await api.client.post(
        "/api/transcribe_files/", json=body, headers={"Authorization": f"Token {api.key}"}
    )
    assert polled.json() == {"state": "PENDING"} and api.state.reads["jobs"] == before


async def test_query_job_renders_a_finished_job_once(api: Api) -> None:
    for _ in range(10):
        await completed(api)
    first = await api.get("/trd/v3/query/job?status=COMPLETED")
    assert first.json()["total"] == 10 and api.state.reads["jobs"] == 10
    api.wait_max_age()
    assert (await api.get("/trd/v3/query/job?status=COMPLETED")).content == first.content
    assert api.state.reads["jobs"] == 10


def running(batch: str, fraction: float) -> JobDocument:
    file = job(JobStatus.IN_PROGRESS, batch=batch, started_at=NOW - timedelta(seconds=20))
    file.stage = Stage.RECOGNIZING
    so_far = {"RECOGNIZED": Accounted(seconds=3.0, segments=1)}
    file.progress = Progress(audio_s=10.0 * fraction, total_s=10.0, segments=1, accounted=so_far)
    return file


async def test_the_batch_status_stays_the_sum_of_its_files_as_they_change_state(api: Api) -> None:
    files = [job(JobStatus.COMPLETED, batch="b1") for _ in range(3)] + [running("b1", 0.5)]
    files += [job(JobStatus.QUEUED, batch="b1", control=Control.IDLE), job(JobStatus.QUEUED, batch="b1")]
    files += [job(JobStatus.COMPLETED, batch="other")]
    for file in files:
        await api.jobs.create(file)

    async def from_documents() -> dict[str, object]:
        docs = [await api.jobs.find("acme", f.id) for f in files]
        return render_batch_status("b1", [d for d in docs if d is not None and d.batch == "b1"], NOW)

    assert (await api.get("/trd/transcription/status/batch/b1")).json() == await from_documents()

    def finish(current: JobDocument) -> bool:
        current.status, current.stage, current.completed_at = JobStatus.COMPLETED, Stage.RECOGNIZED, NOW
        current.accounted = {
            "RECOGNIZED": Accounted(seconds=5.0, segments=3),
            "NO_MATCH": Accounted(seconds=1.0, segments=1),
        }
        return True

    def fail(current: JobDocument) -> bool:
        current.status, current.failure_reason = JobStatus.FAILED, "not audio"
        return True

    def pause(current: JobDocument) -> bool:
        current.control, current.stage = Control.PAUSED, Stage.NORMALIZED
        return True

    def progress(current: JobDocument) -> bool:
        assert current.progress is not None
        current.progress.audio_s = 9.0
        return True

    await api.jobs.change("acme", files[3].id, progress)  # a running file's progress: no row change
    await api.jobs.change("acme", files[4].id, fail)
    await api.jobs.change("acme", files[5].id, pause)
    await api.jobs.delete("acme", files[0].id)
    api.wait_max_age()
    status = (await api.get("/trd/transcription/status/batch/b1")).json()
    assert status == await from_documents() and status["total_files"] == 5
    await api.jobs.change("acme", files[3].id, finish)
    api.wait_max_age()
    status = (await api.get("/trd/transcription/status/batch/b1")).json()
    assert status == await from_documents()
    assert (
        status["accounted_control"]["FINISHED"]["files"] == 3 and status["accounted_recognition"]["NO_MATCH"]
    )


async def test_after_a_change_elsewhere_only_that_index_shard_is_read_again(api: Api) -> None:
    made = [job(JobStatus.QUEUED) for _ in range(40)]
    for each in made:
        await api.jobs.create(each)
    assert (await api.get("/v1/recognitions")).json()["recognitions"][0]["status"] == "waiting"
    shards = api.state.reads["index"]
    assert shards > 1

    def fail(current: JobDocument) -> bool:
        current.status = JobStatus.FAILED
        return True

    await api.jobs.change("acme", made[-1].id, fail)
    before = api.state.reads["index"]  # the change itself read the shard it updated
    api.wait_max_age()
    assert (await api.get("/v1/recognitions")).json()["recognitions"][0]["status"] == "failed"
    assert api.state.reads["index"] == before + 1


async def test_polls_that_miss_together_share_one_read() -> None:
    state, clock = CountingStore(), MonotonicClock()
    polls = PollCache(state, max_age_s=1.0, clock=clock)
    polled = job(JobStatus.QUEUED)
    await JobRepository(state).create(polled)
    found = await asyncio.gather(*(polls.job("acme", polled.id) for _ in range(8)))
    assert {f.job.id for f in found if f is not None} == {polled.id} and state.reads["jobs"] == 1


async def test_a_job_event_heard_on_the_bus_makes_the_next_poll_read_the_job() -> None:
    state, clock = CountingStore(), MonotonicClock()
    polls = PollCache(state, max_age_s=60.0, clock=clock)
    waiting = job(JobStatus.QUEUED)
    await JobRepository(state).create(waiting)
    assert (await polls.job("acme", waiting.id)).job.status == JobStatus.QUEUED  # type: ignore[union-attr]

    def complete(current: JobDocument) -> bool:  # transcribe, in another process
        current.status = JobStatus.COMPLETED
        return True

    await JobRepository(state).change("acme", waiting.id, complete)
    assert (await polls.job("acme", waiting.id)).job.status == JobStatus.QUEUED  # type: ignore[union-attr]
    polls.job_changed(JobCompleted.for_job("acme", waiting.id))  # its event, heard before its webhook
    assert (await polls.job("acme", waiting.id)).job.status == JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_a_listing_after_a_job_event_shows_the_change(api: Api) -> None:
    waiting = job(JobStatus.QUEUED)
    await api.jobs.create(waiting)
    assert (await api.get("/v1/recognitions")).json()["recognitions"][0]["status"] == "waiting"

    def complete(current: JobDocument) -> bool:  # transcribe, in another process
        current.status = JobStatus.COMPLETED
        return True

    await api.jobs.change("acme", waiting.id, complete)
    assert (await api.get("/v1/recognitions")).json()["recognitions"][0]["status"] == "waiting"
    api.polls.job_changed(JobCompleted.for_job("acme", waiting.id))  # heard on the bus
    assert (await api.get("/v1/recognitions")).json()["recognitions"][0]["status"] == "completed"
