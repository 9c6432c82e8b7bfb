"""The Harf dialect over in-memory stores: submitting URLs and files, polling, states, errors.

The remote media server is a real HTTP server on loopback; the pipeline is played by
``FakeEvents`` (it completes a job with a scripted Persian transcript when a request waits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from fastapi import FastAPI

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.jobs import JobDocument, JobRepository, JobStatus, result_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript
from tests.fakes import DirMediaStore, MemoryBus, MonotonicClock
from tests.http_stubs import answer
from tests.unit.test_fetch import tone_wav

URL = "/api/transcribe_files/"
ARABIC_SPELLING = "يكي را از حكما شنيدم"  # Arabic yeh and kaf, as Whisper sometimes writes Persian


async def complete(state: MemoryStateStore, tenant: str, job_id: str) -> None:
    transcript = Transcript(
        job_id=job_id,
        language="fa",
        duration=1.0,
        channels=1,
        segments=(Segment(start=0.0, end=0.96, text=ARABIC_SPELLING, confidence=0.9),),
    )
    await state.put(result_key(tenant, job_id), transcript.model_dump(mode="json"))

    def done(job: JobDocument) -> bool:
        job.status = JobStatus.COMPLETED
        return True

    await JobRepository(state).change(tenant, job_id, done)


@dataclass
class FakeFunctions:
    """Plays the pipeline behind the bus: a job waited on completes at once."""

    state: MemoryStateStore

    async def finish(self, job_id: str) -> None:
        await complete(self.state, "acme", job_id)


@dataclass
class Harf:
    app: FastAPI
    client: httpx.AsyncClient
    state: MemoryStateStore
    media: DirMediaStore
    key: str
    other: str
    remote: str  # base URL of the media server, by a loopback address
    bus: MemoryBus
    clock: MonotonicClock  # the API's caches'

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Token {key or self.key}"}

    @property
    def settings(self) -> Settings:
        return self.app.state.deps.settings  # type: ignore[no-any-return]

    async def post(self, body: Any, key: str | None = None) -> httpx.Response:
        return await self.client.post(URL, json=body, headers=self.auth(key))

    async def job(self, job_id: str) -> JobDocument:
        return await JobRepository(self.state).get("acme", job_id)


def remote_app(wav: bytes) -> web.Application:
    app = web.Application()
    app.router.add_get("/speech.wav", answer(lambda r: web.Response(body=wav, content_type="audio/wav")))
    app.router.add_get(
        "/page.html", answer(lambda r: web.Response(text="<html></html>" * 50, content_type="text/html"))
    )
    app.router.add_get(
        "/to-loopback", answer(lambda r: web.HTTPFound(f"http://127.0.0.1:{r.url.port}/speech.wav"))
    )
    return app


@pytest.fixture
async def harf(tmp_path: Path) -> AsyncIterator[Harf]:
    runner = web.AppRunner(remote_app(tone_wav()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settings = Settings(
        data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), outbound_allowlist="127.0.0.0/8"
    )
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    bus, clock = MemoryBus(), MonotonicClock()
    app = create_app(settings, monotonic=clock, state=state, media=media, bus=bus)
    key, other = await create_key(state, "acme"), await create_key(state, "globex")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shenava") as client:
            remote = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield Harf(app, client, state, media, key, other, remote, bus, clock)
    await runner.cleanup()


async def test_a_url_without_waiting_is_pending_then_polled_to_its_results(harf: Harf) -> None:
    url = f"{harf.remote}/speech.wav"
    response = await harf.post({"media_urls": [url], "wait": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "PENDING" and len(body["task_ids"]) == 1
    [task_id] = body["task_ids"]
    job = await harf.job(task_id)
    assert job.source == "harf-url" and job.tag == url and job.options.language == "fa"
    assert f"uploads/acme/{task_id}/speech.wav" in harf.media.stored_keys()

    for spelling in ("task_ids", "tasks_ids"):  # the document spells it both ways
        polled = await harf.post({spelling: [task_id], "wait": False})
        assert polled.status_code == 200 and polled.json() == {"state": "PENDING"}

    await complete(harf.state, "acme", task_id)  # as the pipeline does, in another process
    harf.clock.advance(harf.settings.api_poll_max_age_s)  # what a poll may lag such a change by
    polled = await harf.post({"tasks_ids": [task_id], "wait": False})
    assert polled.json() == [
        {
            "media_url": url,
            "duration": "0:00:01",
            "segments": [{"start": "0:00:00", "end": "0:00:01", "text": "یکی را از حکما شنیدم"}],
        }
    ]


async def test_waiting_answers_with_the_results(harf: Harf) -> None:
    harf.bus.on_wait = FakeFunctions(harf.state).finish
    response = await harf.post({"media_urls": [f"{harf.remote}/speech.wav"]})  # wait defaults to true
    assert response.status_code == 200
    [task] = response.json()
    assert task["media_url"] == f"{harf.remote}/speech.wav" and task["segments"][0]["start"] == "0:00:00"
    assert len(harf.bus.waits) == 1


async def test_failure_and_timeout_states(harf: Harf) -> None:
    [failed_id] = (await harf.post({"media_urls": [f"{harf.remote}/speech.wav"], "wait": False})).json()[
        "task_ids"
    ]

    def fail(job: JobDocument) -> bool:
        job.status, job.failure_reason = JobStatus.FAILED, "the file has no audio track"
        return True

    await JobRepository(harf.state).change("acme", failed_id, fail)
    assert (await harf.post({"task_ids": [failed_id], "wait": False})).json() == {
        "state": "FAILURE",
        "reason": "the file has no audio track",
        "failures": [{"task_id": failed_id, "reason": "the file has no audio track"}],
    }
    harf.settings.harf_task_timeout_s = 0.0
    [slow_id] = (await harf.post({"media_urls": [f"{harf.remote}/speech.wav"], "wait": False})).json()[
        "task_ids"
    ]
    body = (await harf.post({"task_ids": [slow_id], "wait": False})).json()
    assert body["state"] == "TIMEOUT" and "longer than 0 s" in body["reason"]


async def test_an_uploaded_file_is_a_task_and_served_back_to_its_owner_only(harf: Harf) -> None:
    wav = tone_wav(0.5)
    response = await harf.client.post(
        URL, files={"media": ("call one.wav", wav, "audio/wav")}, data={"wait": "false"}, headers=harf.auth()
    )
    assert response.status_code == 200, response.text
    [task_id] = response.json()["task_ids"]
    await complete(harf.state, "acme", task_id)
    [task] = (await harf.post({"task_ids": [task_id], "wait": False})).json()
    assert task["media_url"] == f"http://127.0.0.1:8000{URL}media/{task_id}/call_one.wav"
    path = task["media_url"].removeprefix("http://127.0.0.1:8000")
    served = await harf.client.get(path, headers=harf.auth())
    assert served.status_code == 200 and served.content == wav
    assert served.headers["content-type"] == "audio/wav"
    assert (await harf.client.get(path, headers=harf.auth(harf.other))).status_code == 404
    anonymous = await harf.client.get(path)
    assert anonymous.status_code == 401 and anonymous.json()["detail"]
    assert (await harf.client.get(path.replace("call_one", "other"), headers=harf.auth())).status_code == 404


async def test_another_tenants_task_is_not_found(harf: Harf) -> None:
    [task_id] = (await harf.post({"media_urls": [f"{harf.remote}/speech.wav"], "wait": False})).json()[
        "task_ids"
    ]
    response = await harf.post({"task_ids": [task_id], "wait": False}, key=harf.other)
    assert response.status_code == 404 and task_id in response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("file:///etc/passwd", 400, "only http and https"),
        ("http://10.0.0.1/a.mp3", 400, "private, loopback or link-local"),
        ("{remote}/page.html", 422, "not a readable audio or video file"),
    ],
)
async def test_refused_urls_get_a_json_error_and_make_no_job(
    harf: Harf, url: str, status: int, needle: str
) -> None:
    good = f"{harf.remote}/speech.wav"
    response = await harf.post({"media_urls": [good, url.format(remote=harf.remote)], "wait": False})
    assert response.status_code == status and needle in response.json()["detail"]
    assert "shenava-" not in response.json()["detail"]  # what is wrong with the URL, not our temp path
    assert await JobRepository(harf.state).list_ids("acme") == []  # all or nothing


async def test_a_redirect_to_loopback_is_refused_unless_loopback_is_allowed(harf: Harf) -> None:
    harf.settings.outbound_allowlist = "localhost"  # the server by name, not 127.0.0.1
    url = harf.remote.replace("127.0.0.1", "localhost") + "/to-loopback"
    response = await harf.post({"media_urls": [url], "wait": False})
    assert response.status_code == 400 and "private, loopback or link-local" in response.json()["detail"]


async def test_an_oversize_body_is_413(harf: Harf) -> None:
    harf.settings.max_audio_bytes = 1000
    response = await harf.post({"media_urls": [f"{harf.remote}/speech.wav"], "wait": False})
    assert response.status_code == 413 and "1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "send media_urls"),
        (b'{"media_urls": []}', "media_urls is empty"),
        (b'{"media_urls": "http://x"}', "media_urls"),
        (b'{"media_urls": ["http://x"], "task_ids": ["y"]}', "not both"),
        (b'{"task_ids": ["../../keys/x"]}', "is not a task id"),
        (b'{"media_urls": ["http://x"], "wait": "maybe"}', "wait"),
        (b'{"media_urls": ["http://x"], "language": "xx"}', "unknown language"),
        (b'{"media_urls": [' + b",".join([b'"http://x"'] * 17) + b"]}", "media_urls"),
    ],
)
async def test_bad_bodies_get_400_naming_the_problem(harf: Harf, body: bytes, needle: str) -> None:
    response = await harf.client.post(
        URL, content=body, headers={**harf.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and needle in response.json()["detail"], response.text


async def test_unknown_task_ids_are_404(harf: Harf) -> None:
    response = await harf.post({"task_ids": ["0190a000-0000-7000-8000-0000000000aa"]})
    assert response.status_code == 404 and "no task" in response.json()["detail"]


async def test_bad_multipart_uploads(harf: Harf) -> None:
    no_file = await harf.client.post(URL, data={"wait": "false"}, files={"x": ("", b"")}, headers=harf.auth())
    assert no_file.status_code == 400
    bad_wait = await harf.client.post(
        URL,
        files={"media": ("a.wav", tone_wav(0.2), "audio/wav")},
        data={"wait": "soon"},
        headers=harf.auth(),
    )
    assert bad_wait.status_code == 400 and "wait must be true or false" in bad_wait.json()["detail"]
    tiny = await harf.client.post(URL, files={"media": ("a.wav", b"RIFF", "audio/wav")}, headers=harf.auth())
    assert tiny.status_code == 400 and "at least" in tiny.json()["detail"]


async def test_the_path_without_its_slash_and_auth_errors(harf: Harf) -> None:
    response = await harf.client.post(
        URL.rstrip("/"),
        json={"media_urls": [f"{harf.remote}/speech.wav"], "wait": False},
        headers=harf.auth(),
    )
    assert response.status_code == 200 and response.json()["state"] == "PENDING"
    for headers in ({}, {"Authorization": "Token nope"}):
        response = await harf.client.post(URL, json={"task_ids": []}, headers=headers)
        assert response.status_code == 401 and response.json()["detail"]
