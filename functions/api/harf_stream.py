"""Live transcription over a websocket: Harf's ``/ws_api/transcribe_files/wav/sync/``.

The client sends a WAV file in binary windows and reads one reply per window:
``{"state": "PENDING"}`` or the next finished segment ``{"segment_id", "text", "start", "end"}``.
The text ``finalize`` ends the stream and is answered by **one** message, then a close: the
document's client reads exactly one reply to ``finalize`` and keeps only that, so the reply holds
the whole transcript, in the shape of a task's result (``media_url``, ``duration``, ``segments``,
each segment as the per-window replies give it, ids from 1) plus ``{"state": "SUCCESS",
"task_id": …}`` (the stream's job, pollable like any task).
Errors are ``{"state": "FAILURE", "detail": …}`` followed by a close with a code that says why.

How the audio becomes segments, and why this way:
1. **Cut in the API process, by a light VAD.** Each window's PCM is downmixed, resampled to
   16 kHz if needed (soxr's streaming resampler) and fed to ``UtteranceCutter`` (Silero VAD on
   ONNX Runtime, ~2 ms per second of audio): an utterance is final as soon as its pause is
   heard, so segments do not wait for the end of the stream.
2. **Read by the live lane, not here.** Each utterance goes in a NATS request to the live
   workers (``python -m functions.transcribe.live``: the engine kept loaded, the encoder given a
   window just longer than the utterance), which answer with its segments at once; the engine
   never loads in the API process, which stays small and responsive. Where no live worker
   answers (AWS Lambda, a deployment without one) the utterance is submitted as a job like any
   upload and this session waits on its events (``Deps.bus``): slower (an upload, a bucket
   event, ingest and a queue before decoding starts), but the same engine and guard.
   ``bench/harf_stream.py`` measures the latency.
3. **In order, with bounded memory.** Utterance jobs run concurrently, at most
   ``harf_stream_max_pending`` per stream: beyond that, reading the socket waits (TCP pushes
   back on the client). Results are released strictly in stream order. Memory per stream is the
   VAD's current utterance (at most ``harf_stream_max_utterance_s``) plus the segments not yet
   sent; the whole stream is spooled to a temporary file on disk, capped at ``max_audio_bytes``.
4. **Kept as a job.** On ``finalize`` the spooled WAV and the joined transcript are stored as
   one completed job (source ``harf-stream``) that can be listed, polled and fetched; the
   per-utterance jobs of the pipeline path are removed once read. A client that disconnects
   without ``finalize`` loses nothing it sent: the open speech is read, and the stream is stored
   the same way (within ``DRAIN_LIMIT_S``); then nothing of it is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from functions.api.service import JobService, Submission
from functions.api.stream_vad import RATE, Audio, Utterance, UtteranceCutter
from functions.api.utterances import UtteranceFailed, UtteranceReader
from functions.api.wav_stream import WavFormat, WavHeaderError, WavStreamReader, pcm_to_mono, wav_header
from functions.common.errors import ApiError
from functions.common.jobs import JobDocument, RecognitionOptions
from functions.common.render_harf import display_text, hms
from functions.common.transcript import Segment

log = logging.getLogger("shenava.api.harf.stream")

CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_BAD_DATA = 1000, 1003, 1007
CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_ERROR = 1008, 1009, 1011
PENDING = {"state": "PENDING"}
INTERIM_EVERY_S = 1.0  # of speech still being spoken, between two interim hypotheses
DRAIN_LIMIT_S = 120.0  # reading the rest of a stream whose client left; then it is let go
STREAM_SOURCE = "harf-stream"


class StreamClosed(Exception):
    """The session must end now with this message and close code."""

    def __init__(self, detail: str, code: int) -> None:
        super().__init__(detail)
        self.detail, self.code = detail, code


class Interim:
    """Hypotheses while an utterance is still spoken (``?interim=true``): every ``INTERIM_EVERY_S``
    of open speech, what the live lane hears so far, sent once with the next ``PENDING`` reply as
    ``{"state": "PENDING", "interim": {"text", "start", "end"}}`` (one at a time; a stale one is
    dropped when its utterance ends). Clients that did not ask see exactly the documented replies."""

    def __init__(self) -> None:
        self.task: asyncio.Task[dict[str, str] | None] | None = None
        self.asked_at = -1.0  # the open speech's length when last read

    def offer(self, speech: Utterance | None, reading: UtteranceReader) -> None:
        if speech is None:  # the utterance ended: its segment supersedes any hypothesis of it
            self.cancel()
            self.task, self.asked_at = None, -1.0
            return
        length = speech.end_s - speech.start_s
        running = self.task is not None and not self.task.done()
        if running or length < INTERIM_EVERY_S or length - max(self.asked_at, 0.0) < INTERIM_EVERY_S:
            return
        self.asked_at = length
        self.task = asyncio.create_task(self._read(speech, reading))

    async def _read(self, speech: Utterance, reading: UtteranceReader) -> dict[str, str] | None:
        text = await reading.hypothesis(speech)
        return {"text": text, "start": hms(speech.start_s), "end": hms(speech.end_s)} if text else None

    def take(self) -> dict[str, str] | None:
        if self.task is None or not self.task.done() or self.task.cancelled():
            return None
        task, self.task = self.task, None
        return task.result()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class StreamSession:
    def __init__(
        self,
        ws: WebSocket,
        svc: JobService,
        tenant: str,
        language: str | None,
        media_url: Callable[[JobDocument], str],
        interim: bool = False,
    ) -> None:
        self.ws, self.svc, self.tenant, self.language = ws, svc, tenant, language
        self.interim = Interim() if interim else None  # hypotheses while speech goes on, when asked
        self.media_url = media_url  # where the stream's recording is served (the dialect's path)
        self.settings = svc.deps.settings
        self.reader = WavStreamReader()
        self.cutter = UtteranceCutter(
            self.settings.harf_stream_min_silence_s, self.settings.harf_stream_max_utterance_s
        )
        self.resampler: Any = None
        self.spool: IO[bytes] | None = None
        self.spool_path: Path | None = None
        self.pcm_bytes = 0
        self.inflight: deque[asyncio.Task[list[Segment]]] = deque()
        self.ready: deque[dict[str, Any]] = deque()
        self.kept: list[Segment] = []  # every segment sent, in stream time: the stream's transcript
        self.utterances = 0
        self.reading = UtteranceReader(svc, tenant, language)

    async def run(self) -> None:
        """Serve the socket until ``finalize``, an error, or the client leaves; free everything."""
        try:
            await self._serve()
        except StreamClosed as closed:
            await self._close_with(closed.detail, closed.code)
        except UtteranceFailed as failed:
            await self._close_with(str(failed), CLOSE_ERROR)
        except WebSocketDisconnect:
            log.info("the client left without finalize; keeping what it sent", extra={"tenant": self.tenant})
            await self._keep_what_was_sent()
        except Exception:
            log.exception("stream failed", extra={"tenant": self.tenant})
            await self._close_with("internal error; the stream was not completed", CLOSE_ERROR)
        finally:
            await self._release()

    async def _serve(self) -> None:
        idle = self.settings.harf_stream_idle_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), idle)
            except TimeoutError as exc:
                raise StreamClosed(f"no message for {idle:g} s; the stream is closed", CLOSE_POLICY) from exc
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                await self._on_audio(message["bytes"])
                await self.ws.send_json(self._next_reply())
            elif (message.get("text") or "").strip() == "finalize":
                await self._finalize()
                return
            else:
                raise StreamClosed(
                    "send the WAV as binary messages and the text 'finalize' at the end", CLOSE_UNSUPPORTED
                )

    async def _on_audio(self, data: bytes) -> None:
        try:
            pcm = self.reader.feed(data)
        except WavHeaderError as exc:
            raise StreamClosed(f"malformed WAV: {exc}", CLOSE_BAD_DATA) from exc
        fmt = self.reader.format
        if fmt is None or not pcm:
            return
        self._spool(pcm, fmt)
        mono = pcm_to_mono(pcm, fmt)
        if fmt.sample_rate != RATE:
            mono = self._resample(mono, fmt, last=False)
        for utterance in await asyncio.to_thread(self.cutter.feed, mono):
            await self._launch(utterance)
        tentative = self.cutter.take_tentative()
        if tentative is not None:
            self.reading.speculate(tentative)
        if self.interim is not None:
            self.interim.offer(self.cutter.open_speech(), self.reading)

    def _spool(self, pcm: bytes, fmt: WavFormat) -> None:
        if self.pcm_bytes + len(pcm) > self.settings.max_audio_bytes:
            raise StreamClosed(
                f"the stream is larger than the limit of {self.settings.max_audio_bytes} bytes", CLOSE_TOO_BIG
            )
        if self.spool is None:
            handle = tempfile.NamedTemporaryFile(prefix="shenava-stream-", suffix=".wav", delete=False)  # noqa: SIM115
            self.spool, self.spool_path = handle, Path(handle.name)
            handle.write(wav_header(fmt, 0))  # rewritten with the real size at the end
        self.spool.write(pcm)
        self.pcm_bytes += len(pcm)

    def _resample(self, mono: Audio, fmt: WavFormat, last: bool) -> Audio:
        if self.resampler is None:
            import soxr  # type: ignore[import-untyped]

            self.resampler = soxr.ResampleStream(fmt.sample_rate, RATE, 1, dtype="float32")
        return np.asarray(self.resampler.resample_chunk(mono, last=last), np.float32)

    async def _launch(self, utterance: Utterance) -> None:
        """Submit one utterance; first wait for the oldest if too many are in the pipeline."""
        while len(self.inflight) >= max(1, self.settings.harf_stream_max_pending):
            await asyncio.wait({self.inflight[0]})
            self._collect()
        self.utterances += 1
        self.inflight.append(asyncio.create_task(self.reading.read(utterance, self.utterances)))

    def _collect(self) -> None:
        """Move finished utterances, in stream order, to the segments waiting to be sent."""
        while self.inflight and self.inflight[0].done():
            for segment in self.inflight.popleft().result():
                self.kept.append(segment)
                self.ready.append(self._render(segment, len(self.kept)))

    def _render(self, segment: Segment, segment_id: int) -> dict[str, Any]:
        language = self.language or self.reading.detected
        return {
            "segment_id": segment_id,
            "text": display_text(segment.text, language),
            "start": hms(segment.start),
            "end": hms(segment.end),
        }

    def _next_reply(self) -> dict[str, Any]:
        self._collect()
        if self.ready:
            return self.ready.popleft()
        heard = self.interim.take() if self.interim is not None else None
        return {**PENDING, "interim": heard} if heard else PENDING

    async def _finalize(self) -> None:
        fmt = self.reader.format
        if fmt is None or self.pcm_bytes == 0:
            raise StreamClosed("no audio was received before finalize", CLOSE_BAD_DATA)
        await self._drain(fmt)
        job = await self._store(fmt)
        await self.ws.send_json(self._final_reply(job))
        await self.ws.close(CLOSE_NORMAL)

    async def _drain(self, fmt: WavFormat) -> None:
        """The end of the stream: the speech still open becomes the last utterance, and every
        utterance is read."""
        tail = self._resample(np.zeros(0, np.float32), fmt, last=True) if self.resampler else None
        utterances = await asyncio.to_thread(self.cutter.feed, tail) if tail is not None else []
        for utterance in [*utterances, *self.cutter.flush()]:
            await self._launch(utterance)
        while self.inflight:
            await asyncio.wait({self.inflight[0]})
            self._collect()

    async def _keep_what_was_sent(self) -> None:
        """A dropped connection loses nothing the client sent: its audio and transcript are stored
        as the stream's job (a task it can poll, if it kept nothing else), within a time limit."""
        fmt = self.reader.format
        if fmt is None or self.pcm_bytes == 0:
            return
        try:
            await asyncio.wait_for(self._drain(fmt), DRAIN_LIMIT_S)
            job = await self._store(fmt)
        except (TimeoutError, StreamClosed) as exc:
            log.warning("a dropped stream could not be kept: %r", exc, extra={"tenant": self.tenant})
            return
        log.info("dropped stream kept", extra={"tenant": self.tenant, "job_id": job.id})

    def _final_reply(self, job: JobDocument) -> dict[str, Any]:
        """The whole stream in one message: segments sent before ``finalize`` are repeated, since
        the document's client overwrites each reply with the next and reads one after finalize."""
        return {
            "state": "SUCCESS",
            "task_id": job.id,
            "media_url": self.media_url(job),
            "duration": hms(job.media.duration),
            "segments": [self._render(segment, n) for n, segment in enumerate(self.kept, start=1)],
        }

    async def _store(self, fmt: WavFormat) -> JobDocument:
        """The whole stream as one completed job: its WAV and the segments that were sent."""
        assert self.spool is not None and self.spool_path is not None
        self.spool.seek(0)
        self.spool.write(wav_header(fmt, self.pcm_bytes))
        self.spool.close()
        submission = Submission(
            tenant=self.tenant,
            source=STREAM_SOURCE,
            media_path=self.spool_path,
            content_type="audio/wav",
            filename="stream.wav",
            options=RecognitionOptions(language=self.language),
            results_ttl_minutes=self.settings.results_ttl_minutes,
        )
        try:
            job = await self.svc.store_transcribed(
                submission, self.kept, self.language or self.reading.detected
            )
        except ApiError as exc:
            raise StreamClosed(f"the stream could not be stored: {exc}", CLOSE_ERROR) from exc
        return job

    async def _close_with(self, detail: str, code: int) -> None:
        log.info("stream closed: %s", detail, extra={"tenant": self.tenant})
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.ws.send_json({"state": "FAILURE", "detail": detail})
                await self.ws.close(code)

    async def _release(self) -> None:
        # The synchronous part first: it cannot be interrupted if the handler itself is cancelled
        # (server shutdown). The cancelled utterance tasks remove their jobs on their own.
        if self.interim is not None:
            self.interim.cancel()
        tasks = [*self.inflight, *self.reading.abandon()]
        for task in tasks:
            task.cancel()
        self.inflight.clear()
        self.ready.clear()
        if self.spool is not None:
            self.spool.close()
        if self.spool_path is not None:
            self.spool_path.unlink(missing_ok=True)
        await asyncio.gather(*tasks, return_exceptions=True)
