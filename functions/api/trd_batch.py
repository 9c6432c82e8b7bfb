"""CPqD TRD batch API (``/trd/transcription``, ``/trd/audiofile``): the drop folder's control.

Files written by any S3 client to ``incoming/<batch>/<file>`` are registered by ingest as jobs
of the drop tenant (``SHENAVA_DROP_TENANT``); this dialect starts, pauses, resets and reads
them one by one or a batch at a time, in the document's shapes. Errors: ``{"detail": …}``.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from functions.api.auth import caller_tenant
from functions.api.batch_service import DropBatchService
from functions.api.poll_cache import JSON, encode_json, job_response
from functions.api.subtitle_responses import SUBTITLE_FORMATS, as_download
from functions.common.batch_status import render_batch_totals
from functions.common.errors import Unprocessable
from functions.common.jobs import JobDocument, JobStatus
from functions.common.render_subtitles import FORMATS
from functions.common.render_subtitles import render as render_subtitles
from functions.common.render_trd import (
    render_batch_result,
    render_batch_status,
    render_csv,
    render_file_status,
    render_record,
)
from functions.common.transcript import Transcript

PREFIX = "/trd"
router = APIRouter(prefix=PREFIX, tags=["CPqD TRD batch (drop folder)"])
Tenant = Annotated[str, Depends(caller_tenant)]
BATCH_FORMATS = ("json", "csv", "json-array", *SUBTITLE_FORMATS)
FILE_FORMATS = ("json", "csv", *SUBTITLE_FORMATS)


def service(request: Request) -> DropBatchService:
    return DropBatchService(request.app.state.deps, request.app.state.polls)


def file_url(request: Request, job_id: str) -> str:
    return f"{request.app.state.deps.settings.base_url}{PREFIX}/audiofile/{job_id}"


async def _transcript(svc: DropBatchService, job: JobDocument) -> Transcript | None:
    """What there is of a file's result: "o resultado pode ser consultado a qualquer momento, porém
    poderão apresentar resultados parciais" (none before it is recognised; JSON and CSV alike)."""
    return await svc.transcript(job) if job.status == JobStatus.COMPLETED else None


def _format(given: str, allowed: tuple[str, ...]) -> str:
    """``format``, in any case (``CSV``, ``Json``), or 422 naming the choices."""
    if given.lower() not in allowed:
        raise Unprocessable(f"format is one of {', '.join(allowed)}")
    return given.lower()


def unique_names(names: list[str]) -> list[str]:
    """ZIP entry names, a suffix added to repeats (``x.wav.csv``, ``x.wav-2.csv``): one batch may hold
    files of one name in different subfolders."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{stem}-{seen[name]}{dot}{ext}")
    return unique


@router.get("/audiofile/{job_id}", summary="A registered audio file", response_model=None)
async def audiofile(request: Request, tenant: Tenant, job_id: str) -> Response:
    polled = await service(request).poll(tenant, job_id)

    async def render() -> dict[str, Any]:
        return render_record(polled.job)

    return await job_response(request, polled, "trd-record", render)


@router.get("/transcription/start/audiofile/{job_id}", summary="Start (or resume) one file")
async def start_file(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    job = await service(request).resume(tenant, job_id)
    return render_record(job)


@router.get("/transcription/start/batch/{batch}", summary="Start every IDLE or PAUSED file of a batch")
async def start_batch(request: Request, tenant: Tenant, batch: str) -> dict[str, str]:
    svc = service(request)
    started = {}
    for job in await svc.batch_jobs(tenant, batch):
        job = await svc.resume(tenant, job.id, strict=False)
        started[job.filename] = file_url(request, job.id)
    return started


@router.get("/transcription/stop/audiofile/{job_id}", summary="Pause one file after its current stage")
async def stop_file(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return render_record(await service(request).pause(tenant, job_id))


@router.get("/transcription/stop/batch/{batch}", summary="Pause every RUNNING file of a batch")
async def stop_batch(request: Request, tenant: Tenant, batch: str) -> dict[str, str]:
    svc = service(request)
    return {
        (await svc.pause(tenant, job.id, strict=False)).filename: file_url(request, job.id)
        for job in await svc.batch_jobs(tenant, batch)
    }


@router.get(
    "/transcription/status/audiofile/{job_id}",
    summary="Recognition progress of one file",
    response_model=None,
)
async def status_file(request: Request, tenant: Tenant, job_id: str) -> Response:
    polled = await service(request).poll(tenant, job_id)

    async def render() -> dict[str, Any]:
        return render_file_status(polled.job)

    return await job_response(request, polled, "trd-file-status", render)


@router.get(
    "/transcription/status/batch/{batch}", summary="Progress and accounting of a batch", response_model=None
)
async def status_batch(request: Request, tenant: Tenant, batch: str) -> Response:
    """From the index's sums of the batch's files, and the running files' documents."""
    svc = service(request)
    totals, running = await svc.batch_totals(tenant, batch)
    return Response(
        encode_json(render_batch_totals(batch, totals, running, svc.deps.clock())), media_type=JSON
    )


