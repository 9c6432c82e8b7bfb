"""One live stream's utterances, read: by the live lane when a live worker answers, else through
the pipeline as jobs; tentative utterances read early (``UtteranceCutter.take_tentative``)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from functions.api.live_lane import read_live
from functions.api.service import JobService, Submission
from functions.api.stream_vad import RATE, Utterance
from functions.api.wav_stream import WavFormat, wav_header
from functions.common.errors import ApiError
from functions.common.jobs import JobStatus, RecognitionOptions
from functions.common.live import LiveRequest
from functions.common.pcm16 import pcm16_bytes
from functions.common.transcript import Segment, Word

log = logging.getLogger("shenava.api.harf.stream")

UTTERANCE_SOURCE = "harf-utterance"


class UtteranceFailed(Exception):
    """An utterance could not be handed to the pipeline: the stream cannot go on."""


class UtteranceReader:
    def __init__(self, svc: JobService, tenant: str, language: str | None) -> None:
        self.svc, self.tenant, self.language = svc, tenant, language
        self.settings = svc.deps.settings
        self.detected = ""
        self.lane_answers = False  # the live lane has answered: worth reading tentative utterances
        self.speculative: dict[tuple[float, int], asyncio.Task[list[Segment] | None]] = {}

    def speculate(self, utterance: Utterance) -> None:
        """Start reading an utterance that may end at the pause now heard (only the latest is
        kept: if speech resumes, its reading is of no use). Only where the live lane answers: a
        job per pause would cost the pipeline more than it saves."""
        if not self.lane_answers:
            return
        for stale in self.speculative.values():
            stale.cancel()
        self.speculative = {_key(utterance): asyncio.create_task(self.read_live(utterance))}

    async def hypothesis(self, utterance: Utterance) -> str:
        """What the lane hears so far in speech still being spoken ("" if it does not answer)."""
        request = LiveRequest(tenant=self.tenant, language=self.language, interim=True)
        reply = await read_live(self.svc.deps.bus, request, utterance.audio)
        return " ".join(s.text.strip() for s in reply.segments if s.text.strip()) if reply else ""

    def abandon(self) -> list[asyncio.Task[Any]]:
        tasks = list(self.speculative.values())
        self.speculative.clear()
        return tasks

    def read(self, utterance: Utterance, number: int) -> Any:
        """A coroutine giving the utterance's segments in stream time (none if it failed)."""
        early = self.speculative.pop(_key(utterance), None)
        return self._after(early, utterance, number) if early else self._read_now(utterance, number)

    async def _after(
        self, early: asyncio.Task[list[Segment] | None], utterance: Utterance, number: int
    ) -> list[Segment]:
        """The tentative reading of this very audio, begun before its pause ended it."""
        found = await early
        return found if found is not None else await self._read_now(utterance, number)

    async def _read_now(self, utterance: Utterance, number: int) -> list[Segment]:
        """One utterance's segments in stream time: from the live lane when a live worker answers,
        else through the pipeline as a job."""
        found = await self.read_live(utterance)
        return found if found is not None else await self.through_pipeline(utterance, number)

    async def read_live(self, utterance: Utterance) -> list[Segment] | None:
        """The utterance's segments in stream time from the live lane; None when no worker answers."""
        request = LiveRequest(tenant=self.tenant, language=self.language)
        reply = await read_live(self.svc.deps.bus, request, utterance.audio)
        if reply is None:
            return None
        self.lane_answers = True
        self.detected = self.detected or reply.language
        return [shifted(s, utterance.start_s) for s in reply.segments if s.text.strip()]

    async def through_pipeline(self, utterance: Utterance, number: int) -> list[Segment]:
        """One utterance as a job (where no live worker runs: AWS, or a deployment without one)."""
        job_id = ""
        try:
            try:
                job_id = await self._submit(utterance, number)
            except ApiError as exc:
                raise UtteranceFailed(f"an utterance could not be submitted: {exc}") from exc
            timeout = self.settings.harf_task_timeout_s
            status = await self.svc.wait_finished(self.tenant, job_id, timeout)
            if status != JobStatus.COMPLETED:
                log.warning("utterance %s ended %s", number, status, extra={"job_id": job_id})
                return []
            transcript = await self.svc.transcript(await self.svc.get(self.tenant, job_id))
            if transcript is None:
                return []
            self.detected = self.detected or transcript.language
            return [shifted(s, utterance.start_s) for s in transcript.segments if s.text.strip()]
        finally:
            if job_id:
                await _quietly(self._forget(job_id))

    async def _submit(self, utterance: Utterance, number: int) -> str:
        with tempfile.TemporaryDirectory(prefix="shenava-utterance-") as tmp:
            path = Path(tmp) / "utterance.wav"
            pcm = pcm16_bytes(utterance.audio)
            path.write_bytes(wav_header(WavFormat(1, RATE), len(pcm)) + pcm)
            job = await self.svc.submit(
                Submission(
                    tenant=self.tenant,
                    source=UTTERANCE_SOURCE,
                    media_path=path,
                    content_type="audio/wav",
                    filename=f"utterance-{number}.wav",
                    options=RecognitionOptions(language=self.language),
                    results_ttl_minutes=self.settings.results_ttl_minutes,
                )
            )
        return job.id

    async def _forget(self, job_id: str) -> None:
        """An utterance's job is only a step of the stream's: remove it once read (or abandoned)."""
        job = await self.svc.deps.jobs.find(self.tenant, job_id)
        if job is not None:
            await self.svc.purge(job)


def _key(utterance: Utterance) -> tuple[float, int]:
    """Which audio an utterance is: where it starts and how long it is (samples)."""
    return round(utterance.start_s, 4), utterance.audio.size


def shifted(segment: Segment, offset_s: float) -> Segment:
    """A segment of an utterance, moved to its place in the stream."""
    words = tuple(
        Word(text=w.text, start=w.start + offset_s, end=w.end + offset_s, confidence=w.confidence)
        for w in segment.words
    )
    return segment.model_copy(
        update={"start": segment.start + offset_s, "end": segment.end + offset_s, "words": words}
    )


async def _quietly(step: Any) -> None:
    """Clean-up that must not turn a finished answer into an error (logged, not raised)."""
    try:
        await step
    except Exception:
        log.exception("clean-up step failed")
