"""The whole pipeline for end-to-end tests: real stack, real workers, real API, real HTTP.

ingest and notify run in this process (their runners are the production ones); transcribe runs
as a real ``python -m functions.transcribe`` child process so a test can kill it mid-job.
``JobWatch`` follows the job events on the bus, so tests wait on events, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import uvicorn
from nats.aio.client import Client as NATS

from events.bus import nats_servers
from events.models import Event, parse_event
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap
from functions.common.job_index import id_time
from functions.common.settings import Settings
from functions.common.worker import serve
from functions.ingest.handler import SPEC as INGEST_SPEC
from functions.notify.handler import notify_spec
from functions.train.handler import SPEC as TRAIN_SPEC
from tests.fakes import until_listening

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    for name, value in settings.model_dump(mode="json").items():
        env[f"SHENAVA_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def job_created_at(job_id: str) -> float:
    """When a job was made (epoch seconds), from its UUIDv7 id."""
    return id_time(job_id).timestamp()


@dataclass
class JobWatch:
    """Every job event seen on the bus, by job id."""

    seen: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, msg: Any) -> None:
        event = parse_event(msg.data)
        async with self.changed:
            self.seen[getattr(event, "job_id", "")].append(event)
            self.changed.notify_all()

    async def wait(self, job_id: str, *types: str, timeout: float = 120.0) -> Event:
        async def arrived() -> Event:
            async with self.changed:
                while True:
                    for event in self.seen.get(job_id, []):
                        if event.type in types:
                            return event
                    await self.changed.wait()

        return await asyncio.wait_for(arrived(), timeout)

    async def wait_new(self, kind: str, created_after: float, timeout: float = 120.0) -> Event:
        """The first ``kind`` event of a job made after ``created_after`` (epoch seconds; job ids
        are UUIDv7s, which carry when they were made): for jobs a test did not name itself."""

        async def arrived() -> Event:
            async with self.changed:
                while True:
                    for job_id, events in self.seen.items():
                        found = [e for e in events if e.type == kind]
                        if job_created_at(job_id) >= created_after and found:
                            return found[0]
                    await self.changed.wait()

        return await asyncio.wait_for(arrived(), timeout)

    async def changed_any(self, timeout: float) -> None:
        """Wait for the next job event on the bus, or ``timeout`` (then the caller re-reads state)."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout)

    def types(self, job_id: str) -> list[str]:
        return [e.type for e in self.seen.get(job_id, [])]


class TranscribeWorker:
    """``python -m functions.transcribe`` (or its live lane, ``functions.transcribe.live``) as a
    child process."""

    def __init__(self, settings: Settings, log: Path, module: str = "functions.transcribe") -> None:
        self.settings = settings
        self.log = log
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env=settings_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Pipeline:
    settings: Settings
    api_url: str
    api_key: str
    other_key: str
    watch: JobWatch
    transcriber: TranscribeWorker
    nc: NATS
    live: TranscribeWorker | None = None  # the live lane's worker (Harf's websocket)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    async def drained(self, durable: str, timeout: float = 60.0) -> None:
        """Wait until a function's consumer has nothing pending or unacknowledged."""
        js = self.nc.jetstream()

        async def empty() -> None:
            while True:
                info = await js.consumer_info(self.settings.stream_name, durable)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                await self.watch.changed_any(timeout=0.2)

        await asyncio.wait_for(empty(), timeout)


async def start_pipeline(settings: Settings, logs: Path) -> tuple[Pipeline, Any]:
    """Start everything; returns the pipeline and an async ``close`` function."""
    stop = asyncio.Event()
    local = settings.model_copy(update={"metrics_port": 0})  # only the transcribe worker takes settings'
    workers = [
        asyncio.create_task(serve(INGEST_SPEC, local, stop=stop)),
        asyncio.create_task(serve(notify_spec(settings.notify_backoff_s), local, stop=stop)),
        asyncio.create_task(serve(TRAIN_SPEC, local, stop=stop)),
    ]
    transcriber = TranscribeWorker(settings, logs / "transcribe.log")
    transcriber.start()
    live = TranscribeWorker(local, logs / "live.log", module="functions.transcribe.live")
    live.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning")
    )
    api = asyncio.create_task(server.serve())
    await until_listening(server, api)
    async with bootstrap(settings) as deps:
        key = await create_key(deps.state, "acme")
        other = await create_key(deps.state, "globex")
    watch = JobWatch()
    nc = await nats.connect(nats_servers(settings.nats_url))
    await nc.subscribe("shenava.job.>", cb=watch.on_message)
    pipeline = Pipeline(
        settings, f"http://127.0.0.1:{settings.api_port}", key, other, watch, transcriber, nc, live
    )

    async def close() -> None:
        await nc.close()
        server.should_exit = True
        stop.set()
        transcriber.stop()
        live.stop()
        await asyncio.gather(api, *workers, return_exceptions=True)

    return pipeline, close


@asynccontextmanager
async def embedded_pipeline(workdir: Path) -> AsyncIterator[Pipeline]:
    """A whole Shenava on its own embedded stack (nats-server, SeaweedFS, bridge), for benchmarks."""
    from infra.bridge import BridgeServer
    from infra.stack import EmbeddedStack, free_port_settings

    stack = EmbeddedStack(free_port_settings(workdir / "stack"))
    settings = await stack.start()
    bridge = BridgeServer(settings, stack.secrets.bridge_token)
    await bridge.start()
    try:
        pipeline, close = await start_pipeline(settings.model_copy(update={"api_port": free_port()}), workdir)
        try:
            yield pipeline
        finally:
            await close()
    finally:
        await bridge.stop()
        await stack.stop()
