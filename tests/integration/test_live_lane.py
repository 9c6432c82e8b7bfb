"""Live transcription through the live lane on the real stack: the session's pipeline runs a live
worker (``python -m functions.transcribe.live``) beside the file worker, and Harf's websocket
reads utterances through it. Endpointing, ordering, and a client that drops the connection.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave

import pytest
from websockets.asyncio.client import connect

from functions.api.harf import WS_PATH
from functions.api.wav_stream import WavFormat, wav_header
from functions.common.bootstrap import bootstrap
from functions.common.jobs import JobDocument, result_key
from tests.integration.pipeline import Pipeline, job_created_at
from tests.scoring import normaliser
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SENTENCES = (
    "The weather today is sunny with a light breeze.",
    "Please send the report to the finance team before noon.",
    "Thank you all for coming today.",
)
WINDOW = 3_200  # 0.1 s of 16 kHz mono


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The sentences with a one-second pause after each, as a 16 kHz mono WAV file."""
    tmp = tmp_path_factory.mktemp("live")
    pcm = b""
    for i, sentence in enumerate(SENTENCES):
        with wave.open(str(espeak_wav(sentence, "en-us", tmp / f"{i}.wav"))) as w:
            pcm += w.readframes(w.getnframes()) + b"\0" * 32_000
    return wav_header(WavFormat(1, 16_000), len(pcm)) + pcm


def uri(pipeline: Pipeline) -> str:
    return pipeline.api_url.replace("http://", "ws://") + WS_PATH + "?language=en"


def token(pipeline: Pipeline) -> dict[str, str]:
    return {"Authorization": f"Token {pipeline.api_key}"}


def words(text: str) -> list[str]:
    return normaliser("en")(text).split()


async def test_utterances_come_back_whole_and_in_order(pipeline: Pipeline, speech: bytes) -> None:
    early: list[dict[str, object]] = []
    async with connect(uri(pipeline), additional_headers=token(pipeline)) as ws:
        began = time.monotonic()
        for n, start in enumerate(range(0, len(speech), WINDOW)):
            # a microphone's pace: window n holds the audio up to (n + 1) × 0.1 s
            await asyncio.sleep(max(0.0, began + (n + 1) * 0.1 - time.monotonic()))
            await ws.send(speech[start : start + WINDOW])
            reply = json.loads(await ws.recv())
            if "segment_id" in reply:
                early.append(reply)
        await ws.send("finalize")
        final = json.loads(await ws.recv())

    assert final["state"] == "SUCCESS" and early, "segments arrive while the client is still sending"
    segments = final["segments"]
    assert [s["segment_id"] for s in segments] == list(range(1, len(segments) + 1))
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)
    heard = words(" ".join(s["text"] for s in segments))
    for sentence in SENTENCES:  # endpointing clips nothing: each sentence's first and last words
        expected = words(sentence)
        assert expected[0] in heard and expected[-1] in heard, (sentence, heard)
    assert len(segments) == len(SENTENCES)  # one utterance per sentence, cut at its pause
    # The lane read them: no utterance became a job (the stream is the only job of this session).
    stream_events = pipeline.watch.seen.get(final["task_id"], [])
    assert [e.type for e in stream_events] == ["job.completed"]


async def test_a_dropped_connection_keeps_and_reads_what_was_sent(pipeline: Pipeline, speech: bytes) -> None:
    first_two = speech[: 44 + 32_000 * 6]  # 6 s: the first sentence and part of the second
    began = time.time()
    async with connect(uri(pipeline), additional_headers=token(pipeline)) as ws:
        for start in range(0, len(first_two), WINDOW):
            await ws.send(first_two[start : start + WINDOW])
            await ws.recv()
    # the client is gone without finalize: the session reads the open speech and stores the stream
    completed = await pipeline.watch.wait_new("job.completed", created_after=began, timeout=60)

    async with bootstrap(pipeline.settings) as deps:
        job: JobDocument = await deps.jobs.get("acme", completed.job_id)  # type: ignore[attr-defined]
        found = await deps.state.get(result_key("acme", job.id))
    assert job.source == "harf-stream" and job.media.duration == pytest.approx(6.0, abs=0.05)
    assert found is not None
    heard = words(" ".join(s["text"] for s in found[0]["segments"]))
    assert words(SENTENCES[0])[-1] in heard and words(SENTENCES[1])[0] in heard  # the cut-off part too
    # the lane read it: no utterance of it became a job (a job's id says when it was made)
    assert [j for j in pipeline.watch.seen if j != job.id and job_created_at(j) >= began] == []
