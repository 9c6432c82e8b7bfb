"""What one API process keeps in memory so that polling clients cost it little.

Installed by ``install(app, deps)`` when the app starts:

1. **Rarely changing documents** (``CACHE_RULES``): API keys, callback registrations and the
   tenant's callback secret, Kashf dataset metadata. The state store is wrapped in a
   ``CachedStateStore`` that keeps them ``api_cache_ttl_s``: a revoked or rotated key stops
   working within that time; this process's own writes are seen at once.
2. **Polled jobs** (``PollCache.job``): a job document read at most ``api_poll_max_age_s`` ago,
   with what each endpoint rendered from it and that body's ``ETag``. A poll may see another
   process's change that much later; this process forgets a job as soon as it writes it, or hears
   a lifecycle event of it on NATS (so a client that fetches a job on its webhook finds it done).
   Waits (synchronous endpoints) and every write path read the store itself, never this copy.
3. **Transcripts of completed jobs**: written once when the job completes and never changed,
   kept until their job or result is deleted (least recently used dropped past ``TRANSCRIPTS``).
4. **The tenants' job indexes** (``IndexView``), for listings.

``job_response`` answers ``If-None-Match`` with 304 and otherwise serves the body rendered once
per job version: a finished job's response is computed once and then only compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from events.models import JobEvent
from functions.common.bootstrap import Deps
from functions.common.bus import NatsBus
from functions.common.cached_store import CachedStateStore, CacheRule
from functions.common.index_view import IndexView
from functions.common.jobs import JobDocument, job_key, result_key
from functions.common.s3_reads import SignedReads
from functions.common.state_store import Document, S3StateStore, StateStore
from functions.common.transcript import Transcript

log = logging.getLogger("shenava.api")

JOBS = 4096  # job documents kept (each a few kB)
TRANSCRIPTS = 256  # transcripts kept (a long call's is a few hundred kB)
RENDER_BYTES = 32 * 1024**2  # finished jobs' renderings in listings (a few kB each; with segments more)
JSON = "application/json"


def cache_rules(ttl_s: float) -> list[CacheRule]:
    patterns = (
        r"keys/[0-9a-f]{64}\.json",  # API keys (functions/common/apikeys.py)
        r"tenants/[^/]+/callbacks/[0-9a-f]{64}\.json",  # Watson callback registrations
        r"tenants/[^/]+/callback-secret\.json",  # the secret signing TRD callback_urls
        r"tenants/[^/]+/kashf/tags/\d+\.json",  # which dataset a Kashf tag belongs to
    )
    return [CacheRule(re.compile(pattern), ttl_s) for pattern in patterns]


def encode_json(body: Any) -> bytes:
    """As FastAPI's JSONResponse encodes a returned dict."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


@dataclass
class PolledJob:
    job: JobDocument
    etag: str  # the document's, in the state bucket
    read_at: float
    bodies: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # variant -> body, media type

    def http_etag(self, variant: str) -> str:
        digest = hashlib.sha1(f"{self.etag}|{variant}".encode(), usedforsecurity=False).hexdigest()
        return f'"{digest[:24]}"'


