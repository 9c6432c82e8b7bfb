"""CPqD Transcrição de Diálogos, API v3 (``/trd/v3``): jobs, results, queries.

Owns its paths, its multipart fields (``upload_file``, ``config``, ``callback_urls``), its
JOB rendering and its error body ``{"detail": message}``; the rest is the service core.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile

from events.errors import PoisonError
from functions.api import listings
from functions.api.admission import rate_limiter
from functions.api.auth import caller_tenant
from functions.api.poll_cache import JSON, encode_json, job_response
from functions.api.service import JobQuery, JobService, Submission
from functions.api.subtitle_responses import SUBTITLE_FORMATS, as_download, subtitle_format
from functions.api.trd_config import parse_config, recognition_options
from functions.api.uploads import spool_upload
from functions.common.bootstrap import Deps
from functions.common.callbacks import check_callback_targets, validate_callback_url
from functions.common.datasets import SLUG, DatasetRepository, DatasetType
from functions.common.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ShenavaError,
    Unauthorized,
    Unprocessable,
    WrongState,
)
from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobStatus
from functions.common.probe import probe
from functions.common.reasons import public_reason
from functions.common.render_subtitles import FORMATS
from functions.common.render_subtitles import render as render_subtitles
from functions.common.render_trd import render_csv, render_job, render_segments
from functions.common.transcript import Transcript

PREFIX = "/trd/v3"
SYNC_PATH = f"{PREFIX}/transcribe"
router = APIRouter(prefix=PREFIX, tags=["CPqD TRD v3"])
MAX_LIMIT = 1000

StatusFor = tuple[tuple[type[Exception], int], ...]
# The document's codes (400/401/403/404/413/422/429/503), for the kinds of error whose code
# differs from the app's, once for the dialect: a request the job's state does not allow (stop,
# retry, delete, a result not there yet) is 400 "Solicitação inválida" (the document has no 409);
# request validation is 422 "Erro de validação"; a missing or wrong key is 403 "Acesso negado" on
# the job APIs, which list no 401 (the synchronous /transcribe lists 401 and keeps it).
SYNC_STATUS: StatusFor = ((RequestValidationError, 422), (WrongState, 400), (Conflict, 400))
JOB_STATUS: StatusFor = (*SYNC_STATUS, (Unauthorized, 403))


def render_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


async def admitted_tenant(request: Request, tenant: Annotated[str, Depends(caller_tenant)]) -> str:
    rate_limiter(request).check(tenant)
    return tenant


Tenant = Annotated[str, Depends(admitted_tenant)]
Page = Annotated[int, Query(ge=1)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def service(request: Request) -> JobService:
    return JobService(request.app.state.deps, request.app.state.polls)


def _callback_urls(values: list[str]) -> list[str]:
    """``callback_urls`` as repeated fields, a JSON list, or comma-separated."""
    urls: list[str] = []
    for value in values:
        value = value.strip()
        if value.startswith("["):
            try:
                urls.extend(str(u) for u in json.loads(value))
            except json.JSONDecodeError as exc:
                raise Unprocessable("callback_urls is not a valid JSON list") from exc
        else:
            urls.extend(u.strip() for u in value.split(",") if u.strip())
    for url in urls:
        validate_callback_url(url, field="callback_urls")
    return urls


async def check_task_datasets(deps: Deps, tenant: str, slugs: list[str]) -> None:
    """``recognition.tasks``: each must be a trained Kashf text dataset of the caller (422 otherwise)."""
    repo = DatasetRepository(deps.state)
    for slug in slugs:
        dataset = await repo.find(tenant, slug) if SLUG.match(slug) else None
        if dataset is None:
            raise Unprocessable(f"config.recognition.tasks: dataset {slug!r} does not exist")
        if dataset.type != DatasetType.TEXT or not dataset.version:
            raise Unprocessable(f"config.recognition.tasks: dataset {slug!r} is not a trained text dataset")


async def _submission(request: Request, tenant: str, tag: str | None) -> tuple[Submission, Path]:
    form = await request.form(max_files=1, max_fields=32)
    upload = form.get("upload_file")
    if not isinstance(upload, UploadFile):
        raise Unprocessable("upload_file is required (multipart/form-data)")
    raw_config = form.get("config")
    config = parse_config(raw_config if isinstance(raw_config, str) else None)
    options = recognition_options(config)
    await check_task_datasets(request.app.state.deps, tenant, options.tasks)
    urls = _callback_urls([v for v in form.getlist("callback_urls") if isinstance(v, str)])
    await check_callback_targets(urls, request.app.state.deps.settings.outbound_allowlist)
    path = await spool_upload(upload, request.app.state.deps.settings)
    submission = Submission(
        tenant=tenant, source="trd", media_path=path, filename=upload.filename or "audio",
        content_type=upload.content_type or "application/octet-stream", options=options,
        callback_urls=tuple(urls), tag=tag or "", config=config.model_dump(), priority=config.priority,
    )  # fmt: skip
    return submission, path


async def _check_sync_duration(path: Path, limit_s: float) -> None:
    try:
        facts = await probe(path)
    except (ShenavaError, PoisonError) as exc:  # media that cannot be read: the caller's 400
        raise BadRequest(str(exc)) from exc
    if facts.duration > limit_s:
        raise PayloadTooLarge(
            f"the audio lasts {facts.duration:.1f} s; the synchronous limit is {limit_s:g} s"
        )


@router.post("/transcribe", summary="Transcribe a short file and wait for the result (≤ 120 s)")
async def transcribe(request: Request, tenant: Tenant, tag: str | None = None) -> dict[str, Any]:
    svc = service(request)
    await svc.check_queue()
    submission, path = await _submission(request, tenant, tag)
    try:
        await _check_sync_duration(path, svc.deps.settings.sync_max_audio_s)
        job = await svc.submit(submission)
    finally:
        path.unlink(missing_ok=True)
    status = await svc.wait_finished(tenant, job.id, svc.deps.settings.sync_timeout_s)
    if not status.finished:
        await svc.stop(tenant, job.id)
        raise ServiceUnavailable(
            f"the transcription did not finish within {svc.deps.settings.sync_timeout_s:g} s"
        )
    job = await svc.get(tenant, job.id)
    body = await _job_with_segments(svc, job)
    await svc.purge(job)  # the file is deleted when done, as documented
    return body


@router.post("/job/create", summary="Create an asynchronous transcription job")
async def create(request: Request, tenant: Tenant, tag: str | None = None) -> dict[str, Any]:
    svc = service(request)
    await svc.check_queue()
    submission, path = await _submission(request, tenant, tag)
    try:
        job = await svc.submit(submission)
    finally:
        path.unlink(missing_ok=True)
    return {"job": render_job(job)}


@router.get("/job", summary="List jobs", response_model=None)
async def list_jobs(request: Request, tenant: Tenant, tag: str | None = None, page: Page = 1,
                    limit: Limit = 100) -> Response:  # fmt: skip
    snapshot = await service(request).polls.index.snapshot(tenant)

    def render() -> bytes:
        total, rows = listings.page(snapshot, JobQuery(page=page, limit=limit, tag=tag))
        results = [{"job": _row_job(r)} for r in rows]
        return encode_json({"page": page, "limit": limit, "total": total, "results": results})

    return Response(snapshot.remember(("trd-job", tag, page, limit), render), media_type=JSON)


def _row_job(row: JobRow) -> dict[str, Any]:
    tag = {"tag": row.tag} if row.tag else {}
    return {"id": row.id, "filename": row.filename, "status": row.status, **tag,
            "callback_failure_reason": row.callback_failure_reason,
            "failure_reason": public_reason(row.failure_reason)}  # fmt: skip


@router.get("/job/status/{job_id}", summary="A job's status", response_model=None)
async def status(request: Request, tenant: Tenant, job_id: str) -> Response:
    polled = await service(request).poll(tenant, job_id)

    async def render() -> dict[str, Any]:
        return {"job": render_job(polled.job)}

    return await job_response(request, polled, "trd-status", render)


async def _job_with_segments(svc: JobService, job: JobDocument) -> dict[str, Any]:
    transcript = await svc.transcript(job) if job.status == JobStatus.COMPLETED else None
    return {"job": render_job(job), "segments": render_segments(job, transcript) if transcript else []}


@router.get(
    "/job/result/{job_id}",
    summary="A finished job's result: JSON, CSV, or subtitles and plain text (srt, vtt, txt, tsv)",
    response_model=None,
)
async def result(request: Request, tenant: Tenant, job_id: str, format: str = "json") -> Response:
    svc = service(request)
    polled = await svc.poll(tenant, job_id)
    subtitles = subtitle_format(format)
    if format not in {"json", "csv"} and subtitles is None:
        raise Unprocessable(f"format is json, csv, {', '.join(SUBTITLE_FORMATS)}")
    job = polled.job

    async def render() -> dict[str, Any] | str:
        transcript = await _finished_transcript(svc, job)
        if subtitles is not None:
            return render_subtitles(transcript, subtitles)
        if format == "json":
            return {"job": render_job(job), "segments": render_segments(job, transcript)}
        return render_csv(job, transcript)

    if subtitles is not None:
        answer = await job_response(request, polled, f"trd-result-{subtitles}", render, FORMATS[subtitles])
        return as_download(answer, job, subtitles)
    media_type = JSON if format == "json" else "text/csv; charset=utf-8"
    return await job_response(request, polled, f"trd-result-{format}", render, media_type)


async def _finished_transcript(svc: JobService, job: JobDocument) -> Transcript:
    """A COMPLETED job's transcript. Any other state is refused naming it (JSON and CSV alike), so
    an unfinished job is never taken for an empty transcript."""
    if job.status != JobStatus.COMPLETED:
        why = f": {public_reason(job.failure_reason)}" if job.failure_reason else ""
        raise WrongState(f"the job {job.id} is {job.status.value}{why}; only a COMPLETED job has a result")
    transcript = await svc.transcript(job)
    if transcript is None:
        raise NotFound(f"the result of the job {job.id} is no longer stored")
    return transcript


@router.post("/job/stop/{job_id}", summary="Stop a QUEUED or IN_PROGRESS job")
async def stop(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return {"job": render_job(await service(request).stop(tenant, job_id))}


@router.post("/job/retry/{job_id}", summary="Run a FAILED or STOPPED job again, as a new job")
async def retry(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return {"job": render_job(await service(request).retry(tenant, job_id))}


@router.delete("/job/{job_id}", summary="Delete a finished job's media and results")
async def delete(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return {"job": render_job(await service(request).close(tenant, job_id))}


@router.get("/query/job", summary="Query jobs by fields and creation dates", response_model=None)
async def query(
    request: Request, tenant: Tenant, result: bool = False, tag: str | None = None,
    filename: str | None = None, status: JobStatus | None = None, start_date: datetime | None = None,
    end_date: datetime | None = None, page: Page = 1, limit: Limit = 100,
) -> Response:  # fmt: skip
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None and value.tzinfo is None:
            raise Unprocessable(f"{name} needs a time zone, e.g. 2022-03-13T00:00:00.000+00:00")
    svc = service(request)
    wanted = JobQuery(page=page, limit=limit, tag=tag, filename=filename,
                      status=status.value if status else None, start=start_date, end=end_date)  # fmt: skip
    snapshot = await svc.polls.index.snapshot(tenant)
    key = ("trd-query", wanted, result)
    known = snapshot.recall(key)
    if isinstance(known, bytes):
        return Response(known, media_type=JSON)
    total, rows = listings.page(snapshot, wanted)
    found = await asyncio.gather(*(_listed(svc, tenant, row, result) for row in rows))
    head = encode_json({"page": page, "limit": limit, "total": total})[:-1]
    body = head + b',"results":[' + b",".join(f for f in found if f is not None) + b"]}"
    if all(JobStatus(row.status).finished for row in rows):  # then nothing on the page changes unseen
        snapshot.replace(key, body)
    return Response(body, media_type=JSON)


async def _listed(svc: JobService, tenant: str, row: JobRow, with_result: bool) -> bytes | None:
    """A job as ``query/job`` lists it; a finished job's is made once for its row (what can still
    change in it, its status and failure reasons, is in the row)."""

    async def render() -> bytes | None:
        polled = await svc.polls.job(tenant, row.id)
        if polled is None:
            return None
        job = polled.job
        return encode_json(await _job_with_segments(svc, job) if with_result else {"job": render_job(job)})

    if JobStatus(row.status).finished:
        return await svc.polls.rendered(("trd-query", with_result, row), render)
    return await render()


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=f"{PREFIX}/openapi.json", title="Shenava — CPqD TRD v3")


@router.get("/openapi.json", include_in_schema=False)
async def openapi() -> dict[str, Any]:
    return get_openapi(title="Shenava — CPqD TRD v3", version="3", routes=router.routes)
