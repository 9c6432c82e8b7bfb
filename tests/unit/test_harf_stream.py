"""The live websocket without a model: WAV parsing, VAD cutting, and the session protocol.

The session runs against in-memory stores; ``ScriptedPipeline`` plays ingest + transcribe for
each utterance job (one segment naming the utterance), so ordering, ids, finalize, errors and
clean-up are checked here, and speech recognition in ``tests/integration/test_harf_e2e.py``.
"""

from __future__ import annotations

import asyncio
import json
import struct
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect

from functions.api.app import create_app
from functions.api.harf import WS_PATH
from functions.api.stream_vad import RATE, UtteranceCutter, longest_pause_middle
from functions.api.wav_stream import WavFormat, WavHeaderError, WavStreamReader, pcm_to_mono, wav_header
from functions.common.apikeys import create_key
from functions.common.jobs import JobDocument, JobRepository, JobStatus, result_key
from functions.common.live import LIVE_SUBJECT, LiveReply, LiveRequest, decode_request
from functions.common.media_store import upload_key
from functions.common.render_harf import hms
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript
from tests.fakes import DirMediaStore, MemoryBus, until_listening
from tests.integration.pipeline import free_port
from tests.speech import espeak_wav

SENTENCES = ["The weather today is sunny.", "Please send the report.", "Thank you all for coming."]
WINDOW = 32_000


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Three sentences, each after one second of silence, as a 16 kHz mono WAV file."""
    tmp = tmp_path_factory.mktemp("speech")
    pcm = b""
    for i, sentence in enumerate(SENTENCES):
        with wave.open(str(espeak_wav(sentence, "en-us", tmp / f"{i}.wav", delay_s=1.0))) as w:
            pcm += w.readframes(w.getnframes())
    pcm += b"\0" * 2 * RATE  # and a second of silence after
    return wav_header(WavFormat(1, RATE), len(pcm)) + pcm


def windows(data: bytes, size: int = WINDOW) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_the_header_may_arrive_in_pieces_and_frames_are_kept_whole() -> None:
    fmt = WavFormat(2, 8000)
    pcm = struct.pack("<8h", 1, -1, 2, -2, 3, -3, 4, -4)
    data = wav_header(fmt, 0) + pcm  # size 0: "until the end", as recorders stream
    reader, out = WavStreamReader(), b""
    for i in range(0, len(data), 3):
        out += reader.feed(data[i : i + 3])
    assert reader.format == fmt and out == pcm
    assert pcm_to_mono(out, fmt).tolist() == [0.0] * 4


def test_a_declared_data_size_is_honoured_and_trailing_chunks_are_not_audio() -> None:
    pcm = b"\x01\x00" * 10
    reader = WavStreamReader()
    assert reader.feed(wav_header(WavFormat(1, RATE), len(pcm)) + pcm + b"LIST\x04\x00\x00\x00abcd") == pcm
    assert reader.feed(b"more bytes") == b""


def test_extra_chunks_before_the_data_are_skipped() -> None:
    header = wav_header(WavFormat(1, RATE), 4)
    with_list = header[:36] + b"LIST\x03\x00\x00\x00abc\x00" + header[36:]
    assert WavStreamReader().feed(with_list + b"\x01\x00\x02\x00") == b"\x01\x00\x02\x00"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"hello, not a wav file at all", "RIFF/WAVE"),
        (b"RIFF\0\0\0\0AVI LIST", "RIFF/WAVE"),
        (wav_header(WavFormat(1, RATE), 0)[:12] + b"data\0\0\0\0", "no fmt chunk"),
        (wav_header(WavFormat(1, RATE), 0).replace(b"\x10\x00\x00\x00\x01\x00", b"\x10\x00\x00\x00\x03\x00"),
         "only 16-bit PCM"),
        (wav_header(WavFormat(1, 4000), 0), "outside 8000-192000"),
        (wav_header(WavFormat(1, RATE), 0)[:12] + b"junk" + struct.pack("<I", 10**6), "no WAV data chunk"),
    ],
)  # fmt: skip
def test_malformed_headers_are_named(data: bytes, needle: str) -> None:
    with pytest.raises(WavHeaderError, match=needle):
        WavStreamReader().feed(data)


def test_utterances_are_cut_at_the_pauses_as_the_audio_arrives(spoken: bytes) -> None:
    reader, cutter = WavStreamReader(), UtteranceCutter(min_silence_s=0.5, max_utterance_s=12.0)
    cut_at: list[tuple[int, float, float]] = []
    for n, window in enumerate(windows(spoken)):
        pcm = reader.feed(window)
        if pcm and reader.format:
            cut_at += [(n, u.start_s, u.end_s) for u in cutter.feed(pcm_to_mono(pcm, reader.format))]
    assert cutter.flush() == []  # the trailing silence ended the last one already
    assert len(cut_at) == len(SENTENCES)
    for (window_no, start, end), (_, next_start, _) in zip(cut_at, [*cut_at[1:], (0, 1e9, 0)], strict=True):
        assert 0.5 < end - start < 4.0 and end <= next_start
        assert window_no * WINDOW / (2 * RATE) < end + 1.0  # cut within a second of its end


def test_a_long_utterance_is_cut_at_its_longest_pause() -> None:
    probs = [0.9] * 40 + [0.1] * 2 + [0.9] * 20 + [0.2] * 6 + [0.9] * 30
    assert longest_pause_middle(probs, earliest=31) == 40 + 2 + 20 + 2  # of the 6 quiet frames
    assert longest_pause_middle([0.9] * 50 + [0.6] + [0.9] * 20, earliest=31) == 50  # the quietest frame


def test_flush_ends_open_speech(spoken: bytes) -> None:
    reader, cutter = WavStreamReader(), UtteranceCutter(0.5, 12.0)
    pcm = reader.feed(spoken[: 44 + 2 * int(2.0 * RATE)])  # one second of silence, then speech
    assert reader.format is not None and cutter.feed(pcm_to_mono(pcm, reader.format)) == []
    [last] = cutter.flush()
    assert 0.7 < last.start_s < 1.0 and last.end_s == pytest.approx(2.0, abs=0.04)


def test_a_tentative_utterance_is_the_very_audio_its_pause_ends(spoken: bytes) -> None:
    reader, cutter = WavStreamReader(), UtteranceCutter(0.5, 12.0)
    pcm = reader.feed(spoken)
    assert reader.format is not None
    audio, tentatives, finals = pcm_to_mono(pcm, reader.format), [], []
    for start in range(0, audio.size, 1600):  # 0.1 s at a time, as a live client sends it
        finals += cutter.feed(audio[start : start + 1600])
        tentatives += [t] if (t := cutter.take_tentative()) is not None else []
    assert len(finals) == len(SENTENCES) and len(tentatives) >= len(SENTENCES)
    for final in finals:  # offered 0.25 s into its pause, before the pause ended it
        same = [t for t in tentatives if t.start_s == final.start_s and t.audio.size == final.audio.size]
        assert same and np.array_equal(same[0].audio, final.audio)


def test_no_tentative_once_speech_resumes_and_none_twice_for_one_pause() -> None:
    speech, quiet = np.ones(512, np.float32), np.zeros(512, np.float32)

    class Scripted:  # Silero's probabilities, scripted: speech while the frame is loud
        def probabilities(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return np.array([0.9 if f.any() else 0.0 for f in frames], np.float32)

    cutter = UtteranceCutter(0.5, 12.0, vad=Scripted())  # type: ignore[arg-type]
    cutter.feed(np.concatenate([speech] * 30 + [quiet] * 9))  # a 0.29 s pause: one tentative
    assert cutter.take_tentative() is not None and cutter.take_tentative() is None
    cutter.feed(np.concatenate([speech] * 10))  # speech again: the tentative is stale, none new
    assert cutter.take_tentative() is None
    [final] = cutter.feed(np.concatenate([quiet] * 20))
    assert final.start_s == 0.0 and final.audio.size > (30 + 9 + 10) * 512  # both bursts, one utterance


@dataclass
class ScriptedPipeline:
    """Plays ingest + transcribe behind the bus: each utterance job waited on completes with one
    segment "utterance N" over its speech. ``hold`` keeps every job waiting (disconnect tests)."""

    state: MemoryStateStore
    media: DirMediaStore
    hold: asyncio.Event | None = None
    waits: list[str] = field(default_factory=list)

    async def finish(self, job_id: str) -> None:
        self.waits.append(job_id)
        if self.hold is not None:
            await self.hold.wait()
        tenant, jobs = "acme", JobRepository(self.state)
        job = await jobs.get(tenant, job_id)
        with wave.open(str(self.media.root / upload_key(tenant, job_id, job.filename))) as w:
            duration = w.getnframes() / w.getframerate()
        number = job.filename.removeprefix("utterance-").removesuffix(".wav")
        segment = Segment(start=0.2, end=duration - 0.2, text=f" utterance {number}", confidence=0.9)
        transcript = Transcript(
            job_id=job_id, language="en", duration=duration, channels=1, segments=(segment,)
        )
        await self.state.put(result_key(tenant, job_id), transcript.model_dump(mode="json"))

        def done(current: JobDocument) -> bool:
            current.status = JobStatus.COMPLETED
            return True

        await jobs.change(tenant, job_id, done)


@dataclass
class Live:
    app: FastAPI
    client: TestClient
    state: MemoryStateStore
    media: DirMediaStore
    pipeline: ScriptedPipeline
    key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Token {key or self.key}"}

    def jobs(self) -> list[JobDocument]:
        async def load() -> list[JobDocument]:
            repo = JobRepository(self.state)
            return [await repo.get("acme", i) for i in await repo.list_ids("acme")]

        return self.client.portal.call(load)  # type: ignore[union-attr]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), harf_language="en")
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    pipeline = ScriptedPipeline(state, media)
    app = create_app(settings, state=state, media=media, bus=MemoryBus(on_wait=pipeline.finish))
    with TestClient(app) as client:
        assert client.portal is not None
        key = client.portal.call(create_key, state, "acme")
        yield Live(app, client, state, media, pipeline, key)


def test_a_stream_gets_its_segments_in_order_and_is_kept_as_a_job(live: Live, spoken: bytes) -> None:
    replies = []
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        for window in windows(spoken):
            ws.send_bytes(window)
            replies.append(ws.receive_json())
        ws.send_text("finalize")
        final = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000
    early = [r for r in replies if "segment_id" in r]
    assert all(r == {"state": "PENDING"} for r in replies if "segment_id" not in r)
    assert final["state"] == "SUCCESS"
    segments = final["segments"]
    assert [s["segment_id"] for s in segments] == [1, 2, 3]
    assert [s["text"] for s in segments] == ["utterance 1", "utterance 2", "utterance 3"]
    assert segments[: len(early)] == early  # what came before finalize, repeated as it was sent
    starts = [s["start"] for s in segments]
    assert starts[0] == "0:00:01" and starts == sorted(set(starts))  # in stream time, after each pause
    [stream] = live.jobs()  # the utterance jobs are gone, the stream stays
    assert stream.id == final["task_id"] and stream.source == "harf-stream"
    assert final["media_url"].endswith(f"/api/transcribe_files/media/{stream.id}/stream.wav")
    assert stream.status == JobStatus.COMPLETED and stream.media.duration == pytest.approx(
        len(spoken) / 32000, 0.01
    )
    assert final["duration"] == hms(stream.media.duration)
    assert stream.media.key in live.media.stored_keys()
    result = live.client.portal.call(live.state.get, result_key("acme", stream.id))  # type: ignore[union-attr]
    assert result is not None and [s["text"].strip() for s in result[0]["segments"]] == [
        "utterance 1", "utterance 2", "utterance 3",
    ]  # fmt: skip


def test_the_documents_client_ends_holding_the_whole_transcript(live: Live, spoken: bytes) -> None:
    """Harf's sample client, step for step: one reply read per window (each overwriting the last),
    the trailing partial window never sent, ``finalize``, then exactly one more reply."""
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        bs = spoken
        window_size = 32000
        number_of_window = (len(bs) + 1) // window_size
        for i in range(number_of_window):
            ws.send_bytes(bs[window_size * i : window_size * (i + 1)])
            data = ws.receive_text()
        ws.send_text("finalize")
        data = ws.receive_text()
        ws.close()
    held = json.loads(data)
    assert [s["text"] for s in held["segments"]] == ["utterance 1", "utterance 2", "utterance 3"]
    polled = live.client.post(
        "/api/transcribe_files/", json={"task_ids": [held["task_id"]]}, headers=live.headers()
    ).json()
    assert [s["text"] for s in polled[0]["segments"]] == [s["text"] for s in held["segments"]]
    assert polled[0]["duration"] == held["duration"] and polled[0]["media_url"] == held["media_url"]


@pytest.mark.parametrize(
    ("first", "detail", "code"),
    [
        (b"not a wav header at all", "malformed WAV: the stream must start with a RIFF/WAVE header", 1007),
        ("hello", "send the WAV as binary messages", 1003),
        ("finalize", "no audio was received before finalize", 1007),
    ],
)
def test_bad_frames_get_an_error_and_a_clean_close(
    live: Live, first: bytes | str, detail: str, code: int
) -> None:
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        ws.send_bytes(first) if isinstance(first, bytes) else ws.send_text(first)
        reply = ws.receive_json()
        assert reply["state"] == "FAILURE" and reply["detail"].startswith(detail)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code
    assert live.jobs() == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Token nope"}])
def test_a_stream_needs_a_valid_key(live: Live, headers: dict[str, str]) -> None:
    with live.client.websocket_connect(WS_PATH, headers=headers) as ws:
        reply = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert reply["state"] == "FAILURE"
    assert "Authorization" in reply["detail"] or "API key is not valid" in reply["detail"]
    assert closed.value.code == 1008


def test_a_silent_client_is_closed_after_the_idle_limit(live: Live) -> None:
    live.app.state.deps.settings.harf_stream_idle_timeout_s = 0.3
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        assert "no message for 0.3 s" in ws.receive_json()["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


async def test_a_client_that_leaves_mid_stream_loses_nothing_it_sent(tmp_path: Path, spoken: bytes) -> None:
    # A real server: the test client cancels the session when the client leaves, uvicorn does not.
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), harf_language="en")
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    pipeline = ScriptedPipeline(state, media)
    app = create_app(settings, state=state, media=media, bus=MemoryBus(on_wait=pipeline.finish))
    key, port = await create_key(state, "acme"), free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    spools_before = set(Path(tempfile.gettempdir()).glob("shenava-stream-*"))
    sent = windows(spoken)[:5]  # past the end of the first sentence, into the second
    try:
        await until_listening(server, serving)
        uri = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with connect(uri, additional_headers={"Authorization": f"Token {key}"}) as ws:
            for window in sent:
                await ws.send(window)
                await ws.recv()
        stream = await asyncio.wait_for(_stream_job(state), 10)
    finally:
        server.should_exit = True
        await serving
    assert stream.status == JobStatus.COMPLETED
    assert stream.media.duration == pytest.approx((sum(len(w) for w in sent) - 44) / 32000, 0.02)
    result = await state.get(result_key("acme", stream.id))
    assert result is not None
    texts = [s["text"].strip() for s in result[0]["segments"]]
    assert texts == ["utterance 1", "utterance 2"]  # the open second sentence was read too
    assert [k for k in media.stored_keys() if k.startswith("uploads/")] == [stream.media.key]
    assert set(Path(tempfile.gettempdir()).glob("shenava-stream-*")) <= spools_before


async def _stream_job(state: MemoryStateStore) -> JobDocument:
    """The stream's job, once the session has stored it (the state is read until it is there)."""
    repo = JobRepository(state)
    while True:
        for job_id in await repo.list_ids("acme"):
            job = await repo.get("acme", job_id)
            if job.source == "harf-stream":
                return job
        await asyncio.sleep(0.01)