@router.get("/transcription/reset/audiofile/{job_id}", summary="Forget a file's transcription (new id)")
async def reset_file(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return render_record(await service(request).reset(tenant, job_id))


@router.get("/transcription/reset/batch/{batch}", summary="Reset unfinished or failed files (hard: all)")
async def reset_batch(request: Request, tenant: Tenant, batch: str, hard: bool = False) -> dict[str, Any]:
    svc = service(request)
    for job in await svc.batch_jobs(tenant, batch):
        if hard or job.status != JobStatus.COMPLETED:
            await svc.reset(tenant, job.id)
    return render_batch_status(batch, await svc.batch_jobs(tenant, batch))


@router.get(
    "/transcription/result/audiofile/{job_id}", summary="A file's result, JSON or CSV", response_model=None
)
async def result_file(request: Request, tenant: Tenant, job_id: str, format: str = "json") -> Response:
    svc = service(request)
    polled = await svc.poll(tenant, job_id)
    chosen = _format(format, FILE_FORMATS)
    job = polled.job

    async def render() -> dict[str, Any] | str:
        transcript = await _transcript(svc, job)
        if chosen in SUBTITLE_FORMATS:
            return _subtitles(job, transcript, chosen)
        return render_csv(job, transcript) if chosen == "csv" else render_batch_result(job, transcript)

    if chosen in SUBTITLE_FORMATS:
        answer = await job_response(request, polled, f"trd-batch-result-{chosen}", render, FORMATS[chosen])
        return as_download(answer, job, chosen)
    media_type = "text/csv; charset=utf-8" if chosen == "csv" else JSON
    return await job_response(request, polled, f"trd-batch-result-{chosen}", render, media_type)


def _subtitles(job: JobDocument, transcript: Transcript | None, fmt: str) -> str:
    """A file's subtitles; before it is recognised, the format's empty file (as the CSV's header)."""
    empty = Transcript(job_id=job.id, language="", duration=0.0, channels=1, segments=())
    return render_subtitles(transcript or empty, fmt)


@router.get("/transcription/result/batch/{batch}", summary="A batch's results as a ZIP", response_model=None)
async def result_batch(request: Request, tenant: Tenant, batch: str, format: str = "json") -> Response:
    format = _format(format, BATCH_FORMATS)
    svc = service(request)
    finished = [j for j in await svc.batch_jobs(tenant, batch) if j.status == JobStatus.COMPLETED]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        results = [(job, await svc.transcript(job)) for job in finished]
        if format == "json-array":
            array = [render_batch_result(job, transcript) for job, transcript in results]
            archive.writestr(f"{batch}.json", json.dumps(array, ensure_ascii=False, indent=1))
        else:
            names = unique_names([f"{job.filename}.{format}" for job, _ in results])
            for name, (job, transcript) in zip(names, results, strict=True):
                if format == "json":
                    archive.writestr(
                        name, json.dumps(render_batch_result(job, transcript), ensure_ascii=False)
                    )
                elif format in SUBTITLE_FORMATS:
                    archive.writestr(name, _subtitles(job, transcript, format))
                else:
                    archive.writestr(name, render_csv(job, transcript))
    headers = {"Content-Disposition": f'attachment; filename="{batch}-{format}.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)
