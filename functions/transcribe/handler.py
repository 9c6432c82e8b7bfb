"""transcribe: a queued job → claimed (``job.started``) → the engine → transcript → ``job.completed``.

Two steps so that subscribers hear ``job.started`` before the long work begins:
1. ``job.queued``: claim the job (QUEUED → IN_PROGRESS, conditional write) and announce it.
2. ``job.started``: run the engine over each channel of the normalised audio, pulling its lazy
   segments in a thread so the runner's heartbeat keeps the delivery; between segments, look
   whether the job was stopped. Store the transcript, then mark the job COMPLETED.
A redelivered ``job.started`` (the worker died mid-job) starts the transcription again; the
completion is a conditional write and its event id is fixed, so it happens once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from events.errors import PoisonError
from events.models import Event, JobCompleted, JobQueued, JobStarted, JobStopped
from events.runner import FunctionSpec
from events.subjects import TRANSCRIBE, TRANSCRIBE_ORDER
from functions.common.asr import MAX_CHUNK_S, TranscribeOptions
from functions.common.batch_status import transcribed_channels
from functions.common.bootstrap import Deps
from functions.common.datasets import DatasetRepository
from functions.common.drop_files import drop_result_base
from functions.common.errors import Missing
from functions.common.jobs import Accounted, JobDocument, JobStatus, Stage, result_key
from functions.common.render_trd import render_batch_result, render_csv
from functions.common.transcript import Segment, Transcript
from functions.transcribe import metrics
from functions.transcribe.progress import ProgressReporter, account

log = logging.getLogger("shenava.transcribe")


class JobStoppedWhileRunning(Exception):
    pass


async def handle(event: Event, deps: Deps) -> list[Event]:
    if isinstance(event, JobQueued):
        return await claim(event, deps)
    if isinstance(event, JobStarted):
        return await transcribe(event, deps)
    return []


async def claim(event: JobQueued, deps: Deps) -> list[Event]:
    def start(job: JobDocument) -> bool:
        if job.status != JobStatus.QUEUED or not job.may_advance:
            return False  # already claimed, finished, or held (IDLE/PAUSED) until a start
        job.status, job.stage, job.started_at = JobStatus.IN_PROGRESS, Stage.DIARIZING, deps.clock()
        return True

    job = await deps.jobs.change(event.tenant, event.job_id, start)
    if job is None or job.status != JobStatus.IN_PROGRESS:
        return []
    return [JobStarted.for_job(job.tenant, job.id)]


async def transcribe(event: JobStarted, deps: Deps) -> list[Event]:
    job = await deps.jobs.find(event.tenant, event.job_id)
    if job is None:
        return []
    if job.status == JobStatus.COMPLETED:  # completed by an earlier delivery
        return [JobCompleted.for_job(job.tenant, job.id)]
    if job.status != JobStatus.IN_PROGRESS:
        return []
    await deps.jobs.change(job.tenant, job.id, _count_attempt)
    started = time.monotonic()
    try:
        transcript = await _run_engine(job, deps)
    except JobStoppedWhileRunning:
        log.info("stopped while running", extra={"job_id": job.id, "tenant": job.tenant})
        return [JobStopped.for_job(job.tenant, job.id)]
    metrics.count(transcript, time.monotonic() - started)
    await deps.state.put(result_key(job.tenant, job.id), transcript.model_dump(mode="json"))

    def complete(current: JobDocument) -> bool:
        if current.status != JobStatus.IN_PROGRESS:
            return False
        current.media.speech = speech_per_channel(transcript)
        current.accounted = accounted(transcript)
        current.completed_now(deps.clock())
        return True

    done = await deps.jobs.change(job.tenant, job.id, complete)
    if done is None or done.status != JobStatus.COMPLETED:
        return []
    if done.batch:
        await publish_drop_results(done, transcript, deps)
    log.info("completed", extra={"job_id": job.id, "tenant": job.tenant})
    return [JobCompleted.for_job(job.tenant, job.id)]


async def publish_drop_results(job: JobDocument, transcript: Transcript, deps: Deps) -> None:
    """Drop-folder users read results without the API: next to the batch, in the media bucket."""
    body = render_batch_result(job, transcript)
    base = drop_result_base(job)
    await deps.media.put_bytes(
        f"{base}.json", json.dumps(body, ensure_ascii=False).encode(), "application/json"
    )
    await deps.media.put_bytes(f"{base}.csv", render_csv(job, transcript).encode(), "text/csv; charset=utf-8")


def speech_per_channel(transcript: Transcript) -> list[float]:
    speech = [0.0] * max(transcript.channels, 1)
    for segment in transcript.segments:
        if segment.channel < len(speech):
            speech[segment.channel] += segment.end - segment.start
    return [round(s, 3) for s in speech]


def _count_attempt(job: JobDocument) -> bool:
    job.processing_attempts += 1
    job.progress = None  # a new attempt (a redelivery after a worker died) starts from the beginning
    return True


async def on_failure(event: Event, deps: Deps, reason: str) -> list[Event]:
    if not isinstance(event, JobQueued | JobStarted):
        return []
    return list(await deps.jobs.fail(event.tenant, event.job_id, reason))


async def _run_engine(job: JobDocument, deps: Deps) -> Transcript:
    """Per channel: speech regions (and speakers) first — the DIARIZED stage — then recognition."""
    engine = deps.engine
    if engine is None:
        raise RuntimeError("the transcribe worker has no engine: it is built by the worker's entrypoint")
    options = TranscribeOptions(
        language=job.options.language,
        speaker_labels=job.options.speaker_labels,
        diarization_threshold=job.options.diarization_threshold,
        hints=tuple(job.options.hints),
        max_silence_s=job.options.max_silence_s,
        max_chunk_s=job.options.max_chunk_s or MAX_CHUNK_S,
        alternatives=job.options.alternatives,
        task=job.options.task,
        temperature=job.options.temperature,
    )
    segments: list[Segment] = []
    language = job.options.language or ""
    with tempfile.TemporaryDirectory(prefix="shenava-asr-") as tmp:
        wav = Path(tmp) / "audio.wav"
        await deps.media.download(job.media.normalized_key, wav)
        channels = transcribed_channels(job)
        runs = [
            await asyncio.to_thread(engine.transcribe_channel, wav, ch, options) for ch in range(channels)
        ]
        await deps.jobs.change(job.tenant, job.id, _diarized(deps))
        reporter = ProgressReporter(job, deps.jobs)
        for run in runs:
            segments.extend(await _pull_segments(run.segments(), job, reporter))
            language = language or run.language  # after the segments: the language they were read in
    segments.sort(key=lambda s: (s.start, s.channel))
    if job.options.tasks:
        segments = await _with_task_results(job, segments, deps)
    return Transcript(
        job_id=job.id,
        language=language,
        duration=job.media.duration,
        channels=job.media.channels,
        segments=tuple(segments),
    )


async def _with_task_results(job: JobDocument, segments: list[Segment], deps: Deps) -> list[Segment]:
    """TRD ``recognition.tasks``: each segment's text tagged by each named Kashf text dataset."""
    from functions.common.concepts import tag_texts

    repo = DatasetRepository(deps.state)
    spoken = [n for n, segment in enumerate(segments) if segment.text.strip()]  # not no-speech ones
    texts = [segments[n].text.strip() for n in spoken]
    results: dict[str, list[list[dict[str, Any]]]] = {}
    for slug in job.options.tasks:
        try:
            results[slug] = await tag_texts(repo, job.tenant, slug, texts)
        except Missing as exc:
            raise PoisonError(f"recognition.tasks: {exc}") from exc
    tagged = list(segments)
    for at, n in enumerate(spoken):
        tags = {slug: found[at] for slug, found in results.items()}
        tagged[n] = segments[n].model_copy(update={"task_results": tags})
    return tagged


