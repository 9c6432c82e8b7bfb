"""The TRD v3 dialect over in-memory stores: JOB shape, config, state rules, list and query."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from events.models import ObjectCreated
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobRepository, JobStatus, MediaFacts, new_job_id, result_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript, Word
from functions.ingest import handler as ingest
from tests.fakes import DirMediaStore, MemoryBus


class Trd:
    def __init__(
        self, client: httpx.AsyncClient, state: MemoryStateStore, media: DirMediaStore, key: str, deps: Deps
    ) -> None:
        self.client, self.state, self.media, self.key = client, state, media, key
        self.jobs = JobRepository(state)
        self.app_deps = deps

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
        yield Trd(client, state, media, key, app.state.deps)


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
    assert response.status_code == 422 and "limit" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/trd/v3/job", {"limit": "5000"}),  # "Limit (opcional, máximo 1000)"
        ("/trd/v3/job", {"page": "0"}),  # "Número da pagina iniciando em 1"
        ("/trd/v3/query/job", {"status": "DONE"}),
        ("/trd/v3/query/job", {"start_date": "yesterday"}),
        ("/trd/v3/query/job", {"result": "maybe"}),
    ],
)
async def test_query_validation_is_the_documents_422(trd: Trd, path: str, params: dict[str, str]) -> None:
    response = await trd.client.get(path, params=params, headers=trd.auth)
    assert response.status_code == 422 and set(response.json()) == {"detail"}


async def test_access_is_denied_with_the_documents_codes(trd: Trd) -> None:
    """The job APIs list 403 "Acesso negado" and no 401; the synchronous /transcribe lists both."""
    wrong = {"Authorization": "Bearer not-a-key"}
    for headers in ({}, wrong):
        assert (await trd.client.get("/trd/v3/job", headers=headers)).status_code == 403
        assert (await trd.client.get("/trd/v3/query/job", headers=headers)).status_code == 403
        assert (await trd.client.post("/trd/v3/job/stop/x", headers=headers)).status_code == 403
        files = {"upload_file": ("nasceu.wav", b"RIFF" + b"x" * 400, "audio/x-wav")}
        assert (await trd.client.post("/trd/v3/transcribe", files=files, headers=headers)).status_code == 401


async def finished(trd: Trd, status: JobStatus, **fields: Any) -> JobDocument:
    job = JobDocument(
        id=new_job_id(), tenant="acme", status=status, filename="call.wav", source="trd", **fields
    )
    job.media = MediaFacts(
        key=f"uploads/acme/{job.id}/call.wav",
        md5="c6e28a049070b13e2cd95b2b2f8dc005",
        size=204,
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
    # "Só é possivel interromper um job com o status em QUEUED ou IN_PROGRESS" and the like: the
    # document's codes are 400/403/404/422, so a state that does not allow it is a 400
    for path in (f"/trd/v3/job/stop/{completed.id}", f"/trd/v3/job/retry/{completed.id}"):
        response = await trd.client.post(path, headers=trd.auth)
        assert response.status_code == 400 and "COMPLETED" in response.json()["detail"]
    response = await trd.client.delete(f"/trd/v3/job/{queued}", headers=trd.auth)
    assert response.status_code == 400 and "QUEUED" in response.json()["detail"]

    stopped = (await trd.client.post(f"/trd/v3/job/stop/{queued}", headers=trd.auth)).json()["job"]
    assert stopped["status"] == "STOPPED" and stopped["completed_at"]  # as the document's stop answer
    retried = (await trd.client.post(f"/trd/v3/job/retry/{failed.id}", headers=trd.auth)).json()["job"]
    assert retried["status"] == "QUEUED" and retried["id"] != failed.id and retried["filename"] == "call.wav"
    assert (retried["media"]["md5"], retried["media"]["size"]) == (failed.media.md5, failed.media.size)
    assert f"uploads/acme/{retried['id']}/call.wav" in trd.media.stored_keys()
    deleted = (await trd.client.delete(f"/trd/v3/job/{completed.id}", headers=trd.auth)).json()["job"]
    assert deleted["status"] == "DELETED"
    assert not [k for k in trd.media.stored_keys() if completed.id in k]
    assert (await trd.client.get(f"/trd/v3/job/status/{completed.id}", headers=trd.auth)).status_code == 404


async def test_result_as_json_and_csv(trd: Trd) -> None:
    job = await finished(trd, JobStatus.COMPLETED)
    words = (
        Word(text="a", start=0.861035, end=0.95, confidence=0.98),
        Word(text="minha", start=0.95, end=1.311, confidence=1.0),
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
            {"text": "a", "score": 98, "start_time": 0.0, "end_time": 0.089},
            {"text": "minha", "score": 100, "start_time": 0.089, "end_time": 0.45}]}],
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


# The document's example segment: 0.861-4.12 s, its words timed from the segment's start.
EXAMPLE_WORDS = [
    ("a", 0.000035418154, 0.08985883), ("minha", 0.08985883, 0.45), ("filha", 0.45, 0.87),
    ("nasceu", 0.87, 1.3199999), ("hoje", 1.3199999, 1.77), ("ela", 1.86, 2.1299999),
    ("tem", 2.1299999, 2.339976), ("dez", 2.34, 2.6699998), ("anos", 2.6699998, 3.12),
]  # fmt: skip


async def test_word_times_are_relative_to_their_segment_as_in_the_documents_example(trd: Trd) -> None:
    job = await finished(trd, JobStatus.COMPLETED)
    words = tuple(Word(text=t, start=0.861 + s, end=0.861 + e, confidence=1.0) for t, s, e in EXAMPLE_WORDS)
    text = " ".join(t for t, _, _ in EXAMPLE_WORDS)
    segment = Segment(channel=0, speaker="1", start=0.861, end=4.12, text=text, confidence=0.99, words=words)
    transcript = Transcript(job_id=job.id, language="pt", duration=4.531, channels=1, segments=(segment,))
    await trd.state.put(result_key("acme", job.id), transcript.model_dump(mode="json"))
    [rendered] = (await trd.client.get(f"/trd/v3/job/result/{job.id}", headers=trd.auth)).json()["segments"]
    shown = [(w["text"], w["start_time"], w["end_time"]) for w in rendered["alternatives"][0]["words"]]
    for (word, start, end), (text_, start_, end_) in zip(shown, EXAMPLE_WORDS, strict=True):
        assert (
            word == text_
            and start == pytest.approx(start_, abs=1e-3)
            and end == pytest.approx(end_, abs=1e-3)
        )
        # a CPqD client places a word by adding the segment's start: it must land in the segment
        assert rendered["start"] <= rendered["start"] + start <= rendered["start"] + end <= rendered["end"]


@pytest.mark.parametrize(
    "status", [JobStatus.QUEUED, JobStatus.IN_PROGRESS, JobStatus.FAILED, JobStatus.STOPPED]
)
async def test_a_result_that_is_not_there_is_refused_naming_the_state(trd: Trd, status: JobStatus) -> None:
    """Never ``"segments": []`` for an unfinished job: a client would store it as an empty transcript."""
    job = await finished(trd, status, failure_reason="no audio track" if status == JobStatus.FAILED else "")
    for params in ({}, {"format": "csv"}):
        response = await trd.client.get(f"/trd/v3/job/result/{job.id}", params=params, headers=trd.auth)
        assert response.status_code == 400, response.text
        assert f"is {status.value}" in response.json()["detail"]


async def test_list_is_oldest_first_as_in_the_documents_example(trd: Trd) -> None:
    created = [(await trd.create()).json()["job"]["id"] for _ in range(4)]
    listed = (await trd.client.get("/trd/v3/job", params={"page": 1, "limit": 100}, headers=trd.auth)).json()
    assert [r["job"]["id"] for r in listed["results"]] == created == sorted(created)
    queried = (await trd.client.get("/trd/v3/query/job", headers=trd.auth)).json()
    assert [r["job"]["id"] for r in queried["results"]] == created
    first_page = (await trd.client.get("/trd/v3/job", params={"limit": 2}, headers=trd.auth)).json()
    await trd.create()  # a job added meanwhile leaves the pages already read as they were
    again = (await trd.client.get("/trd/v3/job", params={"limit": 2}, headers=trd.auth)).json()
    assert again["results"] == first_page["results"] and again["total"] == 5


async def test_md5_and_size_are_answered_at_upload_and_kept_when_the_job_fails(trd: Trd) -> None:
    audio = b"RIFF" + b"x" * 400  # what create sends: not readable audio, so ingest will fail it
    created = (await trd.create()).json()["job"]
    assert created["media"]["md5"] == hashlib.md5(audio).hexdigest() and created["media"]["size"] == len(
        audio
    )
    await ingest.handle(_upload_event(trd, created), trd.app_deps)
    failed = (await trd.client.get(f"/trd/v3/job/status/{created['id']}", headers=trd.auth)).json()["job"]
    assert failed["status"] == "FAILED"
    assert (failed["media"]["md5"], failed["media"]["size"]) == (created["media"]["md5"], len(audio))
    retried = (await trd.client.post(f"/trd/v3/job/retry/{created['id']}", headers=trd.auth)).json()["job"]
    assert (retried["media"]["md5"], retried["media"]["size"]) == (created["media"]["md5"], len(audio))


def _upload_event(trd: Trd, job: dict[str, Any]) -> ObjectCreated:
    key = f"uploads/acme/{job['id']}/{job['filename']}"
    return ObjectCreated(id=key, bucket=trd.app_deps.settings.media_bucket, key=key, size=404, etag="e")


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
    oldest_first = sorted(visible, key=lambda r: r.id)
    assert [r["job"]["id"] for r in page["results"]] == [r.id for r in oldest_first[200:300]]
    tagged = (
        await trd.client.get("/trd/v3/job", params={"tag": "t2", "limit": 1000}, headers=trd.auth)
    ).json()
    assert tagged["total"] == sum(1 for r in visible if r.tag == "t2")

    params: dict[str, str | int] = {
        "status": "COMPLETED", "filename": "f3.wav", "start_date": "2026-03-10T00:00:00+00:00",
        "end_date": "2026-03-20T00:00:00.000+00:00", "limit": 7, "page": 2,
    }  # fmt: skip
    found = (await trd.client.get("/trd/v3/query/job", params=params, headers=trd.auth)).json()
    expected = [r for r in oldest_first if r.status == "COMPLETED" and r.filename == "f3.wav"
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
