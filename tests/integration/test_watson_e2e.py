"""The Watson asynchronous interface end to end on the real stack, as its users exercise it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jiwer
import pytest
from aiobotocore.session import get_session

from functions.common.bootstrap import bootstrap, s3_client_args
from tests.integration.pipeline import Pipeline
from tests.receiver import Receiver
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SPOKEN = (
    "The weather today is sunny with a light breeze. Please send the report to the finance team before noon."
)
WER_LIMIT = 0.25  # the int8 multilingual base model on espeak-ng English; measured 0.0-0.12
SECRET = "ThisIsMySecret"


def words(text: str) -> str:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).strip()


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav(SPOKEN, "en-us", tmp_path_factory.mktemp("audio") / "speech.wav")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def api(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=30) as c:
        yield c


async def register(api: httpx.AsyncClient, receiver: Receiver) -> httpx.Response:
    return await api.post(
        "/v1/register_callback", params={"callback_url": receiver.url, "user_secret": SECRET}
    )


async def submit(api: httpx.AsyncClient, audio: bytes, **params: str) -> str:
    response = await api.post(
        "/v1/recognitions", params=params, content=audio, headers={"Content-Type": "audio/wav"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "waiting"
    return str(response.json()["id"])


async def test_register_send_audio_get_signed_callbacks_and_the_transcript(
    pipeline: Pipeline, api: httpx.AsyncClient, receiver: Receiver, speech: Path
) -> None:
    created = await register(api, receiver)
    assert created.status_code == 201
    assert created.json() == {"status": "created", "url": receiver.url}
    [challenge] = receiver.challenges
    assert challenge["accept"] == "text/plain" and challenge["signature"]
    assert (await register(api, receiver)).status_code == 200  # already registered: no new GET
    assert len(receiver.challenges) == 1

    job_id = await submit(
        api,
        speech.read_bytes(),
        callback_url=receiver.url,
        user_token="job25",
        events="recognitions.started,recognitions.completed_with_results",
        timestamps="true",
        word_confidence="true",
    )
    started, completed = await receiver.next(180), await receiver.next(180)
    for note in (started, completed):
        assert receiver.signed_correctly(note), "X-Callback-Signature must verify with the secret"
    assert started.json == {"id": job_id, "event": "recognitions.started", "user_token": "job25"}
    assert completed.json["event"] == "recognitions.completed_with_results"
    heard = " ".join(r["alternatives"][0]["transcript"] for r in completed.json["results"][0]["results"])
    error = jiwer.wer(words(SPOKEN), words(heard))
    assert error < WER_LIMIT, f"WER {error:.2f}: {heard!r}"

    status = (await api.get(f"/v1/recognitions/{job_id}")).json()
    assert status["status"] == "completed" and status["user_token"] == "job25"
    result = status["results"][0]["results"][0]["alternatives"][0]
    assert 0 < result["confidence"] <= 1
    stamps = [t for r in status["results"][0]["results"] for t in r["alternatives"][0]["timestamps"]]
    assert stamps and all(start <= end for _, start, end in stamps)
    assert [s for _, s, _ in stamps] == sorted(s for _, s, _ in stamps)
    listed = (await api.get("/v1/recognitions")).json()["recognitions"]
    assert listed[0]["id"] == job_id and listed[0]["status"] == "completed"


async def test_a_file_dropped_into_the_bucket_becomes_a_job(pipeline: Pipeline, speech: Path) -> None:
    settings = pipeline.settings
    async with get_session().create_client("s3", **s3_client_args(settings)) as s3:
        await s3.put_object(
            Bucket=settings.media_bucket, Key="incoming/batch-7/call one.wav", Body=speech.read_bytes()
        )
    async with bootstrap(settings) as deps:

        async def dropped_job() -> str:
            while True:
                for job_id in await deps.jobs.list_ids(settings.drop_tenant):
                    job = await deps.jobs.find(settings.drop_tenant, job_id)
                    if job and job.filename == "call one.wav" and job.batch == "batch-7":
                        return job_id
                await pipeline.watch.changed_any(timeout=1.0)

        job_id = await asyncio.wait_for(dropped_job(), 60)
        await pipeline.watch.wait(job_id, "job.completed", timeout=180)
        job = await deps.jobs.get(settings.drop_tenant, job_id)
    assert job.status == "COMPLETED" and job.media.duration > 3


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "audio/wav", 400),
        (b"RIFF" + b"\0" * 46, "audio/wav", 400),
        (b"hello", "text/plain", 415),
    ],
)
async def test_bad_bodies_get_a_clear_json_error(
    api: httpx.AsyncClient, body: bytes, content_type: str, status: int
) -> None:
    response = await api.post("/v1/recognitions", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["code"] == status and response.json()["error"]


async def test_random_bytes_as_audio_end_as_a_failed_job_with_a_reason(
    pipeline: Pipeline, api: httpx.AsyncClient
) -> None:
    job_id = await submit(api, bytes(range(256)) * 64)
    await pipeline.watch.wait(job_id, "job.failed", timeout=60)
    status = (await api.get(f"/v1/recognitions/{job_id}")).json()
    assert status["status"] == "failed"
    assert "not a readable audio or video file" in status["warnings"][0]


async def test_unregistered_callback_url_is_refused(api: httpx.AsyncClient, speech: Path) -> None:
    response = await api.post(
        "/v1/recognitions",
        params={"callback_url": "http://127.0.0.1:9/x"},
        content=speech.read_bytes(),
        headers={"Content-Type": "audio/wav"},
    )
    assert response.status_code == 400 and "not registered" in response.json()["error"]


@pytest.mark.parametrize("mode", ["wrong", "slow"])
async def test_a_receiver_that_fails_the_challenge_is_not_registered(
    api: httpx.AsyncClient, receiver: Receiver, mode: str
) -> None:
    receiver.mode = mode
    response = await register(api, receiver)
    assert response.status_code == 400 and response.json()["error"]
    receiver.mode = "ok"
    assert (
        await api.post(
            "/v1/recognitions",
            params={"callback_url": receiver.url},
            content=b"x" * 200,
            headers={"Content-Type": "audio/wav"},
        )
    ).status_code == 400


async def test_callbacks_to_private_addresses_are_refused_unless_allowed(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/register_callback", params={"callback_url": "http://10.0.0.1/x"})
    assert response.status_code == 400 and "private" in response.json()["error"]
    response = await api.post("/v1/register_callback", params={"callback_url": "file:///etc/passwd"})
    assert response.status_code == 400


async def test_wrong_key_and_other_tenants_job(pipeline: Pipeline, api: httpx.AsyncClient) -> None:
    job_id = await submit(api, bytes(range(256)) * 4)
    async with httpx.AsyncClient(base_url=pipeline.api_url) as anonymous:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
            response = await anonymous.get("/v1/recognitions", headers=headers)
            assert response.status_code == 401 and response.json()["error"]
        other = pipeline.auth(pipeline.other_key)
        response = await anonymous.get(f"/v1/recognitions/{job_id}", headers=other)
        assert response.status_code == 404
        assert (await anonymous.delete(f"/v1/recognitions/{job_id}", headers=other)).status_code == 404
        listed = (await anonymous.get("/v1/recognitions", headers=other)).json()["recognitions"]
        assert job_id not in {r["id"] for r in listed}


async def test_killed_transcribe_worker_the_job_completes_once(
    pipeline: Pipeline, api: httpx.AsyncClient, receiver: Receiver, speech: Path, tmp_path: Path
) -> None:
    assert (await register(api, receiver)).status_code in {200, 201}
    long_speech = espeak_wav(" ".join([SPOKEN] * 6), "en-us", tmp_path / "long.wav")
    job_id = await submit(
        api, long_speech.read_bytes(), callback_url=receiver.url, events="recognitions.completed"
    )
    await pipeline.watch.wait(job_id, "job.started", timeout=120)
    async with bootstrap(pipeline.settings) as deps:

        async def transcribing() -> None:
            while (await deps.jobs.get("acme", job_id)).processing_attempts < 1:
                await pipeline.watch.changed_any(timeout=0.5)

        await asyncio.wait_for(transcribing(), 60)
        pipeline.transcriber.kill()
        pipeline.transcriber.start()
        note = await receiver.next(300)
        job = await deps.jobs.get("acme", job_id)
    assert note.json["event"] == "recognitions.completed" and note.json["id"] == job_id
    assert job.status == "COMPLETED" and job.processing_attempts >= 2
    await pipeline.drained("notify")
    completed = [n for n in receiver.all_notifications if n.json["event"] == "recognitions.completed"]
    assert len(completed) == 1
    assert pipeline.watch.types(job_id).count("job.completed") == 1


async def test_notifications_arrive_after_the_receiver_comes_back(
    pipeline: Pipeline, api: httpx.AsyncClient, receiver: Receiver, speech: Path
) -> None:
    assert (await register(api, receiver)).status_code in {200, 201}
    await receiver.down()
    job_id = await submit(api, speech.read_bytes(), callback_url=receiver.url, events="recognitions.started")
    async with bootstrap(pipeline.settings) as deps:

        async def failed_twice() -> None:
            while True:
                job = await deps.jobs.get("acme", job_id)
                if any(len(d.attempts) >= 2 for d in job.deliveries.values()):
                    return
                await pipeline.watch.changed_any(timeout=0.5)

        await asyncio.wait_for(failed_twice(), 120)
        await receiver.up()
        note = await receiver.next(60)
        await pipeline.drained("notify")  # the delivery is recorded after the POST returns
        job = await deps.jobs.get("acme", job_id)
    assert note.json == {"id": job_id, "event": "recognitions.started", "user_token": ""}
    [delivery] = job.deliveries.values()
    assert delivery.delivered and len(delivery.attempts) >= 3
    assert all(a.error for a in delivery.attempts[:-1]) and delivery.attempts[-1].status_code == 200
