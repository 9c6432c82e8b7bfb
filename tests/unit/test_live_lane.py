"""The live lane's worker logic with a scripted engine: the window it reads with, and when it
reads again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from functions.common.asr import MAX_CHUNK_S, TranscribeOptions
from functions.common.live import LiveReply, LiveRequest, decode_request, encode_request
from functions.common.transcript import Segment
from functions.transcribe.live import LIVE_WINDOW_S, answer, read


@dataclass
class Run:
    language: str
    found: list[Segment]

    def segments(self) -> Iterator[Segment]:
        return iter(self.found)


@dataclass
class WindowedEngine:
    """Reads flagged text with a short window unless ``clean``; records the windows asked for."""

    clean: bool = False
    windows: list[float] = field(default_factory=list)

    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> Run:
        raise AssertionError("the live lane never reads files")

    def transcribe_audio(
        self, audio: npt.NDArray[np.float32], channel: int, options: TranscribeOptions
    ) -> Run:
        self.windows.append(options.window_s)
        full = options.window_s >= MAX_CHUNK_S
        flags = () if full or self.clean else ("repetition",)
        text = "hello there" if full else "hello hello hello hello hello hello"
        return Run("en", [Segment(start=0.1, end=1.0, text=text, confidence=0.8, flags=flags)])


def seconds(n: float) -> npt.NDArray[np.float32]:
    return (np.sin(np.arange(round(n * 16000)) / 5) * 0.3).astype(np.float32)


def test_a_request_survives_the_wire() -> None:
    audio = seconds(1.5)
    request, back = decode_request(encode_request(LiveRequest(tenant="acme", language="fa"), audio))
    assert request == LiveRequest(tenant="acme", language="fa")
    assert back.size == audio.size and np.max(np.abs(back - audio)) < 1e-4


def test_samples_read_from_a_clients_pcm_reach_the_live_worker_unchanged() -> None:
    # The API reads the client's PCM as k / 32768; the worker must read the same k back
    # (a request once scaled by 32767: every sample a little quieter, full scale clipped).
    pcm = np.array([-32768, -12345, -1, 0, 1, 12345, 32767], dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    _, back = decode_request(encode_request(LiveRequest(tenant="acme"), audio))
    assert (np.round(back * 32768.0).astype(np.int16) == pcm).all()


def test_an_utterance_is_read_with_a_short_window_when_it_reads_cleanly() -> None:
    engine = WindowedEngine(clean=True)
    read(engine, LiveRequest(tenant="acme"), seconds(3))
    assert engine.windows == [LIVE_WINDOW_S]


def test_a_flagged_reading_is_read_again_with_whispers_full_window() -> None:
    engine = WindowedEngine()
    language, segments = read(engine, LiveRequest(tenant="acme"), seconds(3))
    assert engine.windows == [LIVE_WINDOW_S, MAX_CHUNK_S]
    assert [s.text for s in segments] == ["hello there"] and language == "en"


def test_an_interim_hypothesis_is_never_read_twice() -> None:
    engine = WindowedEngine()
    read(engine, LiveRequest(tenant="acme", interim=True), seconds(3))
    assert engine.windows == [LIVE_WINDOW_S]


def test_a_long_utterance_gets_the_full_window_at_once() -> None:
    engine = WindowedEngine()
    read(engine, LiveRequest(tenant="acme"), seconds(LIVE_WINDOW_S))
    assert engine.windows == [MAX_CHUNK_S]


def test_the_answer_is_a_reply_with_the_segments() -> None:
    reply = LiveReply.model_validate_json(
        answer(WindowedEngine(clean=True), encode_request(LiveRequest(tenant="acme"), seconds(2)))
    )
    assert [s.text for s in reply.segments] == ["hello hello hello hello hello hello"]
    assert reply.decode_s >= 0


async def test_an_empty_reply_from_the_lane_is_no_answer() -> None:
    """The worker answers b"" when it could not read an utterance: the API falls back at once."""
    from functions.api.live_lane import read_live
    from tests.fakes import MemoryBus

    async def failed(subject: str, payload: bytes) -> bytes:
        return b""

    bus = MemoryBus()
    bus.responder = failed
    assert await read_live(bus, LiveRequest(tenant="acme"), seconds(1)) is None
