"""The reconciler: an accepted upload whose bucket event was lost is found and announced again.

An object's ``ObjectCreated`` can be lost between the bucket and the stream: SeaweedFS keeps its
webhook retries in memory (a weed restart drops them, and it gives up after ~5 minutes), MinIO's
queue directory can fill, a broker can be down longer than either retries. Nothing else would
ever look at such media again: its job would stay QUEUED for ever.

So, at start-up and then every ``SHENAVA_RECONCILE_INTERVAL_S``, the media bucket's ``uploads/``
and ``incoming/`` are listed and each object older than ``SHENAVA_RECONCILE_AFTER_S`` is judged:

- ``uploads/<tenant>/<job>/<file>`` whose job is still in its first state (QUEUED, INITIAL,
  running) since before that deadline;
- ``incoming/<batch>/<file>`` that no job was registered for (no drop marker), or whose job is
  stuck the same way;

and its ``ObjectCreated`` is published again, with the same event id (``bucket/key@etag``, the
``Nats-Msg-Id``) as the original: the stream drops a repeat inside its dedupe window and ingest
is idempotent beyond it, so a republished event that was not lost after all changes nothing.
Objects whose job has moved on, finished, was deleted, or waits on purpose (IDLE, PAUSED) are
left alone. After the first full pass, each pass looks only at objects modified since the
previous pass began minus the deadline (listing is cheap; reading job documents is not). That
point is kept in the state bucket (``WATERMARK_KEY``), so a restarted reconciler goes on from it
instead of reading the job of every upload the bucket still holds.

The other way round, a job with no media: the API registers a job, then stores its media, and
removes the job if the store fails. An API process killed between the two (or a store that dies
with the removal) leaves a job QUEUED for ever whose client never got its id (the request failed
or was cut). So each pass also reads the index shards of the last ``ORPHAN_DAYS`` days of every
tenant, and a job the API made that is still in its first state past the deadline with nothing
under ``uploads/<tenant>/<job>/`` is removed.

``python -m infra.reconciler`` runs it (``make up`` supervises it), with ``/healthz`` and
``/metrics`` like a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from prometheus_client import Counter

from events.models import Event, ObjectCreated
from functions.common.clock import utcnow
from functions.common.job_index import JobRow, id_time, index_prefix
from functions.common.jobs import Control, JobDocument, JobRepository, JobStatus, Stage, drop_marker_key
from functions.common.media_store import BATCH_CONFIG, INCOMING, UPLOADS
from functions.common.settings import Settings
from functions.common.state_store import StateStore

log = logging.getLogger("shenava.reconciler")

CLOCK_MARGIN_S = 60.0  # object times come from the store's clock, not ours
ORPHAN_DAYS = 2  # how far back a pass looks for jobs whose media never landed
SOURCE = "reconciler"
WATERMARK_KEY = "reconciler/since.json"

REPUBLISHED = Counter(
    "shenava_reconciler_republished_total", "ObjectCreated events published again, by why", ["reason"]
)
ORPHANS = Counter("shenava_reconciler_orphans_removed_total", "Jobs removed whose media never landed")
PASSES = Counter("shenava_reconciler_passes_total", "Reconciler passes over the media bucket, by outcome",
                 ["outcome"])  # fmt: skip


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str
    modified: datetime


def first_state(job: JobDocument) -> bool:
    """Registered and never taken further, though it may advance."""
    return job.status == JobStatus.QUEUED and job.stage == Stage.INITIAL and job.control == Control.RUNNING


class Reconciler:
    def __init__(
        self,
        s3: Any,
        state: StateStore,
        publish: Callable[[Event], Awaitable[None]],
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._s3 = s3
        self._state = state
        self._jobs = JobRepository(state)
        self._publish = publish
        self._bucket = settings.media_bucket
        self._state_bucket = settings.state_bucket
        self._after = timedelta(seconds=settings.reconcile_after_s)
        self._clock = clock
        self.since: datetime | None = None  # None: the next pass looks at everything

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """A pass now, then one every ``interval_s`` until ``stop``; a failed pass is retried."""
        while not stop.is_set():
            try:
                await self.reconcile()
                PASSES.labels("ok").inc()
            except Exception:
                PASSES.labels("failed").inc()
                log.exception("a reconciler pass failed; the next one starts from the same point")
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                continue

    async def reconcile(self) -> int:
        """One pass; returns how many events were published again."""
        if self.since is None:
            self.since = await self._saved_since()
        began = self._clock()
        deadline = began - self._after
        published = 0
        async for stored in self._objects():
            if stored.modified > deadline or (self.since is not None and stored.modified < self.since):
                continue
            reason = await self._lost(stored, deadline)
            if reason:
                await self._publish(self._event(stored))
                REPUBLISHED.labels(reason).inc()
                log.warning("published again: %s (%s)", stored.key, reason)
                published += 1
        await self.remove_orphans(deadline)
        # Objects younger than the deadline were skipped: the next pass must still see them.
        self.since = deadline - timedelta(seconds=CLOCK_MARGIN_S)
        await self._state.put(WATERMARK_KEY, {"since": self.since.isoformat()})
        return published

    async def _saved_since(self) -> datetime | None:
        """Where the last completed pass (of any reconciler process) left off; None: nowhere yet."""
        saved = await self._state.get(WATERMARK_KEY)
        return datetime.fromisoformat(str(saved[0]["since"])) if saved else None

    async def remove_orphans(self, deadline: datetime) -> list[str]:
        """Remove the API's jobs whose media never landed (see the module's docstring); their ids."""
        removed = []
        first_day = f"{deadline - timedelta(days=ORPHAN_DAYS):%Y-%m-%d}"
        for tenant in await self._tenants():
            for row in await self._queued_rows(tenant, first_day, deadline):
                job = await self._jobs.find(tenant, row.id)
                if job is None or not _stuck(job, deadline):
                    continue
                if await self._has_upload(tenant, job.id):
                    continue  # the object pass above takes care of it
                await self._jobs.delete(tenant, job.id)
                ORPHANS.inc()
                log.warning("removed job %s of %s: its media never landed", job.id, tenant)
                removed.append(job.id)
        return removed

    async def _tenants(self) -> list[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        tenants = []
        async for page in paginator.paginate(Bucket=self._state_bucket, Prefix="tenants/", Delimiter="/"):
            tenants += [p["Prefix"][len("tenants/") : -1] for p in page.get("CommonPrefixes", [])]
        return tenants

    async def _queued_rows(self, tenant: str, first_day: str, deadline: datetime) -> list[JobRow]:
        """The index rows of the API's QUEUED jobs made from ``first_day`` until ``deadline``. A shard
        not written since the last pass began is skipped: its rows were judged then, by an earlier
        deadline that already covered them."""
        prefix = index_prefix(tenant)
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._state_bucket, Prefix=prefix, StartAfter=prefix + first_day)
        keys = [
            item["Key"]
            async for page in pages
            for item in page.get("Contents", [])
            if self.since is None or item["LastModified"] >= self.since
        ]
        rows = await self._jobs.index.rows_of(keys)
        return [
            row
            for row in rows
            if row.status == JobStatus.QUEUED and row.source != "drop" and id_time(row.id) <= deadline
        ]

    async def _has_upload(self, tenant: str, job_id: str) -> bool:
        found = await self._s3.list_objects_v2(
            Bucket=self._bucket, Prefix=f"{UPLOADS}{tenant}/{job_id}/", MaxKeys=1
        )
        return bool(found.get("Contents"))

    async def _objects(self) -> AsyncIterator[StoredObject]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for prefix in (UPLOADS, INCOMING):
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    etag = str(item.get("ETag", "")).strip('"')
                    yield StoredObject(item["Key"], int(item.get("Size", 0)), etag, item["LastModified"])

    async def _lost(self, stored: StoredObject, deadline: datetime) -> str:
        """Why the object's event looks lost ("" when it does not)."""
        if stored.key.startswith(UPLOADS):
            parts = stored.key[len(UPLOADS) :].split("/", 2)
            job = await self._jobs.find(parts[0], parts[1]) if len(parts) == 3 else None
            return "stuck" if job is not None and _stuck(job, deadline) else ""
        if not _dropped_media(stored.key):
            return ""
        marker = await self._state.get(drop_marker_key(self._event(stored).dedupe_key))
        if marker is None:
            return "unregistered"
        job = await self._jobs.find(str(marker[0]["tenant"]), str(marker[0]["job_id"]))
        return "stuck" if job is not None and _stuck(job, deadline) else ""

    def _event(self, stored: StoredObject) -> ObjectCreated:
        event = ObjectCreated(id="", bucket=self._bucket, key=stored.key, size=stored.size,
                              etag=stored.etag, source=SOURCE)  # fmt: skip
        return event.model_copy(update={"id": event.dedupe_key})


