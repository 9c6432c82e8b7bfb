"""The NATS runner against a real nats-server: acks, retries, poison, heartbeats, exhaustion."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig

from events.bus import connect, publish_event
from events.errors import PoisonError, RetryableError
from events.models import Event, JobFailed, JobQueued
from events.runner import FunctionSpec, Runner
from events.subjects import ConsumerSpec
from functions.common.bootstrap import Deps
from tests.fakes import memory_deps
from tests.integration.pipeline import free_port

SPEC = ConsumerSpec("probe", ("shenava.job.queued",))


class NatsServer:
    """A real nats-server with JetStream in a temporary store, that a test can restart."""

    def __init__(self, store: Path) -> None:
        self.store, self.port = store, free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
        command = [binary, "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:  # readiness: the port accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def deps(tmp_path: Path, nats_url: str) -> AsyncIterator[Deps]:
    async with memory_deps(
        tmp_path, nats_url=nats_url, ack_wait_s=1.0, max_deliver=3, retry_backoff_s=[0.1]
    ) as built:
        yield built


class Recorder:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.calls: list[int] = []
        self.failures: list[str] = []
        self.done = asyncio.Event()

    async def handle(self, event: Event, deps: Deps) -> list[Event]:
        self.calls.append(len(self.calls) + 1)
        if self.behaviour == "poison":
            raise PoisonError("the media cannot be read")
        if self.behaviour == "transient":
            raise RetryableError("storage unavailable", delay_s=0.05)
        if self.behaviour == "slow":
            await asyncio.sleep(3.5)  # longer than ack_wait: only heartbeats keep it ours
        self.done.set()
        assert isinstance(event, JobQueued)
        return [JobFailed.for_job(event.tenant, event.job_id, reason="from handler")]

    async def on_failure(self, event: Event, deps: Deps, reason: str) -> list[Event]:
        self.failures.append(reason)
        self.done.set()
        return []


async def run_until(recorder: Recorder, deps: Deps, event: Event, timeout: float = 20) -> None:
    nc, js = await connect(deps.settings)
    runner = Runner(FunctionSpec(SPEC, recorder.handle, recorder.on_failure), deps, nc, js)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop=stop))
    await asyncio.sleep(0)  # let the consumer be created before publishing
    await publish_event(js, event)
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout)
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        await nc.close()


def queued() -> JobQueued:
    return JobQueued.for_job("t1", "job-1")


async def test_a_handled_event_is_acked_and_its_events_published(deps: Deps) -> None:
    recorder = Recorder("ok")
    nc = await nats.connect(deps.settings.nats_url)
    sub = await nc.subscribe("shenava.job.failed")
    await run_until(recorder, deps, queued())
    assert recorder.calls == [1]
    event = JobFailed.model_validate_json((await sub.next_msg(timeout=5)).data)
    assert event.reason == "from handler" and event.id == "job-1.job.failed"
    await nc.close()


async def test_poison_is_terminated_after_one_try_and_reported(deps: Deps) -> None:
    recorder = Recorder("poison")
    await run_until(recorder, deps, queued())
    assert recorder.calls == [1]
    assert recorder.failures == ["the media cannot be read"]


async def test_transient_errors_are_retried_then_reported_when_attempts_run_out(deps: Deps) -> None:
    recorder = Recorder("transient")
    await run_until(recorder, deps, queued())
    assert recorder.calls == [1, 2, 3]
    assert recorder.failures == ["storage unavailable (gave up after 3 attempts)"]


async def test_heartbeats_keep_long_work_from_being_redelivered(deps: Deps) -> None:
    recorder = Recorder("slow")
    await run_until(recorder, deps, queued())
    nc, js = await connect(deps.settings)
    info = await js.consumer_info(deps.settings.stream_name, SPEC.durable)
    await nc.close()
    assert recorder.calls == [1] and info.num_redelivered == 0


async def test_a_message_exhausted_by_dead_workers_fails_its_job(deps: Deps) -> None:
    """Deliveries that are never acknowledged (a worker that keeps dying) raise the advisory."""
    nc, js = await connect(deps.settings)
    config = ConsumerConfig(
        durable_name=SPEC.durable, filter_subjects=list(SPEC.subjects), ack_wait=0.5, max_deliver=2
    )
    await js.add_consumer(deps.settings.stream_name, config)
    dying = await js.pull_subscribe_bind(SPEC.durable, stream=deps.settings.stream_name)
    recorder = Recorder("ok")
    watcher = Runner(FunctionSpec(SPEC, recorder.handle, recorder.on_failure), deps, nc, js)
    advisory = await nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{deps.settings.stream_name}.{SPEC.durable}",
        cb=watcher._on_advisory,
    )
    await publish_event(js, queued())
    for _ in range(2):
        [msg] = await dying.fetch(1, timeout=5)  # taken, never acknowledged
        assert msg.metadata.num_delivered == _ + 1
    # the server notices the exhaustion when a worker next asks for work
    with contextlib.suppress(nats.errors.TimeoutError):
        await dying.fetch(1, timeout=3)
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert recorder.failures == ["processing was interrupted too many times"]
    await advisory.unsubscribe()
    await nc.close()


async def test_preferred_consumers_are_read_first(deps: Deps) -> None:
    """TRD priority: higher bands first whatever the arrival order, then arrival order."""
    order = (
        ConsumerSpec("p-high", ("shenava.job.queued.high",)),
        ConsumerSpec("p-normal", ("shenava.job.queued",)),
        ConsumerSpec("p-low", ("shenava.job.queued.low",)),
    )
    seen: list[str] = []

    async def record(event: Event, deps: Deps) -> list[Event]:
        assert isinstance(event, JobQueued)
        seen.append(event.job_id)
        return []

    nc, js = await connect(deps.settings)
    for job_id, priority in [
        ("low-1", 10),
        ("normal-1", 50),
        ("high-1", 90),
        ("normal-2", 50),
        ("high-2", 70),
    ]:
        await publish_event(js, JobQueued.for_job("t1", job_id, priority=priority))
    runner = Runner(FunctionSpec(order[1], record, order=order), deps, nc, js)
    await asyncio.wait_for(runner.run(burst=True), 30)
    await nc.close()
    assert seen == ["high-1", "high-2", "normal-1", "normal-2", "low-1"]


async def test_a_worker_outlives_a_restart_of_the_bus(deps: Deps, nats_server: NatsServer) -> None:
    recorder = Recorder("ok")
    nc, js = await connect(deps.settings)
    stop = asyncio.Event()
    task = asyncio.create_task(Runner(FunctionSpec(SPEC, recorder.handle), deps, nc, js).run(stop=stop))
    await consumer_exists(js, deps.settings.stream_name, SPEC.durable)
    nats_server.stop()
    await asyncio.sleep(3)  # an outage, not a synchronisation: the worker asks for work while it lasts
    nats_server.start()  # same port, same store: the durable consumer is still there
    publisher, publisher_js = await connect(deps.settings)
    await publish_event(publisher_js, queued())
    await asyncio.wait_for(recorder.done.wait(), 30)
    stop.set()
    await asyncio.wait_for(task, 10)
    await publisher.close()
    await nc.close()
    assert recorder.calls == [1] and not task.exception()


async def consumer_exists(js: Any, stream: str, durable: str, timeout: float = 10) -> None:
    async def poll() -> None:
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.consumer_info(stream, durable)
                return
            await asyncio.sleep(0.05)  # polling the server's state, with a deadline

    await asyncio.wait_for(poll(), timeout)
