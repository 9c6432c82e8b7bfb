"""The TRD v3 dialect end to end on the real stack: synchronous and asynchronous jobs."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jiwer
import pytest

from functions.common.bootstrap import bootstrap
from functions.common.callbacks import set_tenant_secret
from tests.integration.pipeline import Pipeline
from tests.receiver import Receiver
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SPOKEN = "Bom dia, hoje vamos falar sobre o tempo em São Paulo e no Rio de Janeiro."
WER_LIMIT = 0.4  # the base model on espeak-ng Portuguese; measured 0.07-0.2
SECRET = "trd-tenant-secret"


@pytest.fixture
async def trd(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def portuguese(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # two seconds of silence first: word times from the media's start and from the segment's differ
    return espeak_wav(SPOKEN, "pt-br", tmp_path_factory.mktemp("pt") / "bom-dia.wav", delay_s=2.0)


def upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    return {"upload_file": (path.name, path.read_bytes(), "audio/x-wav")}


async def test_sync_transcribe_returns_the_job_with_segments_and_forgets_it(
    trd: httpx.AsyncClient, portuguese: Path
) -> None:
    response = await trd.post("/trd/v3/transcribe", params={"tag": "tag-novo"}, files=upload(portuguese))
    assert response.status_code == 200, response.text
    body = response.json()
    job, segments = body["job"], body["segments"]
    assert job["status"] == "COMPLETED" and job["tag"] == "tag-novo" and job["filename"] == "bom-dia.wav"
    assert job["started_at"] <= job["completed_at"]
    assert job["media"]["input"]["channels"] == 1 and job["media"]["input"]["codec"] == "PCM"
    assert job["media"]["output"]["channels"][0]["speech"] > 1.0
    assert segments and all(s["status"] == "RECOGNIZED" and s["channel"] == 1 for s in segments)
    words = [w for s in segments for w in s["alternatives"][0]["words"]]
    assert words and all(0 <= w["score"] <= 100 and w["start_time"] <= w["end_time"] for w in words)
    assert segments[0]["start"] > 1.5  # after the silence
    for s in segments:  # as in the document's example, words count from their segment's start
        for w in s["alternatives"][0]["words"]:
            assert s["start"] + w["end_time"] <= s["end"] + 0.05, (s["start"], s["end"], w)
    heard = re.sub(r"[^\w\s]", " ", " ".join(s["alternatives"][0]["text"] for s in segments).lower())
    reference = re.sub(r"[^\w\s]", " ", SPOKEN.lower())
    assert jiwer.wer(" ".join(reference.split()), " ".join(heard.split())) < WER_LIMIT, heard
    assert (await trd.get(f"/trd/v3/job/status/{job['id']}")).status_code == 404  # deleted when done


async def test_sync_transcribe_refuses_audio_over_120_seconds(trd: httpx.AsyncClient, tmp_path: Path) -> None:
    long_audio = tmp_path / "long.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=130",
                    "-ar", "8000", str(long_audio)], check=True)  # fmt: skip
    response = await trd.post("/trd/v3/transcribe", files=upload(long_audio))
    assert response.status_code == 413 and "120" in response.json()["detail"]


async def test_callback_urls_receive_the_finished_job_signed(
    pipeline: Pipeline, trd: httpx.AsyncClient, portuguese: Path
) -> None:
    receiver = Receiver(secret=SECRET)
    await receiver.start()
    try:
        async with bootstrap(pipeline.settings) as deps:
            await set_tenant_secret(deps.state, deps.secrets, "acme", SECRET)
        response = await trd.post("/trd/v3/job/create", files=upload(portuguese),
                                  data={"callback_urls": receiver.url})  # fmt: skip
        assert response.status_code == 200
        job_id = response.json()["job"]["id"]
        media = response.json()["job"]["media"]  # known at upload, as in the document's create answer
        assert (media["md5"], media["size"]) == (
            hashlib.md5(portuguese.read_bytes()).hexdigest(),
            portuguese.stat().st_size,
        )
        note = await receiver.next(180)
        assert receiver.signed_correctly(note)
        assert note.json["job"]["id"] == job_id and note.json["job"]["status"] == "COMPLETED"
        result = (await trd.get(f"/trd/v3/job/result/{job_id}")).json()
        assert result["segments"] and result["job"]["callback_urls"] == [receiver.url]
        csv_text = (await trd.get(f"/trd/v3/job/result/{job_id}", params={"format": "csv"})).text
        assert csv_text.startswith("contador,canal,início,fim,speaker,texto,score")
    finally:
        await receiver.stop()
