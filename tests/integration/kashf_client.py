"""A small Kashf client for the end-to-end tests: calls the API as a user would, waits on events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from events.models import DatasetWorkDone, parse_event
from events.subjects import DATASET_DONE
from tests.integration.pipeline import Pipeline

WORK_TIMEOUT_S = 600.0


class Kashf:
    def __init__(self, pipeline: Pipeline, client: httpx.AsyncClient, key: str | None = None) -> None:
        self.pipeline = pipeline
        self.client = client
        self.headers = {"Authorization": f"Token {key or pipeline.api_key}"}

    async def call(self, path: str, body: Any = None, expect: int = 200, **kwargs: Any) -> Any:
        if body is None and "files" not in kwargs and "data" not in kwargs:
            response = await self.client.get(path, headers=self.headers)
        elif body is not None:
            response = await self.client.post(path, json=body, headers=self.headers, **kwargs)
        else:
            response = await self.client.post(path, headers=self.headers, **kwargs)
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response.json()

    async def dataset(self, kind: str, prefix: str = "ds") -> str:
        slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
        await self.call("/api/create_dataset/", {"slug": slug, "title": slug, "type": kind}, expect=201)
        return slug

    async def tags(self, slug: str, titles: list[str]) -> dict[str, int]:
        made = {}
        for title in titles:
            answer = await self.call("/api/create_tag/", {"dataset": slug, "title": title}, expect=201)
            made[title] = answer["tag_id"]
        return made

    async def train(self, slug: str) -> dict[str, Any]:
        """Ask for training, wait on the train function's event, answer ``dataset_info``."""
        async with self.work_done(slug) as finished:
            answer = await self.call("/api/train_dataset/", {"dataset": slug})
            assert answer == {"dataset": slug, "state": "waiting"}
            event = await asyncio.wait_for(finished, WORK_TIMEOUT_S)
        assert event.failure == "", event.failure
        info = await self.call("/dataset_info/", {"dataset": slug, "tags": True})
        assert info["state"] == "trained", info
        return dict(info)

    @asynccontextmanager
    async def work_done(self, slug: str) -> AsyncIterator[asyncio.Future[DatasetWorkDone]]:
        """A future for the next ``dataset.work.done`` of ``slug`` (subscribed before the request)."""
        finished: asyncio.Future[DatasetWorkDone] = asyncio.get_running_loop().create_future()

        async def on_message(msg: Any) -> None:
            event = parse_event(msg.data)
            if isinstance(event, DatasetWorkDone) and event.dataset == slug and not finished.done():
                finished.set_result(event)

        subscription = await self.pipeline.nc.subscribe(DATASET_DONE, cb=on_message)
        try:
            yield finished
        finally:
            await subscription.unsubscribe()


@asynccontextmanager
async def loopback_host(folder: Path) -> AsyncIterator[str]:
    """A web host on loopback serving ``folder`` under ``/files/`` (the remote images and videos)."""
    app = web.Application()
    app.router.add_static("/files/", folder)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
