"""A running transcription's progress: written as segments come, throttled, shown by TRD's batch API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.common.jobs import Accounted, JobDocument, JobRepository, JobStatus, MediaFacts, Progress
from functions.common.render_trd import render_batch_status, render_file_status
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment
from functions.transcribe import handler as transcribe
from functions.transcribe.progress import ProgressReporter

JOB_ID = "0190a000-0000-7000-8000-0000000000aa"


class WatchedJobs(JobRepository):
    """The job repository, with an event set on every conditional update (tests wait on it)."""

    def __init__(self) -> None:
        super().__init__(MemoryStateStore())
        self.changed = asyncio.Event()

    async def change(
        self, tenant: str, job_id: str, apply: Callable[[JobDocument], bool]
    ) -> JobDocument | None:
        found = await super().change(tenant, job_id, apply)
        self.changed.set()
        return found


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def segment(start: float, end: float, text: str = "words") -> Segment:
    return Segment(start=start, end=end, text=text, confidence=0.9)


async def running_job(jobs: JobRepository, duration: float = 60.0, channels: int = 1) -> JobDocument:
    job = JobDocument(id=JOB_ID, tenant="t1", status=JobStatus.IN_PROGRESS,
                      media=MediaFacts(duration=duration, channels=channels))  # fmt: skip
    await jobs.create(job)
    return job


async def test_progress_is_written_while_the_engine_decodes_the_next_batch() -> None:
    jobs = WatchedJobs()
    job = await running_job(jobs)
    next_batch = threading.Event()

    def engine() -> Iterator[Segment]:
        yield segment(0.0, 10.0, "bom dia")  # the first batch's segments come at once ...
        yield segment(10.0, 20.0, "")
        next_batch.wait(timeout=30)  # ... then the engine decodes the next batch
        yield segment(20.0, 30.0, "tudo bem")

    reporter = ProgressReporter(job, jobs, interval_s=0.05)
    lazy = engine()
    for _ in range(2):
        reporter.add(await reporter.pull(lazy))  # type: ignore[arg-type]
    jobs.changed.clear()
    third = asyncio.ensure_future(reporter.pull(lazy))
    await asyncio.wait_for(jobs.changed.wait(), 10)  # written while the engine is busy
    progress = (await jobs.get("t1", JOB_ID)).progress
    assert progress is not None and not third.done()
    assert (progress.audio_s, progress.total_s, progress.segments) == (20.0, 60.0, 2)
    assert progress.accounted == {"RECOGNIZED": Accounted(seconds=10.0, segments=1),
                                  "NO_MATCH": Accounted(seconds=10.0, segments=1)}  # fmt: skip
    next_batch.set()
    reporter.add(await asyncio.wait_for(third, 10))  # type: ignore[arg-type]
    assert reporter.progress.audio_s == 30.0 and reporter.progress.fraction == 0.5


async def test_writes_are_throttled_to_one_per_interval() -> None:
    jobs = WatchedJobs()
    job = await running_job(jobs, duration=100.0, channels=2)
    clock = FakeClock()

    def engine(channel: int) -> Iterator[Segment]:
        for n in range(50):  # 50 segments over 5 s of (fake) wall time per channel
            clock.now += 0.1
            yield segment(n * 2.0, n * 2.0 + 1.5).model_copy(update={"channel": channel})

    reporter = ProgressReporter(job, jobs, interval_s=2.0, monotonic=clock)
    for channel in (0, 1):
        assert len(await transcribe._pull_segments(engine(channel), job, reporter)) == 50
    assert 4 <= reporter.writes <= 6  # 10 s of work at one write per 2 s, never one per segment
    stored = (await jobs.get("t1", JOB_ID)).progress
    # At most one interval's segments (20) behind. Whether the last ones are written depends on
    # how long the final pull takes in real time (the wait while the engine works is real).
    assert stored is not None and stored.segments >= 80 and stored.total_s == 200.0
    assert reporter.progress.audio_s == 200.0 and reporter.progress.segments == 100


async def test_a_job_stopped_mid_run_stops_between_segments_and_keeps_its_state() -> None:
    jobs = WatchedJobs()
    job = await running_job(jobs)
    clock = FakeClock()
    pulled: list[Segment] = []

    def engine() -> Iterator[Segment]:
        for n in range(30):
            clock.now += 1.0
            if n == 5:
                asyncio.run_coroutine_threadsafe(jobs.change("t1", JOB_ID, stopped), loop).result(10)
            pulled.append(segment(float(n), n + 0.5))
            yield pulled[-1]

    def stopped(current: JobDocument) -> bool:
        current.status = JobStatus.STOPPED
        return True

    loop = asyncio.get_running_loop()
    reporter = ProgressReporter(job, jobs, interval_s=2.0, monotonic=clock)
    with pytest.raises(transcribe.JobStoppedWhileRunning):
        await transcribe._pull_segments(engine(), job, reporter)
    assert len(pulled) <= 8  # the first check after the stop ends it
    after = await jobs.get("t1", JOB_ID)
    assert after.status == JobStatus.STOPPED and after.progress is not None and after.progress.segments < 5


def running(duration: float, audio_s: float, started_s_ago: float, now: datetime) -> JobDocument:
    progress = Progress(audio_s=audio_s, total_s=duration, segments=3,
                        accounted={"RECOGNIZED": Accounted(seconds=12.0, segments=3)})  # fmt: skip
    return JobDocument(id=JOB_ID, tenant="t1", status=JobStatus.IN_PROGRESS, batch="b1", progress=progress,
                       started_at=now - timedelta(seconds=started_s_ago),
                       media=MediaFacts(duration=duration, channels=1))  # fmt: skip


def test_trd_file_status_shows_a_running_file_so_far_and_what_is_left() -> None:
    now = datetime.now(UTC)
    status = render_file_status(running(60.0, 20.0, 10.0, now))
    assert status == {
        "accounted_speech": {"RECOGNIZED": {"seconds": 12.0, "segments": 3},
                             "PROCESSING": {"seconds": 40.0, "segments": 0}},
        "total_segments": 3,
        "total_speech": 12.0,
    }  # fmt: skip


def test_trd_batch_status_counts_a_running_file_and_estimates_from_its_pace() -> None:
    now = datetime.now(UTC)
    queued = JobDocument(id="q", tenant="t1", batch="b1", media=MediaFacts(duration=60.0, channels=1))
    status = render_batch_status("b1", [running(60.0, 20.0, 10.0, now), queued], now=now)
    assert status["progress"] == pytest.approx((20 / 60) / 2, abs=1e-4)
    # 20 s decoded in 10 s: 0.5 s a second of audio; 40 s + 60 s left
    assert status["ETA"] == pytest.approx(50.0, abs=0.5)
    assert status["accounted_recognition"]["RECOGNIZED"] == {"seconds": 12.0, "segments": 3}


def test_a_running_file_never_counts_as_the_whole_batch_done() -> None:
    now = datetime.now(UTC)
    almost = running(60.0, 60.0, 10.0, now)
    assert render_batch_status("b1", [almost], now=now)["progress"] < 1.0
