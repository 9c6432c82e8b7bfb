"""The OpenAI-compatible API over memory stores: its error body on its own paths only (Watson keeps
``/v1``'s others), field validation, the answer shapes, and the async job's lifecycle. The bus's
wait stands in for the pipeline and completes the job (the real client against the real stack is
tests/integration/test_openai_e2e.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.jobs import JobStatus, result_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript, Word
from tests.fakes import DirMediaStore, MemoryBus
from tests.unit.test_trd_config import engine_options

WAV = b"RIFF" + b"\0" * 200


@dataclass
class Served:
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    deps: Deps
    bus: MemoryBus


def said(job_id: str) -> Transcript:
    words = (Word(text=" Hello", start=0.5, end=0.9, confidence=0.9), Word(text=" world.", start=1.0, end=1.4,
             confidence=0.8))  # fmt: skip
    silent = Segment(start=2.0, end=3.0, text="", confidence=0.0, flags=("no_speech",))
    spoken = Segment(start=0.5, end=1.4, text=" Hello world.", confidence=0.85, words=words)
    return Transcript(job_id=job_id, language="en", duration=3.0, channels=1, segments=(spoken, silent))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    state = MemoryStateStore()
    deps_box: list[Deps] = []

    async def pipeline(job_id: str) -> None:  # what ingest and transcribe would do
        deps = deps_box[0]
        job = await deps.jobs.get("acme", job_id)
        await deps.state.put(result_key("acme", job_id), said(job_id).model_dump(mode="json"))

        def complete(current: object) -> bool:
            current.completed_now(deps.clock())  # type: ignore[attr-defined]
            return True

        await deps.jobs.change(job.tenant, job_id, complete)

    bus = MemoryBus(on_wait=pipeline)
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path / "media"), bus=bus)
    key = await create_key(state, "acme")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://s", headers={"Authorization": f"Bearer {key}"}
        ) as client,
        httpx.AsyncClient(transport=transport, base_url="http://s") as anonymous,
    ):
        deps_box.append(app.state.deps)
        yield Served(client, anonymous, app.state.deps, bus)


def form(**fields: str | list[str]) -> dict[str, str | list[str]]:
    return {"model": "whisper-1", **fields}


async def test_errors_have_openais_body_on_its_paths_and_watsons_elsewhere(served: Served) -> None:
    unknown = await served.client.post(
        "/v1/audio/transcriptions", data=form(model="whisper-9"), files={"file": ("a.wav", WAV, "audio/wav")}
    )
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and "whisper-9" in error["message"]
    assert error["type"] == "invalid_request_error"
    keyless = await served.anonymous.get("/v1/models")
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "invalid_api_key"
    watson = await served.client.get("/v1/recognitions/nope")
    assert watson.status_code == 404 and set(watson.json()) == {"code", "error", "code_description"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [({"response_format": "docx"}, "response_format"), ({"temperature": "2"}, "temperature"),
     ({"timestamp_granularities[]": "word"}, "verbose_json"), ({"language": "xx"}, "xx"),
     ({"response_format": "verbose_json", "timestamp_granularities[]": "char"}, "timestamp_granularities")],
)  # fmt: skip
async def test_each_bad_field_is_refused_by_name(served: Served, fields: dict[str, str], named: str) -> None:
    answer = await served.client.post(
        "/v1/audio/transcriptions", data=form(**fields), files={"file": ("a.wav", WAV, "audio/wav")}
    )
    assert answer.status_code == 400 and named in answer.json()["error"]["message"]
    missing = await served.client.post("/v1/audio/transcriptions", data=form())
    assert missing.status_code == 400 and "file" in missing.json()["error"]["message"]


async def test_verbose_json_has_words_and_segments_and_the_job_is_not_kept(served: Served) -> None:
    answer = await served.client.post(
        "/v1/audio/transcriptions",
        data=form(response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}),
        files={"file": ("a.wav", WAV, "audio/wav")},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["language"] == "english" and body["task"] == "transcribe" and body["text"] == "Hello world."
    assert body["words"] == [
        {"word": "Hello", "start": 0.5, "end": 0.9},
        {"word": "world.", "start": 1.0, "end": 1.4},
    ]
    assert [s["text"] for s in body["segments"]] == [" Hello world."]  # no-speech segments are left out
    assert await served.deps.jobs.list_ids("acme") == []  # answered, nothing kept
    text = await served.client.post("/v1/audio/translations", data=form(response_format="text"),
                                    files={"file": ("a.wav", WAV, "audio/wav")})  # fmt: skip
    assert text.text == "Hello world.\n" and text.headers["content-type"].startswith("text/plain")


async def test_async_answers_202_and_the_job_serves_its_result_when_done(served: Served) -> None:
    answer = await served.client.post(
        "/v1/audio/transcriptions", data=form(response_format="srt", **{"async": "true"}),
        files={"file": ("a.wav", WAV, "audio/wav")},
    )  # fmt: skip
    assert answer.status_code == 202
    job = answer.json()
    assert job["status"] == "queued" and job["url"] == f"http://127.0.0.1:8000/v1/audio/jobs/{job['id']}"
    waiting = await served.client.get(f"/v1/audio/jobs/{job['id']}")
    assert waiting.status_code == 202 and waiting.json()["status"] == "queued"
    await served.bus.on_wait(job["id"])  # type: ignore[misc]  # the pipeline finishes it
    done = await served.client.get(f"/v1/audio/jobs/{job['id']}")
    assert done.status_code == 200 and done.text.startswith("1\n00:00:00,500 --> 00:00:01,400\nHello world.")
    as_json = await served.client.get(f"/v1/audio/jobs/{job['id']}", params={"response_format": "json"})
    assert as_json.json() == {"text": "Hello world."}
    stored = await served.deps.jobs.get("acme", job["id"])
    assert stored.status == JobStatus.COMPLETED and stored.openai is not None and stored.source == "openai"


async def test_an_async_job_is_deleted_with_its_media_and_result(served: Served) -> None:
    files = {"file": ("a.wav", WAV, "audio/wav")}
    answer = await served.client.post("/v1/audio/transcriptions", data=form(**{"async": "true"}), files=files)
    job_id = answer.json()["id"]
    await served.bus.on_wait(job_id)  # type: ignore[misc]  # the pipeline finishes it
    store = served.deps.media
    assert isinstance(store, DirMediaStore) and any(job_id in key for key in store.stored_keys())
    assert (await served.client.delete(f"/v1/audio/jobs/{job_id}")).status_code == 204
    gone = await served.client.get(f"/v1/audio/jobs/{job_id}")
    assert gone.status_code == 404 and gone.json()["error"]["message"]
    assert await served.deps.state.get(result_key("acme", job_id)) is None
    assert not any(job_id in key for key in store.stored_keys())
    assert (await served.client.delete(f"/v1/audio/jobs/{job_id}")).status_code == 404


async def test_a_temperature_asked_for_is_the_jobs_and_reaches_the_engine(
    served: Served, tmp_path: Path
) -> None:
    answer = await served.client.post(
        "/v1/audio/transcriptions", data=form(temperature="0.6", **{"async": "true"}),
        files={"file": ("a.wav", WAV, "audio/wav")},
    )  # fmt: skip
    stored = await served.deps.jobs.get("acme", answer.json()["id"])
    assert stored.options.temperature == 0.6
    given = await engine_options(tmp_path, stored.options)
    assert given.temperature == 0.6
