"""Waiting on dataset work (tagging requests) for Kashf's ``wait=true``.

Like ``job_events``: the API subscribes once to ``shenava.dataset.work.done`` (plain NATS) and wakes
the requests waiting on that run (``waiters.Waiters``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from events.models import DatasetWorkDone, parse_event
from events.subjects import DATASET_DONE
from functions.api.waiters import Waiters


class NatsDatasetEvents:
    def __init__(self) -> None:
        self._waiters = Waiters()
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
            self._waiters.wake(event.run_id)

    async def wait(self, run_id: str, finished: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
        """Wait until ``finished()`` holds (checked on each event of the run); False on timeout."""
        return await self._waiters.wait(run_id, finished, timeout_s)
