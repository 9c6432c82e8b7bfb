"""Waiting on dataset work (tagging requests) for Kashf's ``wait=true``.

Like ``job_events``: the API subscribes once to ``shenava.dataset.work.done`` (plain NATS) and wakes
the requests waiting on that run; a waiter registers, then re-reads the document it waits on, so
an event published before it registered is not missed.
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

from events.models import DatasetWorkDone, parse_event
from events.subjects import DATASET_DONE


class NatsDatasetEvents:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._subscription: Subscription | None = None

    async def start(self, nc: NATS) -> None:
        self._subscription = await nc.subscribe(DATASET_DONE, cb=self._on_message)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = parse_event(msg.data)
        except ValidationError:
            return
        if isinstance(event, DatasetWorkDone):
            for waiter in self._waiters.get(event.run_id, ()):
                waiter.set()

    async def wait(self, run_id: str, finished: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
        """Wait until ``finished()`` holds (checked on each event of the run); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        changed = asyncio.Event()
        self._waiters[run_id].add(changed)
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
            self._waiters[run_id].discard(changed)
            if not self._waiters[run_id]:
                del self._waiters[run_id]