class PollCache:
    def __init__(
        self, state: StateStore, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._state = state
        self._max_age_s = max_age_s
        self._clock = clock
        self._jobs: OrderedDict[str, PolledJob] = OrderedDict()
        self._transcripts: OrderedDict[str, Transcript] = OrderedDict()
        self._renders: OrderedDict[Hashable, bytes] = OrderedDict()
        self._render_bytes = 0
        self._reading: dict[str, asyncio.Future[PolledJob | None]] = {}
        self._changes = 0  # writes this process made, events it heard: a read spanning one keeps nothing
        self.index = IndexView(state, max_age_s, clock)

    def observe(self, key: str, doc: Document | None, etag: str) -> None:
        """A write through this process: a job (or its transcript) is read again next time, an
        index shard taken in by the view."""
        self._forget(key)
        self._transcripts.pop(key, None)
        self.index.observe(key, doc, etag)

    def job_changed(self, event: JobEvent) -> None:
        """A lifecycle event of a job (queued, started, completed, failed, stopped), heard on the
        bus: it changed elsewhere, so it is read again at once (its webhook may be on its way)."""
        self._forget(job_key(event.tenant, event.job_id))
        self.index.heard_of(event.tenant)

    def _forget(self, key: str) -> None:
        self._changes += 1
        self._jobs.pop(key, None)
        self._reading.pop(key, None)

    async def job(self, tenant: str, job_id: str) -> PolledJob | None:
        """The job as read at most ``max_age_s`` ago; polls that miss together share one read."""
        key = job_key(tenant, job_id)
        known = self._jobs.get(key)
        if known is not None and self._clock() - known.read_at < self._max_age_s:
            self._jobs.move_to_end(key)
            return known
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._read(key, known))

            def done(finished: asyncio.Future[PolledJob | None]) -> None:
                if self._reading.get(key) is finished:
                    del self._reading[key]

            reading.add_done_callback(done)
        return await asyncio.shield(reading)

    async def _read(self, key: str, known: PolledJob | None) -> PolledJob | None:
        changes, now = self._changes, self._clock()
        found = await self._state.get(key)
        if found is None:
            self._jobs.pop(key, None)
            return None
        doc, etag = found
        if known is not None and known.etag == etag:
            known.read_at = now  # unchanged: keep what was rendered from it
            return known
        polled = PolledJob(JobDocument.model_validate(doc), etag, now)
        if changes == self._changes:  # else the job changed meanwhile: the next poll reads again
            self._jobs[key] = polled
            self._jobs.move_to_end(key)
            while len(self._jobs) > JOBS:
                self._jobs.popitem(last=False)
        return polled

    async def transcript(self, tenant: str, job_id: str, completed: bool) -> Transcript | None:
        """A job's transcript; a COMPLETED job's is kept (it never changes again)."""
        key = result_key(tenant, job_id)
        if completed and key in self._transcripts:
            self._transcripts.move_to_end(key)
            return self._transcripts[key]
        found = await self._state.get(key)
        transcript = Transcript.model_validate(found[0]) if found else None
        if transcript is not None and completed:
            self._transcripts[key] = transcript
            while len(self._transcripts) > TRANSCRIPTS:
                self._transcripts.popitem(last=False)
        return transcript

    async def rendered(self, key: Hashable, render: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        """What ``render()`` made for ``key``: a key that names an unchanging state (a finished
        job's index row, with the dialect's variant), so what was made for it stays right."""
        if key in self._renders:
            self._renders.move_to_end(key)
            return self._renders[key]
        body = await render()
        if body is not None and key not in self._renders:
            self._renders[key] = body
            self._render_bytes += len(body)
            while self._render_bytes > RENDER_BYTES:
                self._render_bytes -= len(self._renders.popitem(last=False)[1])
        return body


def _matches(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in given.split(",")}
    return etag in tags or "*" in tags


async def job_response(
    request: Request,
    polled: PolledJob,
    variant: str,
    render: Callable[[], Awaitable[Any]],
    media_type: str = JSON,
) -> Response:
    """The body ``render()`` makes for this version of the job, with its ``ETag``; 304 when the
    client has it. ``variant`` names everything but the job the body depends on."""
    etag = polled.http_etag(variant)
    if _matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    if variant not in polled.bodies:
        body = await render()
        polled.bodies[variant] = (body.encode() if isinstance(body, str) else encode_json(body), media_type)
    content, kind = polled.bodies[variant]
    return Response(content, media_type=kind, headers={"ETag": etag})


def install(
    app: FastAPI, deps: Deps, stack: AsyncExitStack, clock: Callable[[], float] = time.monotonic
) -> PollCache:
    """Wrap the app's state store and keep the process's caches on ``app.state.polls``; reads of
    an S3 state bucket with static credentials are signed here (``SignedReads``)."""
    settings = deps.settings
    store = deps.state
    if isinstance(store, S3StateStore) and SignedReads.applies(settings):
        signed = SignedReads.for_settings(store, settings)
        stack.push_async_callback(signed.close)
        store = signed
    cached = CachedStateStore(store, cache_rules(settings.api_cache_ttl_s), clock=clock)
    deps.state = cached
    polls = PollCache(cached, settings.api_poll_max_age_s, clock)
    cached.observers.append(polls.observe)
    if isinstance(deps.bus, NatsBus):
        deps.bus.listen(polls.job_changed)
        listening = asyncio.create_task(_connect(deps.bus))
        stack.callback(listening.cancel)
    app.state.polls = polls
    return polls


async def _connect(bus: NatsBus) -> None:
    """Hear job events from the start; if NATS is away now, they are heard once the bus connects."""
    try:
        await bus.connect()
    except Exception as exc:  # the API serves without the bus; copies then live out their max age
        log.warning("the API could not reach the event bus yet (%s): polls may lag up to their max age", exc)
