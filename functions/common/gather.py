"""Many requests to a store at once, but not all of them: ``gather_limited``.

Reading a listing's documents one after another costs a round trip each; starting thousands at
once opens as many connections. Every place that reads or removes documents by the dozen (index
shards, jobs, delivery-log entries) goes through this, ``AT_ONCE`` in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")

AT_ONCE = 16  # requests to the state store in flight at once


async def gather_limited(awaitables: Iterable[Awaitable[T]], limit: int = AT_ONCE) -> list[T]:
    """Each awaitable's result, in order, at most ``limit`` of them running at once (a coroutine
    does not start until it has its turn)."""
    gate = asyncio.Semaphore(limit)

    async def turn(awaitable: Awaitable[T]) -> T:
        async with gate:
            return await awaitable

    return list(await asyncio.gather(*(turn(a) for a in awaitables)))