def test_a_dropped_stream_whose_reading_never_ends_leaves_nothing_running(
    live: Live, spoken: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.api import harf_stream

    monkeypatch.setattr(harf_stream, "DRAIN_LIMIT_S", 0.2)
    hold = asyncio.Event()
    live.pipeline.hold = hold  # every utterance stays "in the pipeline"
    spools_before = set(Path(tempfile.gettempdir()).glob("shenava-stream-*"))
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        for window in windows(spoken)[:5]:
            ws.send_bytes(window)
            assert ws.receive_json() == {"state": "PENDING"}
        ws.close()

    async def released() -> None:  # the cancelled utterances remove their jobs: poll for that state
        while await JobRepository(live.state).list_ids("acme") or not live.pipeline.waits:
            await asyncio.sleep(0.01)

    live.client.portal.call(asyncio.wait_for, released(), 10)  # type: ignore[union-attr]
    assert not [k for k in live.media.stored_keys() if k.startswith("uploads/")]
    assert set(Path(tempfile.gettempdir()).glob("shenava-stream-*")) <= spools_before
    hold.set()


def test_the_stream_may_be_any_rate_and_channel_count(live: Live, spoken: bytes) -> None:
    mono = np.frombuffer(spoken[44:], "<i2")
    resampled = np.interp(np.arange(0, len(mono), RATE / 44100), np.arange(len(mono)), mono).astype("<i2")
    stereo = np.repeat(resampled, 2).tobytes()
    data = wav_header(WavFormat(2, 44100), len(stereo)) + stereo
    with live.client.websocket_connect(WS_PATH, headers=live.headers()) as ws:
        for window in windows(data, 4 * 44100):
            ws.send_bytes(window)
            ws.receive_json()
        ws.send_text("finalize")
        final = ws.receive_json()
    assert final["state"] == "SUCCESS" and len(final["segments"]) == 3
    assert len(live.pipeline.waits) == 3


class LiveLaneStandIn:
    """Answers the live lane's requests as a live worker would: one segment per utterance,
    "lane N" over its speech; records the requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[LiveRequest, float]] = []

    async def answer(self, subject: str, payload: bytes) -> bytes | None:
        assert subject == LIVE_SUBJECT
        request, audio = decode_request(payload)
        self.requests.append((request, audio.size / RATE))
        seconds = audio.size / RATE
        text = f" lane {len(self.requests)}"
        segment = Segment(start=0.2, end=seconds - 0.2, text=text, confidence=0.9)
        return LiveReply(language="en", segments=(segment,), decode_s=0.1).model_dump_json().encode()


def with_lane(tmp_path: Path) -> tuple[FastAPI, MemoryStateStore, LiveLaneStandIn, MemoryBus]:
    """The app over memory stores, its bus answering live-lane requests as a live worker would."""
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), harf_language="en")
    state, media = MemoryStateStore(), DirMediaStore(tmp_path / "media")
    lane, bus = LiveLaneStandIn(), MemoryBus()
    bus.responder = lane.answer
    return create_app(settings, state=state, media=media, bus=bus), state, lane, bus


def test_with_a_live_worker_utterances_take_the_live_lane_and_no_job(tmp_path: Path, spoken: bytes) -> None:
    app, state, lane, bus = with_lane(tmp_path)
    with TestClient(app) as client:
        assert client.portal is not None
        key = client.portal.call(create_key, state, "acme")
        with client.websocket_connect(WS_PATH, headers={"Authorization": f"Token {key}"}) as ws:
            for window in windows(spoken):
                ws.send_bytes(window)
                ws.receive_json()
            ws.send_text("finalize")
            final = ws.receive_json()
        jobs = client.portal.call(JobRepository(state).list_ids, "acme")
    assert [s["text"] for s in final["segments"]] == ["lane 1", "lane 2", "lane 3"]
    assert final["segments"][0]["start"] == "0:00:01"  # the lane's times moved to the stream's
    assert [r.language for r, _ in lane.requests] == ["en"] * 3 and all(s > 1 for _, s in lane.requests)
    assert bus.waits == []  # no utterance became a job
    assert jobs == [final["task_id"]]  # only the stream, kept as one job


def test_interim_hypotheses_only_when_asked(tmp_path: Path, spoken: bytes) -> None:
    app, state, lane, _ = with_lane(tmp_path)
    small = windows(spoken, 3_200)  # 0.1 s at a time, as a microphone sends
    with TestClient(app) as client:
        assert client.portal is not None
        key = client.portal.call(create_key, state, "acme")
        headers = {"Authorization": f"Token {key}"}
        replies: dict[str, list[dict[str, object]]] = {}
        for path in (WS_PATH, WS_PATH + "?interim=true"):
            with client.websocket_connect(path, headers=headers) as ws:
                replies[path] = []
                for window in small:
                    ws.send_bytes(window)
                    replies[path].append(ws.receive_json())
                ws.send_text("finalize")
                ws.receive_json()
    plain, asked = replies[WS_PATH], replies[WS_PATH + "?interim=true"]
    assert not [r for r in plain if "interim" in r]  # the document's clients see the documented replies
    interims = [r["interim"] for r in asked if "interim" in r]
    assert interims and all(r["state"] == "PENDING" for r in asked if "interim" in r)
    assert all(isinstance(i, dict) and set(i) == {"text", "start", "end"} for i in interims)
    assert any(r.interim for r, _ in lane.requests)  # read as hypotheses by the lane
