"""The Watson dialect over in-memory stores: validation, errors, tenancy, callbacks, rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.jobs import JobDocument, JobRepository, JobStatus, result_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Alternative, Segment, Transcript, Word
from tests.fakes import DirMediaStore, MemoryBus
from tests.receiver import Receiver


class Api:
    def __init__(
        self, client: httpx.AsyncClient, state: MemoryStateStore, media: DirMediaStore, key: str, other: str
    ) -> None:
        self.client, self.state, self.media, self.key, self.other = client, state, media, key, other
        self.bus = MemoryBus()

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path,
        secret_key=Fernet.generate_key().decode(),
        outbound_allowlist="127.0.0.0/8",
        callback_challenge_timeout_s=1.0,
    )
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    bus = MemoryBus()
    app = create_app(settings, state=state, media=media, bus=bus)
    key, other = await create_key(state, "acme"), await create_key(state, "globex")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shenava") as client:
            api = Api(client, state, media, key, other)
            api.bus = bus
            yield api


async def post_audio(api: Api, body: bytes, content_type: str = "audio/wav", **params: str) -> httpx.Response:
    return await api.client.post(
        "/v1/recognitions", params=params, content=body, headers={**api.auth(), "Content-Type": content_type}
    )


async def test_a_recognition_is_registered_and_its_media_stored(api: Api) -> None:
    response = await post_audio(api, b"x" * 500, user_token=None or "", model="pt-BR_NarrowbandModel")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "waiting" and body["url"].endswith(f"/v1/recognitions/{body['id']}")
    assert any(k.startswith(f"uploads/acme/{body['id']}/") for k in api.media.stored_keys())
    job = JobDocument.model_validate((await api.state.get(f"tenants/acme/jobs/{body['id']}.json"))[0])  # type: ignore[index]
    assert job.options.language == "pt" and job.results_ttl_minutes == 7 * 24 * 60
    assert api.bus.events == []  # the upload's bucket event starts the pipeline, nothing else


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"events": "recognitions.started"}, "only be given with a callback_url"),
        ({"results_ttl": "0"}, "results_ttl"),
        ({"model": "xx-YY_Model"}, "unknown language"),
        ({"timestamps": "maybe"}, "timestamps"),
    ],
)
async def test_invalid_parameters_get_400_naming_the_problem(
    api: Api, params: dict[str, str], needle: str
) -> None:
    response = await post_audio(api, b"x" * 500, **params)
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert response.json()["code_description"] == "Bad Request"


async def test_events_must_be_known_and_not_both_completions(api: Api) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        assert (
            await api.client.post(
                "/v1/register_callback", params={"callback_url": receiver.url}, headers=api.auth()
            )
        ).status_code == 201
        for events, needle in [
            ("recognitions.done", "unknown event"),
            ("recognitions.completed,recognitions.completed_with_results", "not both"),
        ]:
            response = await post_audio(api, b"x" * 500, callback_url=receiver.url, events=events)
            assert response.status_code == 400 and needle in response.json()["error"]
    finally:
        await receiver.stop()


async def test_oversize_audio_is_413(api: Api) -> None:
    settings = api.client._transport.app.state.deps.settings  # type: ignore[attr-defined]
    settings.max_audio_bytes = 1000
    response = await post_audio(api, b"x" * 1001)
    assert response.status_code == 413 and "1000 bytes" in response.json()["error"]


async def test_multipart_audio_is_accepted(api: Api) -> None:
    files = {"audio": ("call.flac", b"f" * 300, "audio/flac")}
    response = await api.client.post("/v1/recognitions", files=files, headers=api.auth())
    assert response.status_code == 201
    assert any(k.endswith("/call.flac") for k in api.media.stored_keys())


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    assert (await api.client.get("/v1/nothing", headers=api.auth())).json()["code"] == 404
    assert (await api.client.put("/v1/recognitions", headers=api.auth())).json()["code"] == 405


async def test_completed_results_in_watson_shape_and_delete(api: Api) -> None:
    job = JobDocument(id="0190a000-0000-7000-8000-0000000000aa", tenant="acme", status=JobStatus.COMPLETED)
    job.options.timestamps = job.options.word_confidence = True
    await JobRepository(api.state).create(job)
    words = (
        Word(text="several", start=1.0, end=1.52, confidence=0.9),
        Word(text="tornadoes", start=1.52, end=2.15, confidence=0.8),
    )
    transcript = Transcript(
        job_id=job.id,
        language="en",
        duration=3.0,
        channels=1,
        segments=(
            Segment(
                start=1.0, end=2.15, text=" several tornadoes", confidence=0.85, words=words,
                alternatives=(Alternative(text=" several tornado", confidence=0.5),),
            ),
        ),
    )  # fmt: skip
    await api.state.put(result_key("acme", job.id), transcript.model_dump(mode="json"))

    body = (await api.client.get(f"/v1/recognitions/{job.id}", headers=api.auth())).json()
    [result] = body["results"][0]["results"]
    assert body["status"] == "completed" and result["final"] is True
    assert result["alternatives"][0] == {
        "transcript": "several tornadoes ",
        "confidence": 0.85,
        "timestamps": [["several", 1.0, 1.52], ["tornadoes", 1.52, 2.15]],
        "word_confidence": [["several", 0.9], ["tornadoes", 0.8]],
    }
    assert result["alternatives"][1:] == [{"transcript": "several tornado "}]
    assert (
        await api.client.get(f"/v1/recognitions/{job.id}", headers=api.auth(api.other))
    ).status_code == 404
    assert (await api.client.delete(f"/v1/recognitions/{job.id}", headers=api.auth())).status_code == 204
    assert (await api.client.get(f"/v1/recognitions/{job.id}", headers=api.auth())).status_code == 404
    assert await api.state.get(result_key("acme", job.id)) is None


async def test_a_job_in_progress_cannot_be_deleted(api: Api) -> None:
    job = JobDocument(id="0190a000-0000-7000-8000-0000000000bb", tenant="acme", status=JobStatus.IN_PROGRESS)
    await JobRepository(api.state).create(job)
    response = await api.client.delete(f"/v1/recognitions/{job.id}", headers=api.auth())
    assert response.status_code == 400 and "being processed" in response.json()["error"]


async def test_callbacks_belong_to_their_tenant_and_can_be_unregistered(api: Api) -> None:
    receiver = Receiver(secret="s3cret")
    await receiver.start()
    try:
        params = {"callback_url": receiver.url, "user_secret": "s3cret"}
        assert (
            await api.client.post("/v1/register_callback", params=params, headers=api.auth())
        ).status_code == 201
        response = await post_audio(api, b"x" * 500, callback_url=receiver.url)
        assert response.status_code == 201
        other = {**api.auth(api.other), "Content-Type": "audio/wav"}
        response = await api.client.post(
            "/v1/recognitions", params={"callback_url": receiver.url}, content=b"x" * 500, headers=other
        )
        assert response.status_code == 400  # not registered for globex
        stored = [raw for k, (raw, _) in api.state._docs.items() if "/callbacks/" in k]
        assert len(stored) == 1 and b"s3cret" not in stored[0]  # the secret is encrypted at rest
        unregister = {"callback_url": receiver.url}
        assert (
            await api.client.post("/v1/unregister_callback", params=unregister, headers=api.auth())
        ).status_code == 200
        assert (
            await api.client.post("/v1/unregister_callback", params=unregister, headers=api.auth())
        ).status_code == 404
    finally:
        await receiver.stop()


async def test_every_challenge_string_is_alphanumeric_as_documented(api: Api) -> None:
    """The document's receiver gets "uma sequência de desafio alfanumérica" (n9ArPGMQ36Hiu7QC);
    ``Receiver`` refuses any other, so each of 40 registrations must still be created."""
    receiver = Receiver()
    await receiver.start()
    try:
        params = {"callback_url": receiver.url}
        for _ in range(40):  # with '-' and '_' in the alphabet, 40 in a row would pass ~1 time in 10^9
            created = await api.client.post("/v1/register_callback", params=params, headers=api.auth())
            assert created.status_code == 201, created.text
            await api.client.post("/v1/unregister_callback", params=params, headers=api.auth())
        assert len(receiver.challenges) == 40
        assert all(len(c["challenge"]) == len("n9ArPGMQ36Hiu7QC") for c in receiver.challenges)
    finally:
        await receiver.stop()


class BrokenMediaStore(DirMediaStore):
    async def put_file(
        self, key: str, path: Path, content_type: str, metadata: dict[str, str] | None = None
    ) -> None:
        raise ConnectionError("media bucket unreachable")


async def test_media_storage_down_is_503_and_leaves_no_job(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=BrokenMediaStore(tmp_path / "media"))
    key = await create_key(state, "acme")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shenava") as client:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "audio/wav"}
            response = await client.post("/v1/recognitions", content=b"x" * 500, headers=headers)
            assert response.status_code == 503 and "try again" in response.json()["error"]
            listed = await client.get("/v1/recognitions", headers=headers)
            assert listed.json() == {"recognitions": []}


async def test_results_expire_after_their_ttl(api: Api) -> None:
    from datetime import timedelta

    from events.models import utcnow

    job = JobDocument(id="0190a000-0000-7000-8000-0000000000cc", tenant="acme", status=JobStatus.COMPLETED)
    job.expires_at = utcnow() - timedelta(seconds=1)
    await JobRepository(api.state).create(job)
    await api.state.put(result_key("acme", job.id), {"job_id": job.id})
    listed = (await api.client.get("/v1/recognitions", headers=api.auth())).json()["recognitions"]
    assert listed == []  # expired: left out of the list, and purged
    assert await api.state.get(result_key("acme", job.id)) is None
    await JobRepository(api.state).create(job)
    await api.state.put(result_key("acme", job.id), {"job_id": job.id})
    response = await api.client.get(f"/v1/recognitions/{job.id}", headers=api.auth())
    assert response.status_code == 404 and "expired" in response.json()["error"]
    assert await api.state.get(result_key("acme", job.id)) is None


async def test_max_alternatives_reaches_the_job(api: Api) -> None:
    jobs = JobRepository(api.state)
    asked = (await post_audio(api, b"x" * 500, max_alternatives="3")).json()["id"]
    assert (await jobs.get("acme", asked)).options.alternatives == 3
    default = (await post_audio(api, b"x" * 500, max_alternatives="0")).json()["id"]
    assert (await jobs.get("acme", default)).options.alternatives == 1
    response = await post_audio(api, b"x" * 500, max_alternatives="11")
    assert response.status_code == 400 and "max_alternatives" in response.json()["error"]
