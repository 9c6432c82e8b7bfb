"""A worker serves /healthz and /metrics: the runner's counts per outcome, handle latencies and
consumer gauges, from a real worker (``functions.common.worker.serve``) on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.bus import connect, publish_event
from events.models import JobQueued
from events.runner import FunctionSpec
from functions.common.bootstrap import Deps
from functions.common.worker import serve
from tests.fakes import memory_deps
from tests.integration.pipeline import free_port
from tests.integration.test_runner import SPEC, Recorder, nats_server, nats_url  # noqa: F401 (fixtures)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def deps(tmp_path: Path, nats_url: str) -> AsyncIterator[Deps]:  # noqa: F811
    async with memory_deps(tmp_path, nats_url=nats_url, max_deliver=1, metrics_port=free_port()) as built:
        yield built


async def samples(http: httpx.AsyncClient, port: int) -> Samples:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def healthy(http: httpx.AsyncClient, port: int) -> None:
    """The readiness probe a supervisor uses: poll until /healthz says ok."""
    while True:
        try:
            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)


async def test_a_worker_reports_health_outcomes_latency_and_pending(deps: Deps) -> None:
    recorder = Recorder("poison")  # fails every event: one handled outcome would need another behaviour
    spec = FunctionSpec(SPEC, recorder.handle, recorder.on_failure)
    port, stop = deps.settings.metrics_port, asyncio.Event()
    fields: dict[str, Any] = {
        "state": deps.state,
        "media": deps.media,
        "http": deps.http,
        "secrets": deps.secrets,
        "bus": deps.bus,
    }
    worker = asyncio.create_task(serve(spec, deps.settings, stop=stop, **fields))
    async with httpx.AsyncClient(timeout=5) as http:
        await asyncio.wait_for(healthy(http, port), 20)
        body = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
        assert body == {"status": "ok", "function": "probe", "bus": "connected"}
        before = await samples(http, port)

        nc, js = await connect(deps.settings)
        await publish_event(js, JobQueued.for_job("t1", "job-obs"))
        await asyncio.wait_for(recorder.done.wait(), 20)
        await nc.close()
        after = await samples(http, port)
        stop.set()
        await asyncio.wait_for(worker, 10)
        with pytest.raises(httpx.TransportError):  # the server went with the worker
            await http.get(f"http://127.0.0.1:{port}/healthz")

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("shenava_events_total", function="probe", outcome="failed") == 1
    assert delta("shenava_events_total", function="probe", outcome="handled") == 0
    assert delta("shenava_event_handle_seconds_count", function="probe") == 1
    assert ("shenava_consumer_pending", (("consumer", "probe"),)) in after
