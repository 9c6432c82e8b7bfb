"""The Kashf API over in-memory stores, for its unit tests: ``kashf_app`` and its stand-ins.

The train function is played by ``TrainStandIn`` behind a ``MemoryBus``: when a request waits, it
finishes the run the way the worker would (a tagging request with scored tags, or failed), so the
tests check what the router and the services make of it. Remote media are served by a real HTTP
server on loopback (``REMOTE_FILES``, and the files a test writes into ``Kashf.remote_dir``, at
``{remote}/files/<name>``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from cryptography.fernet import Fernet
from PIL import Image

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.dataset_runs import InputTags, RunDocuments, RunState, TaggingRequest, TagScore
from functions.common.datasets import Dataset, DatasetRepository, DatasetState
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from tests.fakes import DirMediaStore, MemoryBus

TENANT = "acme"


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, "PNG")
    return buffer.getvalue()


Scorer = Callable[[TaggingRequest], tuple[InputTags, ...]]


@dataclass
class TrainStandIn:
    """Finishes what a waiting request waits for, as the train function would."""

    state: MemoryStateStore
    scorer: Scorer | None = None  # tagging: the results; None leaves the request processing
    failure: str = ""  # tagging: fail with this reason instead
    waited: list[str] = field(default_factory=list)

    async def finish(self, run_id: str) -> None:
        self.waited.append(run_id)
        documents = RunDocuments(self.state)
        for key in await self.state.list_keys(f"tenants/{TENANT}/datasets/"):
            if key.endswith(f"/requests/{run_id}.json") and (self.scorer or self.failure):
                await documents.finish_tagging(TENANT, key.split("/")[3], run_id, self._answer)

    def _answer(self, request: TaggingRequest) -> TaggingRequest:
        if self.failure:
            return request.model_copy(update={"state": RunState.FAILED, "failure_reason": self.failure})
        assert self.scorer is not None
        return request.model_copy(update={"state": RunState.DONE, "results": self.scorer(request)})


@dataclass
class Kashf:
    client: httpx.AsyncClient
    state: MemoryStateStore
    media: DirMediaStore
    bus: MemoryBus
    train: TrainStandIn
    key: str
    other: str
    remote: str
    remote_dir: Path

    async def call(
        self, path: str, body: Any = None, expect: int = 200, key: str | None = None, **kw: Any
    ) -> Any:
        headers = {"Authorization": f"Token {key or self.key}"}
        if body is None and not kw:
            response = await self.client.get(path, headers=headers)
        else:
            response = await self.client.post(path, json=body, headers=headers, **kw)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    async def dataset(self, slug: str, kind: str = "text", tags: tuple[str, ...] = ()) -> dict[str, int]:
        await self.call("/api/create_dataset/", {"slug": slug, "type": kind}, expect=201)
        made = {}
        for title in tags:
            tag = await self.call("/api/create_tag/", {"dataset": slug, "title": title}, expect=201)
            made[title] = tag["tag_id"]
        return made

    async def trained(self, slug: str) -> None:
        """The dataset as a finished training run leaves it (tagging needs a version)."""

        def done(dataset: Dataset) -> Dataset:
            dataset.version, dataset.run_id, dataset.state = "run-1", "run-1", DatasetState.TRAINED
            return dataset

        await DatasetRepository(self.state).change(TENANT, slug, done)


REMOTE_FILES = {
    "/red.png": (png(), "image/png"),
    "/notes.txt": (b"not an image", "text/plain"),
    "/rows.csv": ("content,tag,positive\nخوب,رضایت,true\n".encode(), "text/csv"),
}


def remote_app(folder: Path) -> web.Application:
    async def serve(request: web.Request) -> web.Response:
        body, content_type = REMOTE_FILES[request.path]
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    for path in REMOTE_FILES:
        app.router.add_get(path, serve)
    app.router.add_static("/files/", folder)
    return app


def scores(*found: tuple[int, float]) -> tuple[TagScore, ...]:
    return tuple(TagScore(tag_id=tag_id, probability=p) for tag_id, p in found)


@asynccontextmanager
async def kashf_app(tmp_path: Path) -> AsyncIterator[Kashf]:
    """The API over in-memory stores, a ``TrainStandIn`` behind its bus, and a loopback web host."""
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    runner = web.AppRunner(remote_app(remote_dir))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    settings = Settings(
        data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), outbound_allowlist="127.0.0.0/8"
    )
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    train = TrainStandIn(state)
    bus = MemoryBus(on_wait=train.finish)
    app = create_app(settings, state=state, media=media, bus=bus)
    key, other = await create_key(state, TENANT), await create_key(state, "globex")
    remote = f"http://127.0.0.1:{runner.addresses[0][1]}"
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://shenava") as client,
        ):
            yield Kashf(client, state, media, bus, train, key, other, remote, remote_dir)
    finally:
        await runner.cleanup()
