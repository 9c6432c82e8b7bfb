"""What a caller is told about media that cannot be transcribed: what is wrong with it, in each
dialect's own place for it (Harf ``reason``, Watson ``warnings``, TRD ``failure_reason``), and
never where the server kept it (its ``shenava-fetch-…`` / ``shenava-ingest-…`` temporary paths)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from events.models import ObjectCreated
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.jobs import JobDocument, JobStatus
from functions.common.media_store import upload_key
from functions.common.reasons import public_reason
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.ingest import handler as ingest
from tests.fakes import DirMediaStore, MemoryBus

NOT_MEDIA = b"this is a text file, not a recording\n" * 10
SAID = "the file is not a readable audio or video file (Invalid data found when processing input)"
TEMP = re.compile(rf"shenava-\w+-|{re.escape(tempfile.gettempdir())}/")


@dataclass
class Client:
    http: httpx.AsyncClient
    deps: Deps
    key: str

    def auth(self, scheme: str = "Bearer") -> dict[str, str]:
        return {"Authorization": f"{scheme} {self.key}"}

    async def ingest(self, job_id: str) -> None:
        """What the upload's bucket event does: ingest reads (and here fails on) the media."""
        job = await self.deps.jobs.get("acme", job_id)
        key = upload_key("acme", job.id, job.filename)
        bucket = self.deps.settings.media_bucket
        await ingest.handle(
            ObjectCreated(id=key, bucket=bucket, key=key, size=len(NOT_MEDIA), etag="e"), self.deps
        )
        assert (await self.deps.jobs.get("acme", job_id)).status == JobStatus.FAILED


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), rate_limit_per_minute=0)
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path / "media"), bus=MemoryBus())
    key = await create_key(state, "acme")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
    async with app.router.lifespan_context(app), http:
        yield Client(http, app.state.deps, key)


async def test_harf_says_what_is_wrong_with_the_file(client: Client) -> None:
    files = {"media": ("talk.mp3", NOT_MEDIA, "audio/mpeg")}
    submitted = await client.http.post(
        "/api/transcribe_files/", files=files, data={"wait": "false"}, headers=client.auth("Token")
    )
    [task_id] = submitted.json()["task_ids"]
    await client.ingest(task_id)
    polled = await client.http.post(
        "/api/transcribe_files/", json={"task_ids": [task_id], "wait": False}, headers=client.auth("Token")
    )
    body = polled.json()
    assert body["state"] == "FAILURE" and body["reason"] == SAID, body


async def test_watson_warnings_say_what_is_wrong_with_the_file(client: Client) -> None:
    created = await client.http.post(
        "/v1/recognitions", content=NOT_MEDIA, headers={**client.auth(), "Content-Type": "audio/wav"}
    )
    job_id = created.json()["id"]
    await client.ingest(job_id)
    body = (await client.http.get(f"/v1/recognitions/{job_id}", headers=client.auth())).json()
    assert body["status"] == "failed" and body["warnings"] == [SAID], body


async def test_trd_failure_reason_says_what_is_wrong_with_the_file(client: Client) -> None:
    files = {"upload_file": ("nasceu.wav", NOT_MEDIA, "audio/x-wav")}
    created = await client.http.post("/trd/v3/job/create", files=files, headers=client.auth())
    job_id = created.json()["job"]["id"]
    await client.ingest(job_id)
    job = (await client.http.get(f"/trd/v3/job/status/{job_id}", headers=client.auth())).json()["job"]
    assert job["status"] == "FAILED" and job["failure_reason"] == SAID, job
    listed = (await client.http.get("/trd/v3/job", headers=client.auth())).json()["results"]
    assert [r["job"]["failure_reason"] for r in listed] == [SAID]


async def test_the_synchronous_trd_endpoint_refuses_with_the_problem_only(client: Client) -> None:
    files = {"upload_file": ("nasceu.wav", NOT_MEDIA, "audio/x-wav")}
    response = await client.http.post("/trd/v3/transcribe", files=files, headers=client.auth())
    assert response.status_code == 400 and response.json()["detail"] == SAID


async def test_reasons_stored_with_a_path_are_shown_without_it(client: Client) -> None:
    """Jobs that failed before paths were kept out of reasons, or through another tool's message."""
    stored = "the file is not a readable audio or video file (/tmp/shenava-ingest-k2j3/source: Invalid data)"
    job = JobDocument(id="0190a000-0000-7000-8000-0000000000c1", tenant="acme", source="trd",
                      status=JobStatus.FAILED, failure_reason=stored)  # fmt: skip
    await client.deps.jobs.create(job)
    body = (await client.http.get(f"/trd/v3/job/status/{job.id}", headers=client.auth())).json()
    assert body["job"]["failure_reason"] == "the file is not a readable audio or video file (Invalid data)"
    warnings = (await client.http.get(f"/v1/recognitions/{job.id}", headers=client.auth())).json()["warnings"]
    assert not TEMP.search(" ".join(warnings))


URL = "https://example.org/shenava-demo.wav answered HTTP 404"


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("x (/tmp/shenava-fetch-ab12/0/media: Invalid data)", "x (Invalid data)"),
        ("Error opening '/var/tmp/shenava-asr-q/audio.wav': oops", "Error opening 'the file': oops"),
        (URL, URL),  # a URL's path is the caller's, not ours
    ],
)
def test_only_server_paths_are_taken_out(said: str, shown: str) -> None:
    assert public_reason(said) == shown
