"""The TRD v3 dialect over in-memory stores: JOB shape, config, state rules, list and query."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobRepository, JobStatus, MediaFacts, new_job_id, result_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript, Word
from tests.fakes import DirMediaStore, MemoryBus


class Trd:
    def __init__(
        self, client: httpx.AsyncClient, state: MemoryStateStore, media: DirMediaStore, key: str
    ) -> None:
        self.client, self.state, self.media, self.key = client, state, media, key
        self.jobs = JobRepository(state)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def create(
        self, config: dict | None = None, tag: str | None = None, **fields: str
    ) -> httpx.Response:
        data = {**fields, **({"config": json.dumps(config)} if config is not None else {})}
        files = {"upload_file": ("nasceu.wav", b"RIFF" + b"x" * 400, "audio/x-wav")}
        params = {"tag": tag} if tag else {}
        return await self.client.post(
            "/trd/v3/job/create", params=params, data=data, files=files, headers=self.auth
        )


@pytest.fixture
async def trd(tmp_path: Path) -> AsyncIterator[Trd]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), rate_limit_per_minute=0)
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    app = create_app(settings, state=state, media=media, bus=MemoryBus())
    key = await create_key(state, "acme")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
    async with app.router.lifespan_context(app), client:
        yield Trd(client, state, media, key)


async def test_create_answers_the_documented_job(trd: Trd) -> None:
    response = await trd.create(tag="tag-novo", callback_urls="https://example.org/hook")
    assert response.status_code == 200
    job = response.json()["job"]
    assert job["status"] == "QUEUED" and job["filename"] == "nasceu.wav" and job["tag"] == "tag-novo"
    assert job["callback_urls"] == ["https://example.org/hook"]
    assert job["failure_reason"] == "" and job["callback_failure_reason"] == ""
    assert job["config"]["priority"] == 50
    assert job["config"]["diarization"]["clustering"] == {"threshold": -0.4, "enabled": True}
    assert job["config"]["diarization"]["vad"]["dual_tone"]["row_freq"] == [350, 697, 770, 852, 941]
    assert job["config"]["recognition"]["decoder"] == {"max_sentences": 1, "word_details": 1}
    assert set(job["media"]) == {"md5", "size", "input", "output"}
    stored = await trd.jobs.get("acme", job["id"])
    assert stored.options.speaker_labels and stored.options.diarization_threshold == -0.4
    assert stored.options.language == "pt"
    urgent = await trd.create({"priority": 90})
    assert (await trd.jobs.get("acme", urgent.json()["job"]["id"])).priority == 90
    hinted = await trd.create({"recognition": {"hints_words": ["Kwazulu", " "]}})
    assert (await trd.jobs.get("acme", hinted.json()["job"]["id"])).options.hints == ["Kwazulu"]


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"recognition": {"decoder": {"max_sentences": 11}}}, "recognition.decoder.max_sentences"),
        ({"diarization": {"vad": {"chunk_max_silence": 0}}}, "diarization.vad.chunk_max_silence"),
        ({"diarization": {"vad": {"chunk_max_length": -5}}}, "diarization.vad.chunk_max_length"),
        ({"diarization": {"vad": {"dual_tone": {"enabled": True}}}}, "dual_tone.enabled"),
        ({"recognition": {"tasks": ["kashf"]}}, "recognition.tasks"),
        ({"recognition": {"hints": ["x"]}}, "config.recognition.hints"),
        ({"priority": "high"}, "config.priority"),
    ],
)
async def test_settings_that_cannot_be_honoured_are_422_by_name(trd: Trd, config: dict, needle: str) -> None:
    response = await trd.create(config)
    assert response.status_code == 422
    assert needle in response.json()["detail"]


async def test_malformed_requests_are_4xx_json(trd: Trd) -> None:
    response = await trd.client.post("/trd/v3/job/create", data={"config": "{"}, headers=trd.auth)
    assert response.status_code == 422 and "upload_file" in response.json()["detail"]
    response = await trd.create(callback_urls="file:///etc/passwd")
    assert response.status_code == 400 and "callback_urls" in response.json()["detail"]
    files = {"upload_file": ("a.wav", b"x", "audio/wav")}
    response = await trd.client.post("/trd/v3/job/create", files=files, headers=trd.auth)
    assert response.status_code == 400 and "at least 100 bytes" in response.json()["detail"]
    assert (await trd.client.get("/trd/v3/job/status/nope", headers=trd.auth)).status_code == 404
    response = await trd.client.get("/trd/v3/job", params={"limit": 5000}, headers=trd.auth)
    assert response.status_code == 400 and "limit" in response.json()["detail"]
    assert (await trd.client.get("/trd/v3/job")).status_code == 401


async def finished(trd: Trd, status: JobStatus, **fields: Any) -> JobDocument:
    job = JobDocument(
        id=new_job_id(), tenant="acme", status=status, filename="call.wav", source="trd", **fields
    )
    job.media = MediaFacts(
        key=f"uploads/acme/{job.id}/call.wav",
        channels=2,
        duration=4.5,
        bit_rate=256000,
        speech=[3.2, 0.0],
        format="wav",
        codec="pcm_s16le",
        sample_rate=8000,
        bandwidth=3909.2,
    )
    await trd.jobs.create(job)
    source = trd.media.root.parent / "src.wav"
    source.write_bytes(b"RIFF" + b"y" * 200)
    await trd.media.put_file(job.media.key, source, "audio/wav")
    return job


async def test_stop_retry_delete_follow_the_allowed_states(trd: Trd) -> None:
    completed = await finished(trd, JobStatus.COMPLETED)
    failed = await finished(trd, JobStatus.FAILED, failure_reason="no audio track")
    queued = (await trd.create()).json()["job"]["id"]
    for path in (f"/trd/v3/job/stop/{completed.id}", f"/trd/v3/job/retry/{completed.id}"):
        response = await trd.client.post(path, headers=trd.auth)
        assert response.status_code == 409 and "COMPLETED" in response.json()["detail"]
    response = await trd.client.delete(f"/trd/v3/job/{queued}", headers=trd.auth)
    assert response.status_code == 409 and "QUEUED" in response.json()["detail"]

    stopped = (await trd.client.post(f"/trd/v3/job/stop/{queued}", headers=trd.auth)).json()["job"]
    assert stopped["status"] == "STOPPED"
    retried = (await trd.client.post(f"/trd/v3/job/retry/{failed.id}", headers=trd.auth)).json()["job"]
    assert retried["status"] == "QUEUED" and retried["id"] != failed.id and retried["filename"] == "call.wav"
    assert f"uploads/acme/{retried['id']}/call.wav" in trd.media.stored_keys()
    deleted = (await trd.client.delete(f"/trd/v3/job/{completed.id}", headers=trd.auth)).json()["job"]
    assert deleted["status"] == "DELETED"
    assert not [k for k in trd.media.stored_keys() if completed.id in k]
    assert (await trd.client.get(f"/trd/v3/job/status/{completed.id}", headers=trd.auth)).status_code == 404


async def test_result_as_json_and_csv(trd: Trd) -> None:
    job = await finished(trd, JobStatus.COMPLETED)
    words = (
        Word(text="a", start=0.86, end=0.95, confidence=0.98),
        Word(text="minha", start=0.95, end=1.3, confidence=1.0),
    )
    transcript = Transcript(job_id=job.id, language="pt", duration=4.5, channels=2, segments=(
        Segment(channel=0, speaker="1", start=0.861, end=4.12, text=" a minha", confidence=0.99, words=words),
        Segment(channel=1, start=65.25, end=66.0, text="", confidence=0.0),
    ))  # fmt: skip
    await trd.state.put(result_key("acme", job.id), transcript.model_dump(mode="json"))
    body = (await trd.client.get(f"/trd/v3/job/result/{job.id}", headers=trd.auth)).json()
    first, second = body["segments"]
    assert first == {
        "channel": 1, "speaker": "1", "start": 0.861, "end": 4.12, "status": "RECOGNIZED",
        "alternatives": [{"text": "a minha", "score": 99, "lm": "", "words": [
            {"text": "a", "score": 98, "start_time": 0.86, "end_time": 0.95},
            {"text": "minha", "score": 100, "start_time": 0.95, "end_time": 1.3}]}],
        "task_results": {},
    }  # fmt: skip
    assert (second["channel"], second["speaker"], second["status"]) == (2, "2", "NO_MATCH")
    media = body["job"]["media"]
    assert media["input"] == {"sample_rate": 8000, "channels": 2, "bit_rate": 256000, "format": "Wave",
                              "codec": "PCM", "bandwidth": 3909.2}  # fmt: skip
    assert media["output"]["channels"][1] == {"channel": 2, "duration": 4.5, "speech": 0.0, "silence": True}

    response = await trd.client.get(
        f"/trd/v3/job/result/{job.id}", params={"format": "csv"}, headers=trd.auth
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert rows[0] == ["contador", "canal", "início", "fim", "speaker", "texto", "score",
                       "reservado 1", "reservado 2", "bitrate", "reservado 3"]  # fmt: skip
    assert rows[1] == ["1", "1", "00:00:861", "00:04:120", "1", "a minha", "99", "", "", "256", ""]
    assert rows[2][2:4] == ["01:05:250", "01:06:000"]


async def test_list_and_query_2000_jobs(trd: Trd) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for n in range(2000):
        status = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.DELETED][n % 4]
        created = start + timedelta(hours=n)
        job = JobDocument(id=new_job_id(), tenant="acme", status=status, tag=f"t{n % 5}",
                          filename=f"f{n % 7}.wav", created_at=created)  # fmt: skip
        await trd.state.put(f"tenants/acme/jobs/{job.id}.json", job.model_dump(mode="json"))
        rows.append(JobRow(job.id, status.value, created.isoformat(), job.tag, job.filename))
    await trd.jobs.index.replace_all("acme", rows)
    visible = [r for r in rows if r.status != "DELETED"]

    page = (await trd.client.get("/trd/v3/job", params={"page": 3, "limit": 100}, headers=trd.auth)).json()
    assert page["total"] == 1500 and len(page["results"]) == 100 and (page["page"], page["limit"]) == (3, 100)
    newest_first = sorted(visible, key=lambda r: r.id, reverse=True)
    assert [r["job"]["id"] for r in page["results"]] == [r.id for r in newest_first[200:300]]
    tagged = (
        await trd.client.get("/trd/v3/job", params={"tag": "t2", "limit": 1000}, headers=trd.auth)
    ).json()
    assert tagged["total"] == sum(1 for r in visible if r.tag == "t2")

    params: dict[str, str | int] = {
        "status": "COMPLETED", "filename": "f3.wav", "start_date": "2026-03-10T00:00:00+00:00",
        "end_date": "2026-03-20T00:00:00.000+00:00", "limit": 7, "page": 2,
    }  # fmt: skip
    found = (await trd.client.get("/trd/v3/query/job", params=params, headers=trd.auth)).json()
    expected = [r for r in newest_first if r.status == "COMPLETED" and r.filename == "f3.wav"
                and datetime(2026, 3, 10, tzinfo=UTC) <= datetime.fromisoformat(r.created_at)
                <= datetime(2026, 3, 20, tzinfo=UTC)]  # fmt: skip
    assert found["total"] == len(expected) > 7
    assert [r["job"]["id"] for r in found["results"]] == [r.id for r in expected[7:14]]
    assert all(r["job"]["status"] == "COMPLETED" for r in found["results"])
    deleted = (
        await trd.client.get("/trd/v3/query/job", params={"status": "DELETED"}, headers=trd.auth)
    ).json()
    assert deleted["total"] == 500
    naive = await trd.client.get(
        "/trd/v3/query/job", params={"start_date": "2026-03-10T00:00:00"}, headers=trd.auth
    )
    assert naive.status_code == 422


async def test_requests_over_the_rate_get_429(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), rate_limit_per_minute=3)
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path), bus=MemoryBus())
    headers = {"Authorization": f"Bearer {await create_key(state, 'acme')}"}
    other = {"Authorization": f"Bearer {await create_key(state, 'globex')}"}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
    async with app.router.lifespan_context(app), client:
        codes = [(await client.get("/trd/v3/job", headers=headers)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert (await client.get("/trd/v3/job", headers=other)).status_code == 200


async def test_the_dialect_documents_itself(trd: Trd) -> None:
    assert "swagger" in (await trd.client.get("/trd/v3/docs")).text.lower()
    spec = (await trd.client.get("/trd/v3/openapi.json")).json()
    assert "/trd/v3/job/create" in spec["paths"] and "/v1/recognitions" not in spec["paths"]
