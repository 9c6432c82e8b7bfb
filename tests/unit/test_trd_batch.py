"""The TRD batch API's control flow over in-memory stores, with the real ingest and transcribe
handlers (real ffmpeg, a scripted engine) run by hand so every step is deterministic."""

from __future__ import annotations

import hashlib
import io
import json
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

    async def drop(self, name: str, media: Path, etag: str = "", sequencer: str = "") -> ObjectCreated:
        """An S3 client writes ``incoming/b1/<name>``; the object's event (a new ``etag``: a new version)."""
        key = f"incoming/b1/{name}"
        await self.deps.media.put_file(key, media, "audio/wav")
        bucket, size = self.deps.settings.media_bucket, media.stat().st_size
        etag = etag or f"etag-{name}"
        return ObjectCreated(
            id=f"{key}@{etag}", bucket=bucket, key=key, size=size, etag=etag, sequencer=sequencer
        )

    def stored(self) -> set[str]:
        return set(self.deps.media.stored_keys())  # type: ignore[attr-defined]

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


def tone(path: Path, seconds: float = 1.0) -> Path:
    sine = f"sine=frequency=300:duration={seconds}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", sine, "-ar", "8000", str(path)],
                   check=True)  # fmt: skip
    return path


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


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


async def test_a_reset_answers_the_new_file_with_its_new_id(batch: Batch, tmp_path: Path) -> None:
    """ "O resultado são as informações do novo arquivo de áudio, com novo ID e em estado inicial." """
    ids = await finish_all(batch, tmp_path)
    before = (await batch.get(f"/trd/audiofile/{ids['a.wav']}")).json()
    assert before["id"] == ids["a.wav"] and before["md5"] == md5_of(tmp_path / "a.wav")
    fresh = (await batch.get(f"/trd/transcription/reset/audiofile/{ids['a.wav']}")).json()
    assert fresh["id"] != ids["a.wav"] and (fresh["control"], fresh["status"]) == ("IDLE", "INITIAL")
    assert (
        fresh["md5"] == before["md5"] and fresh["size"] == before["size"]
    )  # "gerado no momento do cadastro"
    assert (await batch.get(f"/trd/audiofile/{fresh['id']}")).json() == fresh
    assert (await batch.get(f"/trd/transcription/start/audiofile/{fresh['id']}")).json()[
        "control"
    ] == "RUNNING"
    assert "results/b1/a.wav.json" not in batch.stored()  # its old result is gone with it
    await batch.run(list(batch.bus.events))
    assert (await batch.get(f"/trd/audiofile/{fresh['id']}")).json()["control"] == "FINISHED"


async def test_a_file_dropped_again_is_a_new_version_of_its_record(batch: Batch, tmp_path: Path) -> None:
    ids = await finish_all(batch, tmp_path)
    again = await batch.drop("a.wav", tone(tmp_path / "longer.wav", 2.0), etag="etag-a.wav-v2")
    await batch.run([again])
    status = (await batch.get("/trd/transcription/status/batch/b1")).json()
    assert status["total_files"] == 3  # one record per name
    assert (await batch.get(f"/trd/audiofile/{ids['a.wav']}")).status_code == 404  # the old version's
    assert "results/b1/a.wav.json" not in batch.stored()  # and its result, reset
    started = (await batch.get("/trd/transcription/start/batch/b1")).json()
    assert set(started) == {"a.wav", "b.wav", "c.wav"}
    new_id = started["a.wav"].rsplit("/", 1)[1]
    assert (await batch.get(f"/trd/audiofile/{new_id}")).json()["md5"] == md5_of(tmp_path / "longer.wav")
    await batch.run(list(batch.bus.events))
    await batch.run([again, await batch.drop("a.wav", tmp_path / "a.wav")])  # late: the old event
    zipped = await batch.get("/trd/transcription/result/batch/b1", format="csv")
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert sorted(names) == ["a.wav.csv", "b.wav.csv", "c.wav.csv"]
    assert (await batch.get("/trd/transcription/status/batch/b1")).json()["total_files"] == 3


async def test_an_older_versions_late_first_event_does_not_take_the_name_back(
    batch: Batch, tmp_path: Path
) -> None:
    old = await batch.drop("a.wav", tone(tmp_path / "old.wav"), etag="v1", sequencer="0062D8A7C4F1000001")
    new = await batch.drop(
        "a.wav", tone(tmp_path / "new.wav", 2.0), etag="v2", sequencer="0062D8A7C4F1000002"
    )
    await batch.run([new, old])  # unordered delivery, as SQS does
    started = (await batch.get("/trd/transcription/start/batch/b1")).json()
    [url] = started.values()
    record = (await batch.get(f"/trd/audiofile/{url.rsplit('/', 1)[1]}")).json()
    assert record["md5"] == md5_of(tmp_path / "new.wav")


