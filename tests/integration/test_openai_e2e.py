"""The OpenAI-compatible API on the real stack, driven by the real ``openai`` client: a file to SRT
and to verbose JSON with word timestamps, Whisper's translate task, OpenAI's error body, and
Shenava's async mode whose callback a receiver verifies with the ``standardwebhooks`` package."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
import srt
import webvtt
from standardwebhooks import Webhook

from functions.common.render_subtitles import MAX_CUE_S, MAX_LINE, MAX_LINES
from tests.integration.pipeline import Pipeline
from tests.receiver import Receiver
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SPOKEN = ("Good morning. Today we talk about the weather in London and in Paris. "
          "It will rain in the afternoon, so take an umbrella with you.")  # fmt: skip


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav(SPOKEN, "en-us", tmp_path_factory.mktemp("en") / "weather.wav", delay_s=1.0)


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=pipeline.api_key, base_url=f"{pipeline.api_url}/v1", timeout=300
    ) as c:
        yield c


async def test_a_file_to_srt_with_the_openai_client(client: openai.AsyncOpenAI, english: Path) -> None:
    with english.open("rb") as audio:
        subtitles = await client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="srt", language="en"
        )
    assert isinstance(subtitles, str)
    cues = list(srt.parse(subtitles, ignore_errors=False))
    assert cues and cues[0].start.total_seconds() >= 0.5  # after the second of silence (word times ±0.4 s)
    text = " ".join(c.content for c in cues).lower()
    assert "weather" in text and "umbrella" in text
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE for line in lines)
        assert 0 < (cue.end - cue.start).total_seconds() <= MAX_CUE_S


async def test_verbose_json_with_word_and_segment_timestamps(
    client: openai.AsyncOpenAI, english: Path
) -> None:
    with english.open("rb") as audio:
        verbose = await client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json",
            timestamp_granularities=["word", "segment"], prompt="London, Paris",
        )  # fmt: skip
    assert verbose.language == "english" and 8.0 < verbose.duration < 15.0
    assert "umbrella" in verbose.text.lower()
    assert verbose.words and verbose.segments
    starts = [w.start for w in verbose.words]
    assert starts == sorted(starts) and all(w.start <= w.end <= verbose.duration + 0.5 for w in verbose.words)
    assert any(w.word.strip(".,").lower() == "weather" for w in verbose.words)
    assert verbose.words[0].start >= 0.5 and verbose.segments[0].text.strip()


async def test_translation_and_vtt_and_openais_error_body(
    client: openai.AsyncOpenAI, english: Path, tmp_path: Path
) -> None:
    with english.open("rb") as audio:
        translated = await client.audio.translations.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    assert translated.language == "english" and translated.text.strip()
    with english.open("rb") as audio:
        vtt = await client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert webvtt.from_buffer(io.StringIO(vtt)).captions
    models = await client.models.list()
    assert "whisper-1" in [m.id for m in models.data]
    with english.open("rb") as audio, pytest.raises(openai.BadRequestError) as refused:
        await client.audio.transcriptions.create(model="whisper-9", file=audio)
    assert refused.value.status_code == 400 and "whisper-9" in refused.value.message
    assert refused.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with english.open("rb") as audio, pytest.raises(openai.AuthenticationError):
        bad = openai.AsyncOpenAI(api_key="shv_nope", base_url=client.base_url)
        await bad.audio.transcriptions.create(model="whisper-1", file=audio)


async def test_async_mode_answers_202_calls_back_signed_and_serves_the_result(
    pipeline: Pipeline, client: openai.AsyncOpenAI, english: Path, receiver: Receiver
) -> None:
    with english.open("rb") as audio:
        raw = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            extra_body={"callback_url": receiver.url},
        )
    assert raw.status_code == 202
    job = raw.http_response.json()
    assert job["object"] == "audio.job" and job["status"] == "queued" and job["url"].endswith(job["id"])

    received = await receiver.next(timeout=120)
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=60) as api:
        secret = (await api.get("/shenava/v1/webhooks/secret")).json()["secret"]
        payload = Webhook(secret).verify(received.body, received.headers)  # the receiver's check
        assert payload["type"] == "audio.job.completed" and payload["data"]["id"] == job["id"]
        assert "umbrella" in payload["data"]["result"]["text"].lower()
        subtitles = await api.get(f"/v1/audio/jobs/{job['id']}", params={"response_format": "srt"})
        assert subtitles.status_code == 200 and list(srt.parse(subtitles.text))
        missing = await api.get("/v1/audio/jobs/0190a000-0000-7000-8000-000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["message"]