def _diarized(deps: Deps) -> Callable[[JobDocument], bool]:
    def mark(job: JobDocument) -> bool:
        if job.status != JobStatus.IN_PROGRESS:
            return False
        job.stage, job.diarized_at = Stage.RECOGNIZING, deps.clock()
        return True

    return mark


def accounted(transcript: Transcript) -> dict[str, Accounted]:
    """Speech seconds and segments by TRD segment status (RECOGNIZED, NO_MATCH)."""
    totals: dict[str, Accounted] = {}
    for segment in transcript.segments:
        account(totals, segment)
    return totals


async def _pull_segments(
    lazy: Iterator[Segment], job: JobDocument, reporter: ProgressReporter
) -> list[Segment]:
    """Pull the engine's lazy segments off the event loop, writing progress as they come (at most
    every couple of seconds) and looking for a stop between them."""
    pulled: list[Segment] = []
    while (segment := await reporter.pull(lazy)) is not None:
        pulled.append(segment)
        reporter.add(segment)
        if reporter.due:
            await reporter.flush()
        if reporter.stopped:
            raise JobStoppedWhileRunning(job.id)
    reporter.channel_done()
    return pulled


SPEC = FunctionSpec(TRANSCRIBE, handle, on_failure, order=TRANSCRIBE_ORDER)