async def test_md5_is_known_at_registration_and_kept_by_a_failed_file(batch: Batch, tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_bytes(b"not audio at all\n" * 20)
    await batch.run([await batch.drop("notes.wav", text)])  # IDLE: nothing processed yet
    [url] = (await batch.get("/trd/transcription/stop/batch/b1")).json().values()
    file_id = url.rsplit("/", 1)[1]
    assert (await batch.get(f"/trd/audiofile/{file_id}")).json()["md5"] == md5_of(text)
    await batch.get(f"/trd/transcription/start/audiofile/{file_id}")
    await batch.run(list(batch.bus.events))
    failed = (await batch.get(f"/trd/audiofile/{file_id}")).json()
    assert failed["control"] == "FAILED" and failed["md5"] == md5_of(text) and failed["size"] == 340

    batch.deps.settings.drop_autostart = True  # a file that starts at once fails on its first read
    await batch.run([await batch.drop("notes2.wav", text)])
    files = (await batch.get("/trd/transcription/stop/batch/b1")).json()
    second = (await batch.get(f"/trd/audiofile/{files['notes2.wav'].rsplit('/', 1)[1]}")).json()
    assert second["control"] == "FAILED" and second["md5"] == md5_of(text)


async def test_results_may_be_read_at_any_time_in_either_format(batch: Batch, tmp_path: Path) -> None:
    """ "O resultado pode ser consultado a qualquer momento, porém poderão apresentar resultados
    parciais." """
    await batch.run([await batch.drop("a.wav", tone(tmp_path / "a.wav"))])
    [url] = (await batch.get("/trd/transcription/start/batch/b1")).json().values()
    file_id = url.rsplit("/", 1)[1]
    as_json = await batch.get(f"/trd/transcription/result/audiofile/{file_id}", format="JSON")
    assert as_json.status_code == 200 and as_json.json()["segments"] == []
    as_csv = await batch.get(f"/trd/transcription/result/audiofile/{file_id}", format="csv")
    assert as_csv.status_code == 200 and as_csv.text.splitlines() == [as_csv.text.splitlines()[0]]
    assert as_csv.text.startswith("contador,canal,início,fim,speaker")
    zipped = await batch.get("/trd/transcription/result/batch/b1", format="CSV")  # any case, as per file
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"


async def test_a_paused_batch_reports_no_eta(batch: Batch, tmp_path: Path) -> None:
    await batch.run([await batch.drop(n, tone(tmp_path / n, 3.0)) for n in ("a.wav", "b.wav")])
    await batch.get("/trd/transcription/start/batch/b1")
    for resumed in list(batch.bus.events):  # normalised (durations known), not yet recognised
        await ingest.handle(resumed, batch.deps)
    assert (await batch.get("/trd/transcription/status/batch/b1")).json()["ETA"] > 0
    await batch.get("/trd/transcription/stop/batch/b1")
    assert (await batch.get("/trd/transcription/status/batch/b1")).json()["ETA"] == 0


async def test_a_hard_reset_leaves_no_results_behind(batch: Batch, tmp_path: Path) -> None:
    await finish_all(batch, tmp_path)
    assert {k for k in batch.stored() if k.startswith("results/b1/")}
    await batch.get("/trd/transcription/reset/batch/b1", hard="true")
    assert not {k for k in batch.stored() if k.startswith("results/b1/")}


async def test_files_of_one_name_in_two_subfolders_keep_results_of_their_own(
    batch: Batch, tmp_path: Path
) -> None:
    (tmp_path / "east").mkdir()
    (tmp_path / "west").mkdir()
    east, west = tone(tmp_path / "east" / "x.wav"), tone(tmp_path / "west" / "x.wav", 2.0)
    await batch.run([await batch.drop("east/x.wav", east), await batch.drop("west/x.wav", west)])
    await batch.get("/trd/transcription/start/batch/b1")
    await batch.run(list(batch.bus.events))
    ids = set()
    for folder in ("east", "west"):
        assert {f"results/b1/{folder}/x.wav.json", f"results/b1/{folder}/x.wav.csv"} <= batch.stored()
        path = tmp_path / "got.json"
        await batch.deps.media.download(f"results/b1/{folder}/x.wav.json", path)
        ids.add(json.loads(path.read_text())["id"])
    assert len(ids) == 2  # each file's own record, neither written over the other
    await batch.get("/trd/transcription/reset/batch/b1", hard="true")
    assert not {k for k in batch.stored() if k.startswith("results/b1/")}


async def test_unknown_batches_and_files_are_404(batch: Batch) -> None:
    response = await batch.get("/trd/transcription/status/batch/nope")
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert (await batch.get("/trd/transcription/start/audiofile/nope")).status_code == 404
