"""IBM Watson Speech to Text, asynchronous HTTP interface (``/v1``).

Owns its paths, its query parameters and its error body ``{"code", "error",
"code_description"}``; everything else is the service core.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from functions.api.auth import caller_tenant
from functions.api.poll_cache import JSON, PolledJob, encode_json, job_response
from functions.api.service import JobService, Submission
from functions.api.subtitle_responses import SUBTITLE_FORMATS, subtitle_download, subtitle_format
from functions.api.uploads import spool_body, spool_upload
from functions.common.callbacks import Registration
from functions.common.errors import BadRequest, NotFound, UnsupportedMediaType, WrongState
from functions.common.jobs import JobStatus, RecognitionOptions, WatsonCallback
from functions.common.languages import language_of_model
from functions.common.render_watson import iso_ms, render_results, render_status, render_status_row

PREFIX = "/v1"
router = APIRouter(prefix=PREFIX, tags=["Watson asynchronous"])

EVENTS = (
    "recognitions.started",
    "recognitions.completed",
    "recognitions.completed_with_results",
    "recognitions.failed",
)
DEFAULT_EVENTS = ["recognitions.started", "recognitions.completed", "recognitions.failed"]
RECENT_LIMIT = 100
MAX_ALTERNATIVES = 10  # each alternative beyond the first costs a beam search per segment
MAX_TTL_MINUTES = 60 * 24 * 365

Tenant = Annotated[str, Depends(caller_tenant)]


def render_error(status: int, message: str) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSONResponse(
        status_code=status, content={"code": status, "error": message, "code_description": phrase}
    )


def service(request: Request) -> JobService:
    return JobService(request.app.state.deps, request.app.state.polls)


@router.post("/register_callback", summary="Register a callback URL (challenge GET)")
async def register_callback(
    request: Request, tenant: Tenant, callback_url: str = "", user_secret: str | None = None
) -> JSONResponse:
    outcome = await service(request).register_callback(tenant, callback_url, user_secret or None)
    status = 201 if outcome == Registration.CREATED else 200
    return JSONResponse(status_code=status, content={"status": outcome.value, "url": callback_url})


@router.post("/unregister_callback", summary="Unregister a callback URL")
async def unregister_callback(request: Request, tenant: Tenant, callback_url: str = "") -> JSONResponse:
    if not callback_url:
        raise BadRequest("callback_url is required")
    if not await service(request).callbacks.unregister(tenant, callback_url):
        raise NotFound(f"the callback URL {callback_url} is not registered")
    return JSONResponse(content={"status": "unregistered", "url": callback_url})


def _events(events: str | None) -> list[str]:
    if events is None or not events.strip():
        return list(DEFAULT_EVENTS)
    chosen = [e.strip() for e in events.split(",") if e.strip()]
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise BadRequest(f"unknown event {unknown[0]!r}; events are {', '.join(EVENTS)}")
    if {"recognitions.completed", "recognitions.completed_with_results"} <= set(chosen):
        raise BadRequest("use recognitions.completed or recognitions.completed_with_results, not both")
    return chosen


async def _callback(
    svc: JobService, tenant: str, url: str | None, events: str | None, user_token: str | None
) -> WatsonCallback | None:
    if not url:
        if events or user_token:
            raise BadRequest("events and user_token can only be given with a callback_url")
        return None
    if await svc.callbacks.find(tenant, url) is None:
        raise BadRequest(f"the callback_url {url} is not registered; call /v1/register_callback first")
    return WatsonCallback(url=url, events=_events(events), user_token=user_token or "")


async def _media(request: Request) -> tuple[Path, str, str]:
    """The audio, from a raw body or the first file of a multipart body."""
    settings = request.app.state.deps.settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=8, max_fields=16)
        uploads = [v for v in form.values() if not isinstance(v, str)]
        if not uploads:
            raise BadRequest("the multipart body has no audio file part")
        upload = uploads[0]
        path = await spool_upload(upload, settings)
        return path, upload.content_type or "application/octet-stream", upload.filename or "audio"
    if not content_type or not (
        content_type.startswith(("audio/", "video/")) or content_type == "application/octet-stream"
    ):
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'} is not audio; send audio/wav, audio/flac, "
            "audio/mpeg, audio/ogg, audio/webm, application/octet-stream or multipart/form-data"
        )
    return await spool_body(request, settings), content_type, "audio"


@router.post("/recognitions", status_code=201, summary="Create a recognition job")
async def create_recognition(
    request: Request,
    tenant: Tenant,
    callback_url: str | None = None,
    events: str | None = None,
    user_token: str | None = None,
    results_ttl: Annotated[int | None, Query(ge=1, le=MAX_TTL_MINUTES)] = None,
    model: str | None = None,
    language: str | None = None,
    timestamps: bool = False,
    word_confidence: bool = False,
    speaker_labels: bool = False,
    max_alternatives: Annotated[int, Query(ge=0, le=MAX_ALTERNATIVES)] = 1,
) -> JSONResponse:
    svc = service(request)
    callback = await _callback(svc, tenant, callback_url, events, user_token)
    options = RecognitionOptions(
        language=language_of_model(model, language),
        model=model or "",
        timestamps=timestamps,
        word_confidence=word_confidence,
        speaker_labels=speaker_labels,
        alternatives=max(1, max_alternatives),  # Watson: 0 means the default, 1
    )
    path, content_type, filename = await _media(request)
    try:
        ttl = results_ttl or svc.deps.settings.results_ttl_minutes
        job = await svc.submit(
            Submission(
                tenant=tenant,
                source="watson",
                media_path=path,
                content_type=content_type,
                filename=filename,
                options=options,
                callback=callback,
                results_ttl_minutes=ttl,
            )
        )
    finally:
        path.unlink(missing_ok=True)
    body = {
        "id": job.id,
        "created": iso_ms(job.created_at),
        "url": f"{svc.deps.settings.base_url}{PREFIX}/recognitions/{job.id}",
        "status": "waiting",
    }
    return JSONResponse(status_code=201, content=body)


@router.get("/recognitions", summary="The 100 most recent jobs", response_model=None)
async def list_recognitions(request: Request, tenant: Tenant) -> Response:
    newest = await service(request).recent(tenant, RECENT_LIMIT)
    if newest.body is None:  # once per index snapshot: the listing is polled
        newest.body = encode_json({"recognitions": [render_status_row(row) for row in newest.rows]})
    return Response(newest.body, media_type=JSON)


@router.get(
    "/recognitions/{job_id}", summary="A job's status, with results when completed", response_model=None
)
async def get_recognition(
    request: Request, tenant: Tenant, job_id: str, format: str | None = None
) -> Response:
    """``format`` (Shenava's addition: srt, vtt, txt, tsv) answers a completed job's transcript as
    that file instead of the status; without it, Watson's own answer."""
    svc = service(request)
    polled = await svc.poll(tenant, job_id)
    if format is not None:
        return await _recognition_file(request, svc, polled, format)

    async def render() -> dict[str, Any]:
        job = polled.job
        body = render_status(job)
        if job.status == JobStatus.COMPLETED:
            transcript = await svc.transcript(job)
            if transcript is not None:
                body["results"] = render_results(transcript, job.options)
        return body

    return await job_response(request, polled, "watson", render)


async def _recognition_file(request: Request, svc: JobService, polled: PolledJob, given: str) -> Response:
    fmt = subtitle_format(given)
    if fmt is None:
        raise BadRequest(f"format is one of {', '.join(SUBTITLE_FORMATS)} (or none, for the status)")
    job = polled.job
    if job.status != JobStatus.COMPLETED:
        raise WrongState(
            f"the job {job.id} is {render_status(job)['status']}; only a completed job has a {fmt}"
        )

    gone = f"the results of the job {job.id} are no longer stored"
    return await subtitle_download(request, svc, polled, fmt, f"watson-{fmt}", gone)


@router.delete("/recognitions/{job_id}", status_code=204, summary="Delete a job and its results")
async def delete_recognition(request: Request, tenant: Tenant, job_id: str) -> Response:
    await service(request).delete(tenant, job_id)
    return Response(status_code=204)