def _stuck(job: JobDocument, deadline: datetime) -> bool:
    return first_state(job) and job.updated_at <= deadline


def _dropped_media(key: str) -> bool:
    """``incoming/<batch>/<file>``: not a folder, not the batch's configuration."""
    name = PurePosixPath(key).name
    return key.count("/") >= 2 and not key.endswith("/") and name != BATCH_CONFIG


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The reconciler against the configured bucket and bus, until ``stop``."""
    from aiobotocore.session import get_session

    from events.bus import connect, publish_event
    from functions.common.bootstrap import s3_client_args
    from functions.common.observability import ObservabilityServer
    from functions.common.state_store import S3StateStore

    running = False

    def status() -> dict[str, object]:
        return {"status": "ok" if running else "starting", "function": SOURCE}

    health = ObservabilityServer(settings.metrics_host, settings.metrics_port, status)
    await health.start()
    try:
        async with get_session().create_client("s3", **s3_client_args(settings)) as s3:
            nc, js = await connect(settings, name="shenava-reconciler")
            try:
                reconciler = Reconciler(s3, S3StateStore(s3, settings.state_bucket),
                                        lambda event: publish_event(js, event), settings)  # fmt: skip
                running = True
                await reconciler.run(stop, settings.reconcile_interval_s)
            finally:
                running = False
                await nc.drain()
    finally:
        await health.close()


def main() -> None:
    from functions.common.logs import configure_logging
    from functions.common.settings import load_settings
    from functions.common.worker import run_until_signalled

    settings = load_settings()
    configure_logging(settings.log_level)
    run_until_signalled(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
