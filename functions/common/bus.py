"""How the API reaches the functions: publish an event; wait until a job or a dataset run is done.

A worker never needs this — its runner publishes what ``handle`` returns. The API does: a TRD
stop, a batch start, a Kashf training request are events it publishes, and the synchronous
endpoints (TRD ``/transcribe``, Harf ``wait``, the Harf websocket, Kashf ``wait``) wait for a
job or a run to finish. One behaviour, whatever the deployment:

- **NATS** (``SHENAVA_NATS_URL``, self-hosted): events go to JetStream (the event id is the
  ``Nats-Msg-Id``: a repeat is dropped); a wait wakes on each lifecycle event of its job or run
  (plain NATS: only events published while it waits matter) and re-reads the document then.
- **SNS** (``SHENAVA_EVENTS_TOPIC_ARN``, AWS): events go to the topic the functions' queues
  subscribe to; a wait re-reads the document every ``POLL_S`` (backing off to ``POLL_MAX_S``):
  Lambda gives an API no event stream to hold on to.
- **Neither** (a misconfigured deployment): waits poll as on AWS; publishing answers 503, naming
  the two settings.

A waiter checks the document first and after every wake, so an event published before it started
waiting is never missed. A request (the live lane's) carries an id in a header; when its asker
stops waiting for it (cancelled, or timed out) the id goes out on ``withdrawn_subject``, so a
responder that has not started on it yet can skip work nobody will read. The connection is made
on first use: a worker's ``Deps`` carry a bus that never connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from events.models import DatasetWorkDone, Event, JobEvent, parse_event
from events.subjects import DATASET_DONE, SUBJECT_PREFIX, TRANSCRIBE_QUEUES
from functions.common.errors import ServiceUnavailable
from functions.common.settings import Settings

REQUEST_ID_HEADER = "Shenava-Request"
POLL_S = 0.25
POLL_MAX_S = 2.0

Finished = Callable[[], Awaitable[bool]]


class Bus(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def wait(self, key: str, finished: Finished, timeout_s: float) -> bool:
        """Wait until ``finished()`` holds (``key``: the job id or the dataset run id whose events
        may change it); False when ``timeout_s`` passed first."""
        ...

    async def queue_depth(self) -> int | None:
        """How many jobs wait for transcription, or None where the bus cannot tell."""
        ...

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        """Ask whoever serves ``subject`` (the live lane) and wait for the answer; None when nobody
        serves it or no answer came in time (the caller then takes the slower path)."""
        ...

    async def close(self) -> None: ...


class PollingBus:
    """Waits by re-reading the document; publishes through ``publisher`` (or refuses with 503)."""

    def __init__(self, publisher: Callable[[Event], Awaitable[None]] | None = None) -> None:
        self._publisher = publisher

    async def publish(self, event: Event) -> None:
        if self._publisher is None:
            raise ServiceUnavailable(
                "no event bus is configured (SHENAVA_NATS_URL or SHENAVA_EVENTS_TOPIC_ARN): "
                "the functions cannot be reached"
            )
        await self._publisher(event)

    async def wait(self, key: str, finished: Finished, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pause = POLL_S
        while not await finished():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 1.5, POLL_MAX_S)
        return True

    async def queue_depth(self) -> int | None:
        return None

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        return None  # no request/reply without NATS (on AWS the live lane is the file path)

    async def close(self) -> None:
        return None


def withdrawn_subject(subject: str) -> str:
    """Where the ids of requests on ``subject`` that nobody waits for any more are announced."""
    return f"{subject}.withdrawn"


class Waiters:
    """Requests waiting under a key, each woken to check again when an event for the key arrives."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)

    def wake(self, key: str) -> None:
        for waiter in self._waiting.get(key, ()):
            waiter.set()

    async def wait(self, key: str, finished: Finished, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        changed = asyncio.Event()
        self._waiting[key].add(changed)
        try:
            while True:
                if await finished():
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
                changed.clear()
        finally:
            self._waiting[key].discard(changed)
            if not self._waiting[key]:
                del self._waiting[key]


class NatsBus:
    """JetStream for publishing, plain NATS subscriptions to wake waiters (connected on first use)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._waiters = Waiters()
        self._connecting = asyncio.Lock()
        self._nc: Any = None
        self._js: Any = None
        self._listeners: list[Callable[[JobEvent], None]] = []

    def listen(self, listener: Callable[[JobEvent], None]) -> None:
        """Call ``listener`` with every job lifecycle event this bus hears (once it is connected):
        the API's poll cache forgets a job the moment its state changes elsewhere."""
        self._listeners.append(listener)

    async def connect(self) -> None:
        """Connect now rather than on first use (to hear events before anything is published)."""
        await self._jetstream()

    async def publish(self, event: Event) -> None:
        from events.bus import publish_event

        await publish_event(await self._jetstream(), event)

    async def wait(self, key: str, finished: Finished, timeout_s: float) -> bool:
        await self._jetstream()  # subscribed before the first check: no event slips between
        return await self._waiters.wait(key, finished, timeout_s)

    async def queue_depth(self) -> int | None:
        """None while the bus is away: admission cannot tell, and a submission that stores its
        media loses nothing (the reconciler announces it if its event is lost)."""
        from nats.errors import Error as NatsError
        from nats.js.errors import NotFoundError

        waiting = 0
        try:
            js = await self._jetstream()
            for queue in TRANSCRIBE_QUEUES:
                try:
                    waiting += (await js.consumer_info(self._settings.stream_name, queue.durable)).num_pending
                except NotFoundError:  # no transcribe worker has started yet: nothing waits behind one
                    continue
        except (NatsError, OSError, TimeoutError):
            return None
        return waiting

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        await self._jetstream()
        request_id = uuid.uuid4().hex
        try:
            reply = await self._nc.request(
                subject, payload, timeout=timeout_s, headers={REQUEST_ID_HEADER: request_id}
            )
        except NoRespondersError:
            return None
        except (NatsTimeout, TimeoutError):
            await self._withdraw(subject, request_id)
            return None
        except asyncio.CancelledError:
            await self._withdraw(subject, request_id)
            raise
        return bytes(reply.data)

    async def _withdraw(self, subject: str, request_id: str) -> None:
        from nats.errors import Error as NatsError

        with contextlib.suppress(NatsError, OSError):
            await self._nc.publish(withdrawn_subject(subject), request_id.encode())

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = self._js = None

    async def _jetstream(self) -> Any:
        async with self._connecting:
            if self._js is None:
                from events.bus import connect

                nc, js = await connect(self._settings, name="shenava-api")
                await nc.subscribe(f"{SUBJECT_PREFIX}.job.>", cb=self._on_event)
                await nc.subscribe(DATASET_DONE, cb=self._on_event)
                self._nc, self._js = nc, js
            return self._js

    async def _on_event(self, msg: Any) -> None:
        try:
            event = parse_event(msg.data)
        except ValueError:  # not an event of ours (pydantic's ValidationError is a ValueError)
            return
        if isinstance(event, JobEvent):
            self._waiters.wake(event.job_id)
            for listener in self._listeners:
                listener(event)
        elif isinstance(event, DatasetWorkDone):
            self._waiters.wake(event.run_id)


def bus_for(settings: Settings, sns: Any = None) -> Bus:
    """The deployment's bus: NATS when configured, else SNS (``sns``: a client for the topic)."""
    if settings.nats_url:
        return NatsBus(settings)
    if settings.events_topic_arn and sns is not None:
        from events.aws import SnsPublisher

        return PollingBus(SnsPublisher(sns, settings.events_topic_arn).publish)
    return PollingBus()
