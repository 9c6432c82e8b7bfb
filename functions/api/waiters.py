"""Requests in the API process waiting for something the functions announce on the bus.

A waiter registers under a key (a job id, a dataset run id) and then checks the document it waits
on, so an event published before it registered is not missed; each event for the key wakes it to
check again. Nothing here outlives the requests that wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from events.models import Event, parse_event


class Waiters:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def wake(self, key: str) -> None:
        for waiter in self._waiters.get(key, ()):
            waiter.set()

    async def wait(self, key: str, finished: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
        """Wait until ``finished()`` holds, checking it now and after each wake; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        changed = asyncio.Event()
        self._waiters[key].add(changed)
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
            self._waiters[key].discard(changed)
            if not self._waiters[key]:
                del self._waiters[key]


class BusWaiters(Waiters):
    """Waiters woken by the events of one subject (plain NATS, no consumer: a waiting request
    only cares about events published while it waits); ``key_of`` names who an event wakes."""

    def __init__(self, subject: str, key_of: Callable[[Event], str | None]) -> None:
        super().__init__()
        self._subject = subject
        self._key_of = key_of
        self._subscription: Subscription | None = None

    async def start(self, nc: NATS) -> None:
        self._subscription = await nc.subscribe(self._subject, cb=self._on_message)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        try:
            key = self._key_of(parse_event(msg.data))
        except ValidationError:
            return
        if key is not None:
            self.wake(key)
