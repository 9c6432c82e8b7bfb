"""The TRD drop folder end to end: files written with a plain S3 client, read through the API
and straight from the bucket."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session

from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap, s3_client_args
from functions.common.render_trd import CSV_COLUMNS
from tests.integration.pipeline import Pipeline
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SENTENCES = {
    "um.wav": "Bom dia, hoje vamos falar sobre o tempo.",
    "dois.wav": "A reunião começa às nove horas da manhã.",
    "tres.wav": "Obrigado pela sua ligação, tenha um bom dia.",
}


async def test_three_dropped_files_are_transcribed_and_zipped(pipeline: Pipeline, tmp_path: Path) -> None:
    settings = pipeline.settings
    async with bootstrap(settings) as deps:
        key = await create_key(deps.state, settings.drop_tenant)
    async with get_session().create_client("s3", **s3_client_args(settings)) as s3:
        for name, text in SENTENCES.items():
            audio = espeak_wav(text, "pt-br", tmp_path / name).read_bytes()
            await s3.put_object(Bucket=settings.media_bucket, Key=f"incoming/lote-1/{name}", Body=audio)
        async with httpx.AsyncClient(
            base_url=pipeline.api_url, headers={"Authorization": f"Bearer {key}"}
        ) as api:
            seen = await wait_for_batch(pipeline, api, "lote-1", len(SENTENCES))
            assert seen[0] <= seen[-1] == 1.0 and seen == sorted(seen)  # progress only goes up, to 1.0
            status = (await api.get("/trd/transcription/status/batch/lote-1")).json()
            assert status["accounted_control"]["FINISHED"]["files"] == 3
            assert status["accounted_status"]["RECOGNIZED"]["files"] == 3
            assert status["total_files"] == 3 and status["ETA"] == 0 and status["total_speech"] > 3
            for fmt in ("json", "csv", "json-array"):
                names = {f"{n}.{fmt}" for n in SENTENCES} if fmt != "json-array" else {"lote-1.json"}
                response = await api.get("/trd/transcription/result/batch/lote-1", params={"format": fmt})
                archive = zipfile.ZipFile(io.BytesIO(response.content))
                assert set(archive.namelist()) == names
            array = json.loads(archive.read("lote-1.json"))
            assert {r["filename"] for r in array} == set(SENTENCES)
            assert all(
                r["control"] == "FINISHED" and r["status"] == "RECOGNIZED" and r["segments"] for r in array
            )
        # without the API: the results lie next to the batch in the bucket
        body = await s3.get_object(Bucket=settings.media_bucket, Key="results/lote-1/dois.wav.csv")
        rows = list(csv.reader(io.StringIO((await body["Body"].read()).decode())))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) >= 2


async def wait_for_batch(pipeline: Pipeline, api: httpx.AsyncClient, batch: str, files: int) -> list[float]:
    """The batch's progress each time a job event arrives, until every file is finished."""
    seen: list[float] = []

    async def finished() -> None:
        while True:
            response = await api.get(f"/trd/transcription/status/batch/{batch}")
            status = response.json() if response.status_code == 200 else {}
            if status.get("total_files") == files:  # every file registered
                seen.append(status["progress"])
                if status["progress"] == 1.0:
                    return
            await pipeline.watch.changed_any(timeout=1.0)

    await asyncio.wait_for(finished(), 300)
    return seen
