"""The OpenAI-compatible audio API: ``/v1/audio/transcriptions``, ``/v1/audio/translations``,
``/v1/models``, and Shenava's async jobs (``/v1/audio/jobs``).

Owns its paths, its multipart fields (``file``, ``model``, ``language``, ``prompt``,
``response_format``, ``temperature``, ``timestamp_granularities[]``) and OpenAI's error body
``{"error": {"message", "type", "param", "code"}}``; the rest is the service core. A request is
a job like any other: submitted, then waited on through its events (``JobService.wait_finished``)
and answered in the asked format; the job is removed once answered, as OpenAI keeps nothing.

Beyond OpenAI: ``callback_url`` (a form field) or ``async=true`` answers ``202`` at once with the
job (``{"id", "object": "audio.job", "status", "url"}``) for long files; ``GET /v1/audio/jobs/{id}``
answers the result when it is done (in the request's ``response_format`` or a ``response_format``
query), and the callback URL receives a Standard Webhooks notification
(``audio.job.completed`` with the result, ``audio.job.failed``, ``audio.job.cancelled``).

``prompt`` biases the decoder (as TRD's hints do). ``temperature`` (0 to 1) is OpenAI's: at the
default 0 the quality guard chooses temperatures itself, as OpenAI does (beam search first, then
sampling at rising temperatures only for windows whose reading fails); above 0 every window is
sampled at that temperature, then 0.2 higher where a reading fails, as Whisper's ``transcribe``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile

from functions.api.auth import caller_tenant
from functions.api.poll_cache import JSON, encode_json
from functions.api.service import JobService, Submission
from functions.api.uploads import spool_upload
from functions.common.callbacks import check_callback_targets
from functions.common.errors import BadRequest, NotFound, ServiceUnavailable
from functions.common.jobs import JobDocument, JobStatus, OpenAIRequest, RecognitionOptions
from functions.common.languages import language_of_model
from functions.common.reasons import public_reason
from functions.common.render_openai import GRANULARITIES, RESPONSE_FORMATS, TEXT_TYPES, job_status, render

PREFIX = "/v1/audio"
MODELS_PATH = "/v1/models"
PREFIXES = (PREFIX, MODELS_PATH)
MODELS = ("whisper-1", "shenava-whisper")  # OpenAI's name, so clients work unchanged; Shenava's engine
MAX_PROMPT_CHARS = 1000
router = APIRouter(tags=["OpenAI-compatible audio"])
Tenant = Annotated[str, Depends(caller_tenant)]
CREATED = int(time.time())


def render_error(status: int, message: str) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    code = {401: "invalid_api_key", 404: "not_found", 413: "file_too_large"}.get(status)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(status_code=status, content=body)


def service(request: Request) -> JobService:
    return JobService(request.app.state.deps, request.app.state.polls)


@router.get(MODELS_PATH, summary="The models /v1/audio accepts")
async def models(tenant: Tenant) -> dict[str, Any]:
    data = [{"id": name, "object": "model", "created": CREATED, "owned_by": "shenava"} for name in MODELS]
    return {"object": "list", "data": data}


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _temperature(form: FormData) -> float:
    given = _text(form, "temperature")
    try:
        value = float(given) if given is not None else 0.0
    except ValueError as exc:
        raise BadRequest(f"temperature must be a number, not {given!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise BadRequest("temperature must be between 0 and 1")
    return value


def _granularities(form: FormData, response_format: str) -> list[str]:
    given = [
        v for name in ("timestamp_granularities[]", "timestamp_granularities") for v in form.getlist(name)
    ]
    chosen = [v.strip() for v in given if isinstance(v, str) and v.strip()]
    unknown = [v for v in chosen if v not in GRANULARITIES]
    if unknown:
        raise BadRequest(f"timestamp_granularities: {unknown[0]!r} is not one of word, segment")
    if chosen and response_format != "verbose_json":
        raise BadRequest("timestamp_granularities need response_format verbose_json")
    return chosen or ["segment"]


def _request(form: FormData, task: str) -> OpenAIRequest:
    model = _text(form, "model")
    if model is None:
        raise BadRequest("model is required (see GET /v1/models)")
    if model not in MODELS:
        raise BadRequest(f"the model {model!r} does not exist; use one of {', '.join(MODELS)}")
    response_format = _text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise BadRequest(f"response_format is one of {', '.join(RESPONSE_FORMATS)}")
    return OpenAIRequest(
        task=task, response_format=response_format, temperature=_temperature(form),
        timestamp_granularities=_granularities(form, response_format),
        callback_url=_text(form, "callback_url") or "",
    )  # fmt: skip


def _options(form: FormData, task: str, temperature: float) -> RecognitionOptions:
    prompt = _text(form, "prompt") or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt is longer than {MAX_PROMPT_CHARS} characters")
    language = language_of_model(None, _text(form, "language"))
    return RecognitionOptions(
        language=language, task=task, timestamps=True, hints=[prompt] if prompt else [],
        temperature=temperature,
    )  # fmt: skip


async def _submission(request: Request, tenant: str, task: str) -> tuple[Submission, Path, bool]:
    form = await request.form(max_files=1, max_fields=32)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("file is required (multipart/form-data)")
    openai = _request(form, task)
    options = _options(form, task, openai.temperature)
    wait = (_text(form, "async") or "false").lower() not in {"true", "1", "yes"} and not openai.callback_url
    settings = request.app.state.deps.settings
    if openai.callback_url:
        await check_callback_targets([openai.callback_url], settings.outbound_allowlist, field="callback_url")
    path = await spool_upload(upload, settings)
    submission = Submission(
        tenant=tenant, source="openai", media_path=path, filename=upload.filename or "audio",
        content_type=upload.content_type or "application/octet-stream", options=options, openai=openai,
        results_ttl_minutes=settings.results_ttl_minutes,
    )  # fmt: skip
    return submission, path, wait


@router.post(PREFIX + "/transcriptions", summary="Transcribe audio (OpenAI-compatible)", response_model=None)
async def transcriptions(request: Request, tenant: Tenant) -> Response:
    return await _run(request, tenant, "transcribe")


@router.post(PREFIX + "/translations", summary="Translate audio into English text", response_model=None)
async def translations(request: Request, tenant: Tenant) -> Response:
    return await _run(request, tenant, "translate")


async def _run(request: Request, tenant: str, task: str) -> Response:
    svc = service(request)
    await svc.check_queue()
    submission, path, wait = await _submission(request, tenant, task)
    try:
        job = await svc.submit(submission)
    finally:
        path.unlink(missing_ok=True)
    if not wait:
        return JSONResponse(status_code=202, content=job_status(job, svc.deps.settings.base_url))
    timeout = svc.deps.settings.sync_timeout_s
    if not (await svc.wait_finished(tenant, job.id, timeout)).finished:
        await svc.stop(tenant, job.id)
        raise ServiceUnavailable(
            f"the transcription did not finish within {timeout:g} s; send it with async=true"
        )
    job = await svc.get(tenant, job.id)
    try:
        return await _result(svc, job, None)
    finally:
        await svc.purge(job)  # answered: nothing is kept, as OpenAI keeps nothing


async def _result(svc: JobService, job: JobDocument, response_format: str | None) -> Response:
    """A finished job's answer: the result in the asked format, or OpenAI's error for a failure."""
    request = job.openai or OpenAIRequest()
    if job.status == JobStatus.FAILED:
        raise BadRequest(f"the audio could not be transcribed: {public_reason(job.failure_reason)}")
    if job.status != JobStatus.COMPLETED:
        raise BadRequest(f"the job {job.id} was {job.status.value.lower()}")
    transcript = await svc.transcript(job)
    if transcript is None:
        raise NotFound(f"the result of {job.id} is no longer stored")
    chosen = response_format or request.response_format
    body = render(transcript, chosen, request.task, request.timestamp_granularities, request.temperature)
    if isinstance(body, str):
        return Response(body, media_type=TEXT_TYPES[chosen])
    return Response(encode_json(body), media_type=JSON)


@router.get(PREFIX + "/jobs/{job_id}", summary="An async job: its result when done, else its status",
            response_model=None)  # fmt: skip
async def audio_job(
    request: Request, tenant: Tenant, job_id: str, response_format: str | None = None
) -> Response:
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise BadRequest(f"response_format is one of {', '.join(RESPONSE_FORMATS)}")
    svc = service(request)
    job = (await svc.poll(tenant, job_id)).job
    if job.openai is None:
        raise NotFound(f"no audio job with id {job_id}")
    if job.status == JobStatus.COMPLETED:
        return await _result(svc, job, response_format)
    status = 202 if not job.status.finished else 200
    return JSONResponse(status_code=status, content=job_status(job, svc.deps.settings.base_url))


@router.delete(PREFIX + "/jobs/{job_id}", status_code=204, response_model=None,
               summary="Delete an async job, its media and its result")  # fmt: skip
async def delete_audio_job(request: Request, tenant: Tenant, job_id: str) -> Response:
    svc = service(request)
    job = await svc.get(tenant, job_id)
    if job.openai is None:
        raise NotFound(f"no audio job with id {job_id}")
    await svc.delete(tenant, job_id)  # a job being transcribed is refused (400): it cannot be now
    return Response(status_code=204)
