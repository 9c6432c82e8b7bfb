"""The reconciler on real SeaweedFS: which media it announces again, with what event, that a
pass that could not publish is repeated, and which jobs whose media never landed it removes. The
media here live in a bucket of their own, outside the filer webhook's prefixes, so that only the
reconciler can announce them (as when the original event was lost), and the jobs in a state bucket
of their own, so that other tests' jobs are not its concern. Each test has its own two buckets:
a pass looks at every object, so what one test leaves would be counted by the next."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiobotocore.session import get_session

from events.models import Event, ObjectCreated
from functions.common.bootstrap import s3_client_args
from functions.common.clock import utcnow
from functions.common.jobs import (
    Control,
    JobDocument,
    JobRepository,
    JobStatus,
    Stage,
    drop_marker_key,
    new_job_id,
)
from functions.common.settings import Settings
from functions.common.state_store import S3StateStore
from infra.reconciler import Reconciler


@pytest.fixture
async def s3(stack_settings: Settings) -> AsyncIterator[Any]:
    async with get_session().create_client("s3", **s3_client_args(stack_settings)) as client:
        yield client


@pytest.fixture
async def settings(stack_settings: Settings, s3: Any) -> Settings:
    """The stack's settings with a media bucket and a state bucket of this test's own."""
    name = uuid.uuid4().hex[:8]
    media, state = f"reconciler-media-{name}", f"reconciler-state-{name}"
    for bucket in (media, state):
        await s3.create_bucket(Bucket=bucket)
    return stack_settings.model_copy(update={"media_bucket": media, "state_bucket": state})


class Published:
    def __init__(self) -> None:
        self.events: list[ObjectCreated] = []
        self.down = False

    async def __call__(self, event: Event) -> None:
        if self.down:
            raise ConnectionError("the bus is away")
        assert isinstance(event, ObjectCreated)
        self.events.append(event)

    def announced(self) -> set[str]:
        return {event.key for event in self.events}


async def put(s3: Any, settings: Settings, key: str, body: bytes = b"RIFF media") -> str:
    await s3.put_object(Bucket=settings.media_bucket, Key=key, Body=body)
    return hashlib.md5(body).hexdigest()


async def job(jobs: JobRepository, **fields: Any) -> JobDocument:
    made = JobDocument(id=new_job_id(), tenant="recon", **fields)
    await jobs.create(made)
    return made


async def test_lost_uploads_and_unregistered_drops_are_announced_again_once(
    settings: Settings, s3: Any
) -> None:
    settings = settings.model_copy(update={"reconcile_after_s": 60.0})
    state = S3StateStore(s3, settings.state_bucket)
    jobs = JobRepository(state)
    stuck = await job(jobs)
    moved_on = await job(jobs, stage=Stage.NORMALIZED)
    held = await job(jobs, control=Control.IDLE)
    finished = await job(jobs, status=JobStatus.COMPLETED, stage=Stage.RECOGNIZED)
    batch = new_job_id()
    etag = await put(s3, settings, f"uploads/recon/{stuck.id}/a.wav")
    for other in (moved_on, held, finished):
        await put(s3, settings, f"uploads/recon/{other.id}/a.wav")
    await put(s3, settings, f"uploads/recon/{new_job_id()}/no-job.wav")
    await put(s3, settings, f"incoming/{batch}/never-seen.wav", b"dropped")
    await put(s3, settings, f"incoming/{batch}/_config.json", b"{}")
    seen_etag = await put(s3, settings, f"incoming/{batch}/seen.wav", b"seen")
    seen_key = f"{settings.media_bucket}/incoming/{batch}/seen.wav@{seen_etag}"
    await state.create(drop_marker_key(seen_key), {"tenant": "recon", "job_id": finished.id})

    published = Published()
    later = utcnow() + timedelta(hours=1)  # every object and job is past the deadline by then
    reconciler = Reconciler(s3, state, published, settings, clock=lambda: later)

    published.down = True  # a pass that cannot publish fails, and the next one starts over
    with pytest.raises(ConnectionError):
        await reconciler.reconcile()
    published.down = False
    assert await reconciler.reconcile() == 2

    assert published.announced() == {f"uploads/recon/{stuck.id}/a.wav", f"incoming/{batch}/never-seen.wav"}
    event = next(e for e in published.events if e.key.startswith("uploads/"))
    # The id the bridge gives the same object: a repeat inside the stream's window is dropped.
    assert event.id == event.dedupe_key == f"{settings.media_bucket}/uploads/recon/{stuck.id}/a.wav@{etag}"
    assert (event.bucket, event.size, event.source) == (
        settings.media_bucket,
        len(b"RIFF media"),
        "reconciler",
    )
    assert await reconciler.reconcile() == 0  # judged once: later passes look at newer objects
    restarted = Reconciler(s3, state, published, settings, clock=lambda: later)
    assert await restarted.reconcile() == 0  # … and a restarted reconciler goes on from there


async def test_young_media_is_left_to_its_event(settings: Settings, s3: Any) -> None:
    settings = settings.model_copy(update={"reconcile_after_s": 3600.0})
    state = S3StateStore(s3, settings.state_bucket)
    await put(s3, settings, f"incoming/{new_job_id()}/fresh.wav")
    published = Published()
    assert await Reconciler(s3, state, published, settings).reconcile() == 0
    assert not published.announced()


async def test_a_job_whose_media_never_landed_is_removed(settings: Settings, s3: Any) -> None:
    """What an API process killed between registering a job and storing its media leaves."""
    state = S3StateStore(s3, settings.state_bucket)
    jobs = JobRepository(state)
    orphan = await job(jobs, source="trd")
    stored = await job(jobs, source="trd")
    await put(s3, settings, f"uploads/recon/{stored.id}/a.wav")
    dropped = await job(jobs, source="drop", batch="b")  # a drop job's media is the dropped file
    failed = await job(jobs, source="watson", status=JobStatus.FAILED)
    published = Published()
    now = Reconciler(s3, state, published, settings)
    assert orphan.id not in await now.remove_orphans(utcnow() - timedelta(minutes=5))  # too young yet

    later = utcnow() + timedelta(hours=1)
    reconciler = Reconciler(s3, state, published, settings, clock=lambda: later)
    await reconciler.reconcile()
    assert await jobs.find("recon", orphan.id) is None
    assert orphan.id not in {row.id for row in await jobs.index.rows("recon")}  # gone from listings too
    for kept in (stored, dropped, failed):
        assert await jobs.find("recon", kept.id) is not None
    assert published.announced() == {f"uploads/recon/{stored.id}/a.wav"}  # the other way round
