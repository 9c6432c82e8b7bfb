"""The TRD batch API's control flow over in-memory stores, with the real ingest and transcribe
handlers (real ffmpeg, a scripted engine) run by hand so every step is deterministic."""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from events.models import Event, JobQueued, ObjectCreated
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.ingest import handler as ingest
from functions.transcribe import handler as transcribe
from tests.fakes import DirMediaStore, MemoryBus, ScriptedEngine


@dataclass
class Batch:
    client: httpx.AsyncClient
    deps: Deps
    bus: MemoryBus  # the test delivers what the API publishes

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params)

    async def drop(self, name: str, media: Path) -> ObjectCreated:
        key = f"incoming/b1/{name}"
        await self.deps.media.put_file(key, media, "audio/wav")
        bucket, size = self.deps.settings.media_bucket, media.stat().st_size
        return ObjectCreated(id=key, bucket=bucket, key=key, size=size, etag=f"etag-{name}")

    async def run(self, events: Sequence[Event]) -> list[Event]:
        """Deliver events to ingest and transcribe until nothing new is produced."""
        produced: list[Event] = []
        pending = list(events)
        while pending:
            event = pending.pop(0)
            handler = ingest.handle if isinstance(event, ObjectCreated) else transcribe.handle
            new = await handler(event, self.deps)
            produced += new
            pending += new
        return produced


def tone(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=1",
                    "-ar", "8000", str(path)], check=True)  # fmt: skip
    return path


@pytest.fixture
async def batch(tmp_path: Path) -> AsyncIterator[Batch]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), drop_autostart=False)
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    bus = MemoryBus()
    app = create_app(settings, state=state, media=media, bus=bus)
    key = await create_key(state, settings.drop_tenant)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s",
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    async with app.router.lifespan_context(app), client:
        deps = app.state.deps
        deps.engine = ScriptedEngine({0: ["bom dia", "tudo bem"]}, language="pt")
        yield Batch(client, deps, bus)


async def test_files_wait_idle_start_pause_resume_and_finish(batch: Batch, tmp_path: Path) -> None:
    first = await batch.drop("a.wav", tone(tmp_path / "a.wav"))
    second = await batch.drop("b.wav", tone(tmp_path / "b.wav"))
    assert await batch.run([first, second]) == []  # registered, IDLE: nothing moves
    status = (await batch.get("/trd/transcription/status/batch/b1")).json()
    assert status["accounted_control"] == {"IDLE": {"bytes": status["total_bytes"], "files": 2}}
    assert status["accounted_status"]["INITIAL"]["files"] == 2 and status["progress"] == 0

    started = (await batch.get("/trd/transcription/start/batch/b1")).json()
    assert set(started) == {"a.wav", "b.wav"} and all("/trd/audiofile/" in url for url in started.values())
    a_id = started["a.wav"].rsplit("/", 1)[1]
    resumes = list(batch.bus.events)
    assert len(resumes) == 2 and all(isinstance(e, ObjectCreated) for e in resumes)

    # a.wav is normalised, then paused: recognition must not begin
    normalised = await ingest.handle(resumes[0], batch.deps)
    assert [type(e) for e in normalised] == [JobQueued]
    paused = (await batch.get(f"/trd/transcription/stop/audiofile/{a_id}")).json()
    assert (paused["control"], paused["status"]) == ("PAUSED", "NORMALIZED")
    assert paused["audioChannels"][0]["channel"] == 1 and paused["info"]["InputSamplingRate"] == "8000"
    assert await transcribe.handle(normalised[0], batch.deps) == []
    assert (await batch.get(f"/trd/audiofile/{a_id}")).json()["status"] == "NORMALIZED"
    conflict = await batch.get(f"/trd/transcription/stop/audiofile/{a_id}")
    assert conflict.status_code == 400 and "not running" in conflict.json()["detail"]  # TRD has no 409

    batch.bus.events.clear()
    assert (await batch.get(f"/trd/transcription/start/audiofile/{a_id}")).json()["control"] == "RUNNING"
    [queued_again] = batch.bus.events
    assert isinstance(queued_again, JobQueued) and queued_again.id != normalised[0].id
    await batch.run([queued_again, resumes[1]])

    status = (await batch.get("/trd/transcription/status/batch/b1")).json()
    assert status["progress"] == status["recognition"] == status["normalization"] == 1
    assert status["accounted_control"] == {"FINISHED": {"bytes": status["total_bytes"], "files": 2}}
    assert status["accounted_recognition"]["RECOGNIZED"]["segments"] == 4
    assert status["total_files"] == 2 and status["ETA"] == 0 and status["speech2audio_rate"] > 0
    assert (await batch.get(f"/trd/transcription/status/audiofile/{a_id}")).json()["total_segments"] == 2
    keys = batch.deps.media.stored_keys()  # type: ignore[attr-defined]
    assert {"results/b1/a.wav.json", "results/b1/a.wav.csv", "results/b1/b.wav.json"} <= set(keys)


