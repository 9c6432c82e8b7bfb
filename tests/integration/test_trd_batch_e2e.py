"""The TRD drop folder end to end: files written with a plain S3 client, read through the API
and straight from the bucket."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

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
SECOND_TAKE = "Obrigado por esperar, já vamos atender."


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
            assert {r["md5"] for r in array} == {md5_of(tmp_path / n) for n in SENTENCES}  # as registered

            # The same name written again is a new version of that file, not a fourth record.
            again = espeak_wav(SECOND_TAKE, "pt-br", tmp_path / "again.wav").read_bytes()
            await s3.put_object(Bucket=settings.media_bucket, Key="incoming/lote-1/tres.wav", Body=again)
            records = await wait_for_record(
                pipeline, api, "lote-1", "tres.wav", hashlib.md5(again).hexdigest()
            )
            assert sorted(r["filename"] for r in records) == sorted(SENTENCES)
            assert (await api.get("/trd/transcription/status/batch/lote-1")).json()["total_files"] == 3
            response = await api.get("/trd/transcription/result/batch/lote-1", params={"format": "csv"})
            assert sorted(zipfile.ZipFile(io.BytesIO(response.content)).namelist()) == sorted(
                f"{n}.csv" for n in SENTENCES
            )
        # without the API: the results lie next to the batch in the bucket
        body = await s3.get_object(Bucket=settings.media_bucket, Key="results/lote-1/dois.wav.csv")
        rows = list(csv.reader(io.StringIO((await body["Body"].read()).decode())))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) >= 2


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


async def wait_for_record(
    pipeline: Pipeline, api: httpx.AsyncClient, batch: str, filename: str, md5: str
) -> list[dict[str, Any]]:
    """The batch's finished records, once ``filename``'s has this md5 (its new version is done)."""

    async def finished() -> list[dict[str, Any]]:
        while True:
            response = await api.get(
                f"/trd/transcription/result/batch/{batch}", params={"format": "json-array"}
            )
            records: list[dict[str, Any]] = json.loads(
                zipfile.ZipFile(io.BytesIO(response.content)).read(f"{batch}.json")
            )
            if any(r["filename"] == filename and r["md5"] == md5 for r in records):
                return records
            await pipeline.watch.changed_any(timeout=1.0)

    return await asyncio.wait_for(finished(), 300)


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
