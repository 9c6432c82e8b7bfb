"""Shenava on a real three-node JetStream cluster (``SHENAVA_STREAM_REPLICAS=3``, every member in
``SHENAVA_NATS_URL``): the whole pipeline with two transcribe workers, the node leading the stream
``kill -9``ed while jobs are being submitted, and nothing lost or repeated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infra.bridge import BridgeServer
from infra.ports import free_port, free_port_settings
from infra.probes import http_ok
from infra.reconciler import serve as reconcile
from infra.stack import EmbeddedStack
from tests.integration.makeup import completed_on_stream
from tests.integration.nats_cluster import NatsCluster
from tests.integration.pipeline import Pipeline, TranscribeWorker, start_pipeline
from tests.integration.watson_client import SECRET, Completions, Watson
from tests.receiver import Receiver
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

JOBS = 12
KILL_AFTER = 4  # submissions before the stream's leader dies


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    started = NatsCluster(tmp_path / "nats")
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def on_cluster(cluster: NatsCluster, tmp_path: Path) -> AsyncIterator[tuple[Pipeline, list[int]]]:
    """SeaweedFS and the bridge, the functions, the API and the reconciler, all on the cluster;
    two transcribe workers (one from the pipeline, one more), each with its /healthz and
    /metrics port."""
    base = free_port_settings(tmp_path / "stack", nats_url=cluster.url, stream_replicas=3)
    stack = EmbeddedStack(base, nats=False)
    settings = await stack.start()
    bridge = BridgeServer(settings, stack.secrets.bridge_token)
    await bridge.start()
    ports = [free_port(), free_port()]
    tuned = settings.model_copy(update={
        "api_port": free_port(), "metrics_port": ports[0], "outbound_allowlist": "127.0.0.0/8",
        "ack_wait_s": 6.0, "retry_backoff_s": [0.5, 1.0, 2.0], "notify_backoff_s": [0.5, 1.0, 2.0, 4.0],
    })  # fmt: skip
    pipeline, close = await start_pipeline(tuned, tmp_path)
    second = TranscribeWorker(
        tuned.model_copy(update={"metrics_port": ports[1]}), tmp_path / "transcribe-2.log"
    )
    second.start()
    stop = asyncio.Event()
    recon = tuned.model_copy(
        update={"metrics_port": 0, "reconcile_after_s": 5.0, "reconcile_interval_s": 2.0}
    )
    reconciler = asyncio.create_task(reconcile(recon, stop))
    try:
        yield pipeline, ports
    finally:
        stop.set()
        await reconciler
        second.stop()
        await close()
        await bridge.stop()
        await stack.stop()


async def transcribed(http: httpx.AsyncClient, port: int) -> float:
    """Events the transcribe worker on ``port`` handled, from its /metrics."""
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    prefix = 'shenava_events_total{function="transcribe",outcome="handled"} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


async def test_the_stream_leader_dies_mid_load_and_nothing_is_lost(
    cluster: NatsCluster, on_cluster: tuple[Pipeline, list[int]], tmp_path: Path
) -> None:
    pipeline, ports = on_cluster
    async with httpx.AsyncClient(timeout=5) as http:
        for port in ports:  # both transcribe workers loaded their model and listen
            while not await http_ok(f"http://127.0.0.1:{port}/healthz"):
                await asyncio.sleep(0.5)
    audio = espeak_wav("Please call me back tomorrow morning.", "en-us", tmp_path / "s.wav").read_bytes()
    receiver = Receiver(secret=SECRET)
    await receiver.start()
    try:
        watson, completions = Watson(pipeline.api_url, pipeline.api_key, receiver), Completions(receiver)
        await watson.register()
        leader = await cluster.stream_leader(pipeline.settings.stream_name)
        job_ids = [await watson.submit(audio) for _ in range(KILL_AFTER)]
        cluster.kill(leader)
        job_ids += [await watson.submit(audio) for _ in range(JOBS - KILL_AFTER)]
        await completions.wait_for(set(job_ids), timeout_s=240)

        new_leader = await cluster.stream_leader(pipeline.settings.stream_name)
        assert new_leader.name != leader.name
        completions.settle()
        assert {job: completions.by_job[job] for job in job_ids} == dict.fromkeys(job_ids, 1)
        on_stream = await completed_on_stream(pipeline.settings)
        assert {job: on_stream.get(job, 0) for job in job_ids} == dict.fromkeys(job_ids, 1)
        assert set((await watson.statuses(job_ids)).values()) == {"completed"}
        async with httpx.AsyncClient(timeout=5) as http:
            handled = [await transcribed(http, port) for port in ports]
        assert all(count > 0 for count in handled), handled  # both workers took jobs
    finally:
        await receiver.stop()