async def finish_all(batch: Batch, tmp_path: Path) -> dict[str, str]:
    events = [await batch.drop(n, tone(tmp_path / n)) for n in ("a.wav", "b.wav", "c.wav")]
    await batch.run(events)
    started = (await batch.get("/trd/transcription/start/batch/b1")).json()
    await batch.run(list(batch.bus.events))
    batch.bus.events.clear()
    return {name: url.rsplit("/", 1)[1] for name, url in started.items()}


@pytest.mark.parametrize("fmt", ["json", "csv", "json-array"])
async def test_batch_results_zip_in_each_format(batch: Batch, tmp_path: Path, fmt: str) -> None:
    await finish_all(batch, tmp_path)
    response = await batch.get("/trd/transcription/result/batch/b1", format=fmt)
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = ("a.wav", "b.wav", "c.wav")
    expected = {f"{n}.{fmt}" for n in names} if fmt != "json-array" else {"b1.json"}
    assert set(archive.namelist()) == expected
    if fmt == "csv":
        assert (
            archive.read("a.wav.csv").decode().splitlines()[0].startswith("contador,canal,início,fim,speaker")
        )
    bad = await batch.get("/trd/transcription/result/batch/b1", format="xml")
    assert bad.status_code == 422


async def test_reset_a_file_and_a_batch(batch: Batch, tmp_path: Path) -> None:
    ids = await finish_all(batch, tmp_path)
    fresh = (await batch.get(f"/trd/transcription/reset/audiofile/{ids['a.wav']}")).json()
    assert (fresh["control"], fresh["status"], fresh["filename"]) == ("IDLE", "INITIAL", "a.wav")
    assert (await batch.get(f"/trd/audiofile/{ids['a.wav']}")).status_code == 404  # the old id is gone

    soft = (await batch.get("/trd/transcription/reset/batch/b1")).json()  # only unfinished files
    control = soft["accounted_control"]
    assert (control["FINISHED"]["files"], control["IDLE"]["files"], len(control)) == (2, 1, 2)
    hard = (await batch.get("/trd/transcription/reset/batch/b1", hard="true")).json()
    assert set(hard["accounted_control"]) == {"IDLE"} and hard["accounted_control"]["IDLE"]["files"] == 3
    assert hard["progress"] == 0 and hard["total_files"] == 3

    # a reset file, dropped again under the same name and content, is still one file
    await batch.run([await batch.drop("a.wav", tmp_path / "a.wav")])
    assert (await batch.get("/trd/transcription/status/batch/b1")).json()["total_files"] == 3


async def test_unknown_batches_and_files_are_404(batch: Batch) -> None:
    response = await batch.get("/trd/transcription/status/batch/nope")
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert (await batch.get("/trd/transcription/start/audiofile/nope")).status_code == 404
