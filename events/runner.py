"""The NATS runner: one durable pull consumer, one message at a time, explicit acks.

For each message: validate it into its event model, call the function's ``handle`` while a
heartbeat (``in_progress``) keeps the delivery ours, publish the returned events, then ack.
- ``RetryableError`` or an unexpected exception: ``nak`` with the backoff for this attempt.
- ``PoisonError``: the function's ``on_failure`` ends the job FAILED, then ``term``.
- The last allowed delivery failing, or MaxDeliver exhausted while a worker was dead (the
  server's advisory): ``on_failure`` too. Nothing stays stuck.
A message that is not a valid event is logged and terminated. ``burst=True`` stops the worker
once the consumer has nothing pending, so tests and batch jobs end by themselves.

A function with several consumers in preference order (transcribe: started jobs, then queue
bands high to low) cannot wait on all of them at once, so it listens for a *doorbell*: a plain
NATS subscription to its consumers' subjects rings whenever an event for it is published, and
each ring (or ``FETCH_WAIT_S`` without one, for redeliveries) starts a quick round over the
consumers, most preferred first. Waiting on the last consumer instead held a newly queued job
for up to a second before the worker saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from events.bus import consumer_config, publish_event
from events.config import HasStreamSettings
from events.metrics import observe, set_pending
from events.models import Event, parse_event
from events.settle import Ack, Fail, Retry, log_context, log_outcome, settle
from events.subjects import ConsumerSpec

log = logging.getLogger("shenava.runner")

D = TypeVar("D", bound=HasStreamSettings)  # what a function's handler gets: its Deps
Handler = Callable[[Event, D], Awaitable[list[Event]]]
FailureHandler = Callable[[Event, D, str], Awaitable[list[Event]]]

ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
FETCH_WAIT_S = 1.0
ROUND_WAIT_S = 0.02  # each consumer of a round, when the function has several
BUS_RETRY_S = 0.5
PENDING_REFRESH_S = 5.0  # how often the pending gauges are read from the consumers


async def no_failure_action(event: Event, deps: object, reason: str) -> list[Event]:
    return []


@dataclass(frozen=True)
class FunctionSpec(Generic[D]):
    consumer: ConsumerSpec
    handle: Handler[D]
    on_failure: FailureHandler[D] = no_failure_action
    backoff_s: Sequence[float] | None = None  # None: settings.retry_backoff_s
    max_deliver: int | None = None  # None: settings.max_deliver
    order: tuple[ConsumerSpec, ...] = ()  # consumers read in preference order; () = just ``consumer``

    @property
    def consumers(self) -> tuple[ConsumerSpec, ...]:
        return self.order or (self.consumer,)


class Runner(Generic[D]):
    def __init__(self, spec: FunctionSpec[D], deps: D, nc: NATS, js: JetStreamContext) -> None:
        self.spec = spec
        self.deps = deps
        self.nc = nc
        self.js = js
        settings = deps.settings
        self.backoff = list(spec.backoff_s or settings.retry_backoff_s)
        self.max_deliver = spec.max_deliver or settings.max_deliver
        self.heartbeat_s = max(settings.ack_wait_s / 3, 0.2)
        self.running = False  # the loop is up (a worker's /healthz reads it)
        self._pending_read_at = 0.0

    async def run(self, stop: asyncio.Event | None = None, burst: bool = False) -> None:
        stop = stop or asyncio.Event()
        subs = [await self._subscribe(consumer) for consumer in self.spec.consumers]
        doorbell = asyncio.Event()
        listening = await self._listen(doorbell, ordered=len(subs) > 1)
        self.running = True
        try:
            while not stop.is_set():
                if await self._step(subs, doorbell, burst):
                    return
        finally:
            self.running = False
            for subscription in [*listening, *subs]:
                await subscription.unsubscribe()

    async def _listen(self, doorbell: asyncio.Event, ordered: bool) -> list[Any]:
        """The advisories of the function's consumers, and the doorbell when it has several."""
        stream = self.deps.settings.stream_name
        subscriptions = [
            await self.nc.subscribe(ADVISORY.format(stream=stream, consumer=c.durable), cb=self._on_advisory)
            for c in self.spec.consumers
        ]
        if ordered:
            subjects = dict.fromkeys(s for c in self.spec.consumers for s in c.subjects)
            subscriptions += [await self.nc.subscribe(s, cb=_ring(doorbell)) for s in subjects]
        return subscriptions

    async def _step(
        self, subs: list[JetStreamContext.PullSubscription], doorbell: asyncio.Event, burst: bool
    ) -> bool:
        """One message handled, or a wait; True when a burst worker has nothing left."""
        try:
            await self._report_pending()
            msg = await (self._next_of_many(subs, doorbell) if len(subs) > 1 else self._next(subs[0]))
            if msg is not None:
                await self.process(msg)
            elif burst and await self._drained():
                return True
        except (NatsError, OSError) as exc:  # the bus is away: wait for the reconnect
            log.warning("the event bus is unavailable, waiting: %r", exc)
            await asyncio.sleep(BUS_RETRY_S)
        return False

    async def _next(self, sub: JetStreamContext.PullSubscription, wait: float = FETCH_WAIT_S) -> Msg | None:
        try:
            msgs = await sub.fetch(1, timeout=wait)
        except (NatsTimeout, TimeoutError):
            return None
        return msgs[0] if msgs else None

    async def _next_of_many(
        self, subs: list[JetStreamContext.PullSubscription], doorbell: asyncio.Event
    ) -> Msg | None:
        """One message from the most preferred consumer that has one; with none, wait for the
        doorbell (an event published for this function) or ``FETCH_WAIT_S``."""
        doorbell.clear()  # before the round: anything published from now on rings again
        for sub in subs:
            if (msg := await self._next(sub, ROUND_WAIT_S)) is not None:
                return msg
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(doorbell.wait(), FETCH_WAIT_S)
        return None

    async def _subscribe(self, consumer: ConsumerSpec) -> JetStreamContext.PullSubscription:
        stream = self.deps.settings.stream_name
        config = consumer_config(consumer, self.deps.settings)
        config.max_deliver = self.max_deliver
        await self.js.add_consumer(stream, config)
        return await self.js.pull_subscribe_bind(consumer.durable, stream=stream)

    async def _report_pending(self) -> None:
        """The pending gauges, read from the server at most every ``PENDING_REFRESH_S``."""
        now = time.monotonic()
        if now - self._pending_read_at < PENDING_REFRESH_S:
            return
        self._pending_read_at = now
        for consumer in self.spec.consumers:
            info = await self.js.consumer_info(self.deps.settings.stream_name, consumer.durable)
            set_pending(consumer.durable, info.num_pending, info.num_ack_pending)

    async def _drained(self) -> bool:
        for consumer in self.spec.consumers:
            info = await self.js.consumer_info(self.deps.settings.stream_name, consumer.durable)
            if info.num_pending or info.num_ack_pending:
                return False
        return True

    async def process(self, msg: Msg) -> None:
        try:
            event = parse_event(msg.data)
        except ValidationError as exc:
            log.error("dropping a message that is not a valid event: %s", exc.errors()[:1])
            await msg.term()
            return
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self._handle(msg, event)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _handle(self, msg: Msg, event: Event) -> None:
        attempt = msg.metadata.num_delivered
        error: Exception | None = None
        started = time.perf_counter()
        try:
            produced = await self.spec.handle(event, self.deps)
        except Exception as exc:
            error, produced = exc, []
        outcome = settle(error, attempt, self.max_deliver, self.backoff)
        observe(self.spec.consumer.durable, outcome, time.perf_counter() - started)
        log_outcome(log, outcome, error, log_context(self.spec.consumer.durable, event, attempt))
        if isinstance(outcome, Ack):
            await self._publish(produced)
            await msg.ack()
        elif isinstance(outcome, Retry):
            await msg.nak(delay=outcome.delay_s)
        elif isinstance(outcome, Fail):
            await self._fail(event, outcome.reason)
            await msg.term()

    async def _fail(self, event: Event, reason: str) -> None:
        await self._publish(await self.spec.on_failure(event, self.deps, reason))

    async def _publish(self, produced: list[Event]) -> None:
        for new_event in produced:
            await publish_event(self.js, new_event)

    async def _heartbeat(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _on_advisory(self, advisory: Msg) -> None:
        """A message ran out of deliveries while no worker could report it: fail its job."""
        try:
            seq = int(json.loads(advisory.data)["stream_seq"])
            stored = await self.js.get_msg(self.deps.settings.stream_name, seq)
            event = parse_event(stored.data or b"")
            await self._fail(event, "processing was interrupted too many times")
        except (NotFoundError, ValidationError, KeyError, ValueError) as exc:
            log.error("cannot act on a max-deliveries advisory: %r", exc)
        except Exception:
            log.exception("max-deliveries advisory handling failed")


def _ring(doorbell: asyncio.Event) -> Callable[[Msg], Awaitable[None]]:
    async def ring(_: Msg) -> None:
        doorbell.set()

    return ring
