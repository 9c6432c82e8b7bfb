"""The handlers' logic over in-memory fakes (real ffprobe/ffmpeg, scripted engine)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.models import JobCompleted, JobFailed, JobQueued, JobStarted, ObjectCreated
from functions.common.bootstrap import Deps
from functions.common.jobs import JobDocument, JobStatus, Stage, result_key
from functions.common.media_store import upload_key
from functions.ingest import handler as ingest
from functions.transcribe import handler as transcribe
from tests.fakes import ScriptedEngine, memory_deps


def tone(path: Path, seconds: float = 1.0, channels: int = 1, same: bool = False) -> Path:
    """A 440 Hz tone; in stereo the right channel is 880 Hz unless ``same``."""
    right = "sin(440*2*PI*t)" if same else "sin(880*2*PI*t)"
    expression = "sin(440*2*PI*t)" + (f"|{right}" if channels == 2 else "")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc={expression}:s=22050:d={seconds}",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    engine = ScriptedEngine({0: ["left one", "left two"], 1: ["right one"]})
    async with memory_deps(tmp_path, engine=engine) as built:
        yield built


async def uploaded(deps: Deps, media: Path) -> tuple[JobDocument, ObjectCreated]:
    job = JobDocument(id="0190a000-0000-7000-8000-000000000001", tenant="t1", source="watson")
    await deps.jobs.create(job)
    key = upload_key("t1", job.id, media.name)
    await deps.media.put_file(key, media, "audio/wav")
    event = ObjectCreated(
        id=f"shenava-media/{key}@e1", bucket="shenava-media", key=key, size=media.stat().st_size, etag="e1"
    )
    return job, event


async def test_ingest_probes_normalises_and_queues_once(deps: Deps, tmp_path: Path) -> None:
    job, event = await uploaded(deps, tone(tmp_path / "a.wav", 2.0, channels=2))
    first = await ingest.handle(event, deps)
    again = await ingest.handle(event, deps)
    assert [type(e) for e in first] == [JobQueued]
    assert [e.id for e in again] == [e.id for e in first]
    stored = await deps.jobs.get("t1", job.id)
    assert stored.stage == Stage.NORMALIZED
    assert stored.media.channels == 2 and stored.media.sample_rate == 22050
    assert abs(stored.media.duration - 2.0) < 0.05 and len(stored.media.md5) == 32
    assert stored.media.normalized_key in deps.media.stored_keys()  # type: ignore[attr-defined]
    assert 800 < stored.media.bandwidth < 900 and not stored.media.redundant_channel


async def test_stereo_with_the_same_signal_twice_is_transcribed_once(deps: Deps, tmp_path: Path) -> None:
    job, event = await uploaded(deps, tone(tmp_path / "dup.wav", 1.0, channels=2, same=True))
    [queued] = await ingest.handle(event, deps)
    [started] = await transcribe.handle(queued, deps)
    await transcribe.handle(started, deps)
    stored = await deps.jobs.get("t1", job.id)
    assert stored.media.redundant_channel and stored.media.channels == 2
    assert isinstance(deps.engine, ScriptedEngine)
    assert [channel for channel, _ in deps.engine.calls] == [0]
    assert len(stored.media.speech) == 2 and stored.media.speech[1] == 0


async def test_ingest_fails_the_job_with_a_reason_for_random_bytes(deps: Deps, tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(bytes(range(256)) * 40)
    job, event = await uploaded(deps, junk)
    produced = await ingest.handle(event, deps)
    assert len(produced) == 1 and isinstance(produced[0], JobFailed)
    stored = await deps.jobs.get("t1", job.id)
    assert stored.status == JobStatus.FAILED
    assert "not a readable audio or video file" in stored.failure_reason


async def test_drop_folder_file_becomes_one_job_however_often_its_event_arrives(
    deps: Deps, tmp_path: Path
) -> None:
    media = tone(tmp_path / "call.wav")
    await deps.media.put_file("incoming/batch1/call.wav", media, "audio/wav")
    event = ObjectCreated(id="x", bucket="shenava-media", key="incoming/batch1/call.wav", size=1, etag="e9")
    first = await ingest.handle(event, deps)
    second = await ingest.handle(event, deps)
    assert len(first) == 1 and first[0].id == second[0].id
    jobs = await deps.jobs.list_ids(deps.settings.drop_tenant)
    assert len(jobs) == 1
    job = await deps.jobs.get(deps.settings.drop_tenant, jobs[0])
    assert (job.batch, job.filename, job.source) == ("batch1", "call.wav", "drop")


async def test_objects_outside_the_media_prefixes_are_ignored(deps: Deps) -> None:
    for key in ["normalized/t1/x.wav", "results/b/x.json", "incoming/", "incoming/b/"]:
        event = ObjectCreated(id=key, bucket="shenava-media", key=key, etag="e")
        assert await ingest.handle(event, deps) == []


async def test_transcribe_claims_runs_each_channel_and_completes_once(deps: Deps, tmp_path: Path) -> None:
    job, event = await uploaded(deps, tone(tmp_path / "s.wav", 1.0, channels=2))
    [queued] = await ingest.handle(event, deps)
    [started] = await transcribe.handle(queued, deps)
    assert isinstance(started, JobStarted)
    # a redelivered job.queued re-announces the same event id (the stream drops the repeat)
    assert [e.id for e in await transcribe.handle(queued, deps)] == [started.id]
    [completed] = await transcribe.handle(started, deps)
    [again] = await transcribe.handle(started, deps)  # redelivered after completion
    assert isinstance(completed, JobCompleted) and again.id == completed.id
    stored = await deps.jobs.get("t1", job.id)
    assert stored.status == JobStatus.COMPLETED and stored.completed_at is not None
    transcript = (await deps.state.get(result_key("t1", job.id)))[0]  # type: ignore[index]
    by_channel = {(s["channel"], s["text"]) for s in transcript["segments"]}
    assert by_channel == {(0, "left one"), (0, "left two"), (1, "right one")}
    assert stored.media.speech == [1.8, 0.9]  # seconds of speech per channel


async def test_a_stopped_job_is_not_completed(deps: Deps, tmp_path: Path) -> None:
    job, event = await uploaded(deps, tone(tmp_path / "m.wav"))
    [queued] = await ingest.handle(event, deps)
    [started] = await transcribe.handle(queued, deps)

    def stop(current: JobDocument) -> bool:
        current.status = JobStatus.STOPPED
        return True

    await deps.jobs.change("t1", job.id, stop)
    assert await transcribe.handle(started, deps) == []
    assert (await deps.jobs.get("t1", job.id)).status == JobStatus.STOPPED


async def test_engine_failure_exhaustion_marks_the_job_failed(deps: Deps, tmp_path: Path) -> None:
    job, event = await uploaded(deps, tone(tmp_path / "m.wav"))
    [queued] = await ingest.handle(event, deps)
    [failed] = await transcribe.on_failure(queued, deps, "engine crashed (gave up after 8 attempts)")
    assert isinstance(failed, JobFailed)
    stored = await deps.jobs.get("t1", job.id)
    assert stored.status == JobStatus.FAILED and "engine crashed" in stored.failure_reason


async def dropped(deps: Deps, media: Path, key: str) -> ObjectCreated:
    await deps.media.put_file(key, media, "audio/wav")
    return ObjectCreated(
        id=f"shenava-media/{key}@e1", bucket="shenava-media", key=key, size=media.stat().st_size, etag="e1"
    )


async def dropped_job(deps: Deps, event: ObjectCreated) -> JobDocument:
    job = await ingest.job_for_object(event, deps)
    assert job is not None
    return await deps.jobs.get(job.tenant, job.id)


async def test_drop_folder_files_are_portuguese_unless_their_batch_says(deps: Deps, tmp_path: Path) -> None:
    media = tone(tmp_path / "call.wav")
    plain = await dropped(deps, media, "incoming/b1/call.wav")
    await deps.media.put_bytes("incoming/b2/_config.json", b'{"language": "en"}', "application/json")
    await deps.media.put_bytes("incoming/b3/_config.json", b'{"language": "auto"}', "application/json")
    english = await dropped(deps, media, "incoming/b2/call.wav")
    detected = await dropped(deps, media, "incoming/b3/call.wav")

    assert [type(e) for e in await ingest.handle(plain, deps)] == [JobQueued]
    assert (await dropped_job(deps, plain)).options.language == "pt"
    assert (await dropped_job(deps, english)).options.language == "en"
    assert (await dropped_job(deps, detected)).options.language is None


async def test_a_batch_config_is_not_a_file_of_the_batch(deps: Deps) -> None:
    await deps.media.put_bytes("incoming/b1/_config.json", b'{"language": "en"}', "application/json")
    event = ObjectCreated(
        id="shenava-media/incoming/b1/_config.json@e1", bucket="shenava-media",
        key="incoming/b1/_config.json", size=18, etag="e1",
    )  # fmt: skip

    assert await ingest.handle(event, deps) == []
    assert await deps.jobs.list_ids(deps.settings.drop_tenant) == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [(b'{"language": "xx"}', "unknown language"), (b'{"langauge": "en"}', "langauge"), (b"{", "not valid")],
)
async def test_a_wrong_batch_config_fails_its_files_with_the_reason(
    deps: Deps, tmp_path: Path, config: bytes, problem: str
) -> None:
    await deps.media.put_bytes("incoming/b1/_config.json", config, "application/json")
    event = await dropped(deps, tone(tmp_path / "call.wav"), "incoming/b1/call.wav")

    [failed] = await ingest.handle(event, deps)

    assert isinstance(failed, JobFailed)
    job = await dropped_job(deps, event)
    assert job.status == JobStatus.FAILED
    assert "_config.json" in job.failure_reason and problem in job.failure_reason
