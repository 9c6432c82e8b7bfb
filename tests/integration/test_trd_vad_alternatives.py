"""TRD v3's VAD chunk settings and ``max_sentences`` on the real engine, through the API.

The speech (espeak-ng, English) is one sentence broken by a 2 s pause in the middle of it, where
Whisper by itself keeps one segment, and one 7.7 s sentence without pauses.
"""

from __future__ import annotations

import json
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.pipeline import Pipeline
from tests.speech import espeak_wav, silence_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

BEFORE, AFTER, PAUSE_S = "Please send the report", "to the finance team before noon.", 2.0
LONG = (
    "Our customer service line is open every day of the week and our agents will be happy "
    "to answer every question you may have about your account"
)
MARGIN_S = 0.25  # the VAD's and the word timings' slack around the pause


@pytest.fixture
async def trd(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The sentence with its pause, and when the pause starts (s)."""
    folder = tmp_path_factory.mktemp("paused")
    before = espeak_wav(BEFORE, "en-us", folder / "before.wav")
    after = espeak_wav(AFTER, "en-us", folder / "after.wav")
    silence = silence_wav(PAUSE_S, folder / "silence.wav")
    path = folder / "paused.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for part in (before, silence, after):
            with wave.open(str(part), "rb") as wav:
                out.writeframes(wav.readframes(wav.getnframes()))
    with wave.open(str(before), "rb") as wav:
        return path, wav.getnframes() / wav.getframerate()


@pytest.fixture(scope="module")
def long_sentence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav(LONG, "en-us", tmp_path_factory.mktemp("long") / "long.wav")


async def segments(trd: httpx.AsyncClient, audio: Path, **config: Any) -> list[dict[str, Any]]:
    """The TRD segments of a synchronous transcription with this configuration (English)."""
    body = {**config, "recognition": {**config.get("recognition", {}), "language": "en"}}
    files = {"upload_file": (audio.name, audio.read_bytes(), "audio/x-wav")}
    response = await trd.post("/trd/v3/transcribe", files=files, data={"config": json.dumps(body)})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["segments"]
    assert found
    return found


def vad(silence_ms: int, length_frames: int = 3600) -> dict[str, Any]:
    return {"diarization": {"vad": {"chunk_max_silence": silence_ms, "chunk_max_length": length_frames}}}


def text(segment: dict[str, Any]) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", segment["alternatives"][0]["text"].lower()).split())


def spans_the_pause(segment: dict[str, Any], pause_start: float) -> bool:
    return segment["start"] < pause_start - MARGIN_S and segment["end"] > pause_start + PAUSE_S + MARGIN_S


async def test_a_pause_longer_than_chunk_max_silence_ends_the_segment(
    trd: httpx.AsyncClient, paused: tuple[Path, float]
) -> None:
    audio, pause_start = paused

    split = await segments(trd, audio, **vad(silence_ms=1000))
    joined = await segments(trd, audio, **vad(silence_ms=60_000, length_frames=6000))

    assert len(split) >= 2 and not any(spans_the_pause(s, pause_start) for s in split)
    before = [text(s) for s in split if s["end"] <= pause_start + MARGIN_S]
    after = [text(s) for s in split if s["start"] >= pause_start + PAUSE_S - MARGIN_S]
    assert "report" in " ".join(before) and "report" not in " ".join(after), split
    assert "noon" in " ".join(after) and "noon" not in " ".join(before), split
    # With pauses allowed, the sentence is one segment across its pause, as Whisper read it.
    assert len(joined) == 1 and spans_the_pause(joined[0], pause_start), joined
    assert "report" in text(joined[0]) and "noon" in text(joined[0])


async def test_chunk_max_length_cuts_a_long_sentence(trd: httpx.AsyncClient, long_sentence: Path) -> None:
    whole = await segments(trd, long_sentence)  # the defaults: 36 s, decoded as Whisper's 30 s
    cut = await segments(trd, long_sentence, **vad(silence_ms=1200, length_frames=500))

    assert max(s["end"] - s["start"] for s in whole) > 5.0, whole
    assert len(cut) >= 2 and all(s["end"] - s["start"] <= 5.0 + 0.05 for s in cut), cut
    heard = " ".join(text(s) for s in cut)
    assert "customer service" in heard and "account" in heard, heard


async def test_max_sentences_gives_ranked_distinct_alternatives(
    trd: httpx.AsyncClient, paused: tuple[Path, float]
) -> None:
    audio, _ = paused
    one = await segments(trd, audio, **vad(silence_ms=1000))
    three = await segments(trd, audio, **vad(silence_ms=1000), recognition={"decoder": {"max_sentences": 3}})

    assert [s["alternatives"][0]["text"] for s in three] == [s["alternatives"][0]["text"] for s in one]
    assert [s["alternatives"][0]["words"] for s in three] == [s["alternatives"][0]["words"] for s in one]
    assert all(len(s["alternatives"]) == 1 for s in one)
    assert all(1 <= len(s["alternatives"]) <= 3 for s in three)
    assert any(len(s["alternatives"]) > 1 for s in three), three
    for segment in three:
        readings = [text({"alternatives": [a]}) for a in segment["alternatives"]]
        assert len(set(readings)) == len(readings), readings  # distinct, not a case or comma apart
        scores = [a["score"] for a in segment["alternatives"]]
        assert all(0 <= score <= 100 for score in scores)
        assert scores == sorted(scores, reverse=True), scores
        assert all(a["words"] == [] for a in segment["alternatives"][1:])
