"""The console's JSON (/ui/api) and its page (/ui) over in-memory stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.jobs import JobDocument, JobStatus, MediaFacts, Progress, new_job_id, result_key
from functions.common.media_store import upload_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript, Word
from tests.fakes import DirMediaStore, MemoryBus


@dataclass
class Console:
    client: httpx.AsyncClient
    other: httpx.AsyncClient  # another tenant's key
    anonymous: httpx.AsyncClient
    deps: Deps

    async def job(self, status: JobStatus = JobStatus.COMPLETED, **fields: object) -> JobDocument:
        job = JobDocument(id=new_job_id(), tenant="acme", status=status, filename="call.wav",
                          media=MediaFacts(duration=20.0, channels=1, content_type="audio/wav"),
                          **fields)  # type: ignore[arg-type]  # fmt: skip
        await self.deps.jobs.create(job)
        return job


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path / "media"), bus=MemoryBus())
    key, other = await create_key(state, "acme"), await create_key(state, "globex")

    def client(key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=headers)

    async with app.router.lifespan_context(app), client(key) as c, client(other) as o, client(None) as a:
        yield Console(c, o, a, app.state.deps)


async def test_the_session_names_the_tenant_and_needs_a_key(console: Console) -> None:
    assert (await console.client.get("/ui/api/session")).json() == {"tenant": "acme"}
    refused = await console.anonymous.get("/ui/api/session")
    assert refused.status_code == 401 and "Authorization" in refused.json()["error"]


async def test_jobs_are_listed_newest_first_with_filters_and_running_progress(console: Console) -> None:
    old = await console.job(JobStatus.FAILED, failure_reason="not media", tag="first")
    progress = Progress(audio_s=5.0, total_s=20.0, segments=2)
    running = await console.job(JobStatus.IN_PROGRESS, progress=progress)
    newest = await console.job(JobStatus.COMPLETED, batch="b1")
    listed = (await console.client.get("/ui/api/jobs")).json()
    assert [j["id"] for j in listed["jobs"]] == [newest.id, running.id, old.id] and listed["total"] == 3
    assert listed["jobs"][1]["progress"] == {"fraction": 0.25, "audio_s": 5.0, "total_s": 20.0, "segments": 2}
    assert listed["jobs"][2]["failure_reason"] == "not media" and listed["jobs"][0]["progress"] is None

    async def ids(**params: str) -> list[str]:
        return [j["id"] for j in (await console.client.get("/ui/api/jobs", params=params)).json()["jobs"]]

    assert await ids(status="failed,completed") == [newest.id, old.id]
    assert await ids(q="FIRST") == [old.id] and await ids(batch="b1") == [newest.id]
    assert await ids(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert await ids(limit="1", page="2") == [running.id]
    assert (await console.other.get("/ui/api/jobs")).json()["jobs"] == []


async def test_a_finished_job_offers_its_transcript_and_downloads(console: Console) -> None:
    job = await console.job(JobStatus.COMPLETED)
    words = (Word(text=" Hello", start=1.0, end=1.4, confidence=0.9),
             Word(text=" world", start=1.5, end=2.0, confidence=0.3))  # fmt: skip
    transcript = Transcript(job_id=job.id, language="en", duration=20.0, channels=1, segments=(
        Segment(start=1.0, end=2.0, text=" Hello world", confidence=0.6, words=words, speaker="A",
                flags=("low_confidence",)),))  # fmt: skip
    await console.deps.state.put(result_key("acme", job.id), transcript.model_dump(mode="json"))
    summary = (await console.client.get(f"/ui/api/jobs/{job.id}")).json()
    assert summary["status"] == "COMPLETED" and summary["media"]["duration"] == 20.0
    paths = {d["label"]: d["path"] for d in summary["downloads"]}
    for path in paths.values():  # every download the console offers answers
        assert (await console.client.get(path)).status_code == 200, path
    body = (await console.client.get(f"/ui/api/jobs/{job.id}/transcript")).json()
    assert body["segments"][0]["words"][1] == {"text": " world", "start": 1.5, "end": 2.0, "confidence": 0.3}
    assert body["segments"][0]["flags"] == ["low_confidence"] and body["segments"][0]["speaker"] == "A"
    assert (await console.other.get(f"/ui/api/jobs/{job.id}/transcript")).status_code == 404


async def test_an_unfinished_job_has_no_transcript_yet(console: Console) -> None:
    job = await console.job(JobStatus.IN_PROGRESS)
    summary = (await console.client.get(f"/ui/api/jobs/{job.id}")).json()
    assert summary["downloads"] == [] and summary["progress"] is None
    early = await console.client.get(f"/ui/api/jobs/{job.id}/transcript")
    assert early.status_code == 409 and "IN_PROGRESS" in early.json()["error"]


async def test_media_is_served_to_its_owner_only_in_either_variant(console: Console) -> None:
    job = await console.job(JobStatus.COMPLETED)
    await console.deps.media.put_bytes(upload_key("acme", job.id, "call.wav"), b"RIFF-original", "audio/wav")
    normalized = f"normalized/acme/{job.id}.wav"
    await console.deps.media.put_bytes(normalized, b"RIFF-normalized", "audio/wav")

    def with_normalized(current: JobDocument) -> bool:
        current.media.normalized_key = normalized
        return True

    await console.deps.jobs.change("acme", job.id, with_normalized)
    original = await console.client.get(f"/ui/api/jobs/{job.id}/media")
    assert original.content == b"RIFF-original" and original.headers["content-type"] == "audio/wav"
    assert original.headers["accept-ranges"] == "bytes" and original.headers["content-length"] == "13"
    key, store = upload_key("acme", job.id, "call.wav"), console.deps.media
    assert isinstance(store, DirMediaStore)
    store.ranges_read.clear()
    ranged = await console.client.get(f"/ui/api/jobs/{job.id}/media", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"RIFF"  # a player can seek
    assert ranged.headers["content-range"] == "bytes 0-3/13"
    assert store.ranges_read == [(key, 0, 3)]  # only what was asked is read from the bucket
    tail = await console.client.get(f"/ui/api/jobs/{job.id}/media", headers={"Range": "bytes=-8"})
    assert tail.status_code == 206 and tail.content == b"original"
    beyond = await console.client.get(f"/ui/api/jobs/{job.id}/media", headers={"Range": "bytes=50-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == "bytes */13"
    again = await console.client.get(f"/ui/api/jobs/{job.id}/media", params={"variant": "normalized"})
    assert again.content == b"RIFF-normalized"
    assert (await console.other.get(f"/ui/api/jobs/{job.id}/media")).status_code == 404
    await console.deps.media.delete(upload_key("acme", job.id, "call.wav"))
    gone = await console.client.get(f"/ui/api/jobs/{job.id}/media")
    assert gone.status_code == 404 and "original" in gone.json()["error"]


async def test_batches_are_listed_with_their_files_progress_and_eta(console: Console) -> None:
    done = await console.job(JobStatus.COMPLETED, batch="lote-1")
    running = await console.job(JobStatus.IN_PROGRESS, batch="lote-1",
                                progress=Progress(audio_s=10.0, total_s=20.0))  # fmt: skip
    await console.job(JobStatus.COMPLETED)  # not in a batch
    listed = (await console.client.get("/ui/api/batches")).json()["batches"]
    assert [(b["batch"], b["files"], b["statuses"]) for b in listed] == [
        ("lote-1", 2, {"COMPLETED": 1, "IN_PROGRESS": 1})
    ]
    batch = (await console.client.get("/ui/api/batches/lote-1")).json()
    assert [(f["id"], f["control"], f["progress"]) for f in batch["files"]] == [
        (done.id, "FINISHED", 1.0),
        (running.id, "RUNNING", 0.5),
    ]
    assert batch["status"]["progress"] == 0.75 and batch["status"]["total_files"] == 2
    assert (await console.client.get("/ui/api/batches/nope")).status_code == 404


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(console: Console) -> None:
    page = await console.anonymous.get("/ui/")
    assert page.status_code == 200 and "<title>Shenava console</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (await console.anonymous.get("/ui")).headers["location"] == "/ui/"
    script = await console.anonymous.get("/ui/assets/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for missing in ("/ui/assets/console.py", "/ui/assets/..%2Fconsole.py", "/ui/assets/nope.js"):
        assert (await console.anonymous.get(missing)).status_code == 404, missing


def test_every_asset_the_page_loads_is_shipped() -> None:
    """Nothing is fetched from elsewhere: every module the scripts import is in the assets."""
    import re

    from functions.api.console import ASSETS, SHIPPED

    for script in ASSETS.glob("*.js"):
        for imported in re.findall(r'from "\./([\w.-]+)"', script.read_text()):
            assert imported in SHIPPED, (script.name, imported)
    page = (ASSETS / "index.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)
