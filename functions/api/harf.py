"""Harf (Persian speech-to-text): ``/api/transcribe_files/`` and the live websocket.

Owns its paths, its request bodies, its answers and its error body. Harf answers errors the way
Django REST framework does (its ``Token KEY`` scheme is DRF's): ``{"detail": "…"}``.

- ``POST /api/transcribe_files/`` with JSON ``{"media_urls": […], "wait": true}`` (each URL is
  downloaded by ``fetch``), or multipart with one or more ``media`` files (and optional ``wait``
  and ``language`` fields), or ``{"task_ids": […]}`` (also spelled ``tasks_ids``) to poll.
- The answer is the list ``[{"media_url", "duration", "segments": [{"start", "end", "text"}]}]``
  when every task is done; otherwise a state: ``PENDING`` (with ``task_ids`` when answering a
  submission), ``FAILURE`` (with the reason) or ``TIMEOUT`` (unfinished after
  ``harf_task_timeout_s``). ``wait: true`` (the default) first waits on the jobs' events for up
  to ``harf_wait_timeout_s``.
- Task ids are job ids. A Harf request is transcribed as ``harf_language`` (Persian) unless it
  names another ``language`` (an extension; ``auto`` detects).
- ``GET /api/transcribe_files/media/<task_id>/<filename>`` serves an uploaded file (or a live
  stream's recording) back to its owner: the ``media_url`` of those tasks.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from functions.api import harf_tasks
from functions.api.auth import caller_tenant, tenant_of
from functions.api.harf_stream import CLOSE_POLICY, StreamSession
from functions.api.harf_tasks import PREFIX, UPLOAD_SOURCE, URL_SOURCE, TaskState, media_url
from functions.api.media_responses import media_response
from functions.api.service import JobService, Submission
from functions.api.subtitle_responses import SUBTITLE_FORMATS, subtitle_download, subtitle_format
from functions.api.uploads import spool_upload
from functions.common.errors import ApiError, BadRequest, NotFound, PayloadTooLarge, WrongState
from functions.common.fetch import FetchedMedia
from functions.common.jobs import JobDocument, JobStatus, RecognitionOptions
from functions.common.languages import language_of_model
from functions.common.media_store import upload_key
from functions.common.validation import validation_message

WS_PATH = "/ws_api/transcribe_files/wav/sync/"
MAX_TASKS = 16  # URLs, files or task ids in one request
MAX_URL_CHARS = 2048
MAX_JSON_BYTES = 1024 * 1024
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

router = APIRouter(tags=["Harf"])
Tenant = Annotated[str, Depends(caller_tenant)]


def render_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


class TranscribeFilesBody(BaseModel):
    """The JSON body: submit ``media_urls`` or poll ``task_ids``. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    media_urls: list[Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)]] | None = Field(
        default=None, max_length=MAX_TASKS
    )
    task_ids: list[str] | None = Field(
        default=None, max_length=MAX_TASKS, validation_alias=AliasChoices("task_ids", "tasks_ids")
    )
    wait: bool = True
    language: str | None = None


def service(request: Request | WebSocket) -> JobService:
    return JobService(request.app.state.deps, request.app.state.polls)


def _language(request: Request | WebSocket, given: str | None) -> str | None:
    default = request.app.state.deps.settings.harf_language
    return language_of_model(None, given if given else default or "auto")


@router.post(PREFIX + "/", summary="Transcribe media URLs or uploaded files; poll tasks")
@router.post(PREFIX, include_in_schema=False)
async def transcribe_files(request: Request, tenant: Tenant) -> Response:
    svc = service(request)
    if _content_type(request) == "multipart/form-data":
        jobs, wait = await _submit_uploads(request, svc, tenant)
        return await _answer(request, svc, jobs, wait, submitted=True)
    body = await _json_body(request)
    if body.task_ids is not None and body.media_urls is not None:
        raise BadRequest("send either media_urls or task_ids, not both")
    if body.task_ids is not None:
        ids = [_task_id(task_id) for task_id in _nonempty(body.task_ids, "task_ids")]
        tasks = await harf_tasks.task_states(svc, tenant, ids)
        if body.wait and not all(task.status.finished for task in tasks):
            jobs = [await harf_tasks.polled_task(svc, tenant, task.id) for task in tasks]
            return await _answer(request, svc, jobs, body.wait, submitted=False)
        return await harf_tasks.answer(request, svc, tenant, tasks)
    if body.media_urls is None:
        raise BadRequest("send media_urls (a list of URLs), task_ids, or a multipart media file")
    urls = _nonempty(body.media_urls, "media_urls")
    options = RecognitionOptions(language=_language(request, body.language))
    ttl = svc.deps.settings.results_ttl_minutes

    def submission_for(media: FetchedMedia) -> Submission:
        # The URL is kept in the job's tag (Harf has no tags): the job document has no field
        # for a source URL, and polling must answer with the URL as the task's media_url.
        return Submission(
            tenant=tenant, source=URL_SOURCE, media_path=media.path, content_type=media.content_type,
            filename=media.filename, options=options, tag=media.url, results_ttl_minutes=ttl,
        )  # fmt: skip

    jobs = await svc.submit_urls(urls, submission_for)
    return await _answer(request, svc, jobs, body.wait, submitted=True)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _nonempty(values: list[str], name: str) -> list[str]:
    if not values:
        raise BadRequest(f"{name} is empty; give at least one")
    return values


async def _json_body(request: Request) -> TranscribeFilesBody:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc}); send application/json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with media_urls or task_ids")
    try:
        return TranscribeFilesBody.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from exc


async def _submit_uploads(request: Request, svc: JobService, tenant: str) -> tuple[list[JobDocument], bool]:
    settings = svc.deps.settings
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_audio_bytes * MAX_TASKS:
        raise PayloadTooLarge(f"the upload is larger than {settings.max_audio_bytes * MAX_TASKS} bytes")
    form = await request.form(max_files=MAX_TASKS, max_fields=16)
    try:
        files = _form_files(form)
        wait = _form_bool(form.get("wait"), "wait", default=True)
        options = RecognitionOptions(language=_language(request, _form_str(form.get("language"))))
        jobs = [await _submit_upload(svc, tenant, upload, options) for upload in files]
    finally:
        await form.close()
    return jobs, wait


def _form_files(form: FormData) -> list[UploadFile]:
    files = [v for v in form.getlist("media") if isinstance(v, UploadFile)]
    files = files or [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise BadRequest("the multipart body has no media file part")
    return files


def _form_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _form_bool(value: Any, name: str, default: bool) -> bool:
    text = _form_str(value)
    if text is None:
        return default
    if text.strip().lower() in {"true", "1", "yes"}:
        return True
    if text.strip().lower() in {"false", "0", "no"}:
        return False
    raise BadRequest(f"{name} must be true or false, not {text!r}")


async def _submit_upload(
    svc: JobService, tenant: str, upload: UploadFile, options: RecognitionOptions
) -> JobDocument:
    path = await spool_upload(upload, svc.deps.settings)
    try:
        return await svc.submit(
            Submission(
                tenant=tenant,
                source=UPLOAD_SOURCE,
                media_path=path,
                content_type=upload.content_type or "application/octet-stream",
                filename=upload.filename or "media",
                options=options,
                results_ttl_minutes=svc.deps.settings.results_ttl_minutes,
            )
        )
    finally:
        path.unlink(missing_ok=True)


def _task_id(given: str) -> str:
    task_id = given.strip().lower()
    if not TASK_ID.match(task_id):
        raise BadRequest(f"{task_id!r} is not a task id")
    return task_id


async def _task(svc: JobService, tenant: str, task_id: str) -> JobDocument:
    task_id = _task_id(task_id)
    try:
        return await svc.get(tenant, task_id)
    except NotFound as exc:
        raise NotFound(f"no task with id {task_id}") from exc


async def _answer(
    request: Request, svc: JobService, jobs: list[JobDocument], wait: bool, submitted: bool
) -> Response:
    """The results when every task is done, else the state (after waiting, if asked to)."""
    if wait:
        jobs = await _wait(svc, jobs)
    tasks = [TaskState.of_job(job) for job in jobs]
    if submitted and not all(job.status == JobStatus.COMPLETED for job in jobs):
        state = harf_tasks.state_of(tasks, svc)
        return JSONResponse({**state, "task_ids": [job.id for job in jobs]})
    return await harf_tasks.answer(request, svc, jobs[0].tenant, tasks)


async def _wait(svc: JobService, jobs: list[JobDocument]) -> list[JobDocument]:
    if all(job.status.finished for job in jobs):
        return jobs
    settings, now = svc.deps.settings, svc.deps.clock()

    async def one(job: JobDocument) -> JobDocument:
        left = settings.harf_task_timeout_s - (now - job.created_at).total_seconds()
        timeout = max(0.0, min(settings.harf_wait_timeout_s, left))
        await svc.wait_finished(job.tenant, job.id, timeout)
        return await svc.get(job.tenant, job.id)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


@router.get(
    PREFIX + "/result/{task_id}",
    summary="A completed task's transcript as a file: srt, vtt, txt or tsv (Shenava's addition)",
    response_model=None,
)
async def get_result_file(request: Request, tenant: Tenant, task_id: str, format: str = "srt") -> Response:
    fmt = subtitle_format(format)
    if fmt is None:
        raise BadRequest(f"format is one of {', '.join(SUBTITLE_FORMATS)}")
    svc = service(request)
    polled = await svc.poll(tenant, _task_id(task_id))
    job = polled.job
    if job.status != JobStatus.COMPLETED:
        raise WrongState(
            f"the task {job.id} is {harf_tasks.TaskState.of_job(job).status.value}; it has no {fmt} yet"
        )

    gone = f"the transcript of task {job.id} is no longer stored"
    return await subtitle_download(request, svc, polled, fmt, f"harf-{fmt}", gone)


@router.get(PREFIX + "/media/{task_id}/{filename}", summary="An uploaded file, for its owner")
async def get_media(request: Request, tenant: Tenant, task_id: str, filename: str) -> Response:
    svc = service(request)
    job = await _task(svc, tenant, task_id)
    if filename != job.filename:
        raise NotFound(f"task {task_id} has no file named {filename}")
    key = job.media.key or upload_key(tenant, job.id, job.filename)
    content_type = job.media.content_type
    missing = f"the media of task {task_id} is no longer stored"
    return await media_response(request, svc.deps.media, key, content_type, job.filename, missing)


@router.websocket(WS_PATH)
async def live(websocket: WebSocket, language: str | None = None, interim: bool = False) -> None:
    """Live transcription: binary WAV windows in, one reply per window, ``finalize`` at the end;
    ``interim=true`` (Shenava's addition) adds hypotheses while speech is still going on."""
    await websocket.accept()
    try:
        tenant = await _ws_tenant(websocket)
        chosen = _language(websocket, language)
    except ApiError as exc:
        await _refuse(websocket, exc.message, CLOSE_POLICY)
        return
    await StreamSession(
        websocket, service(websocket), tenant, chosen, lambda job: media_url(websocket, job), interim
    ).run()


async def _ws_tenant(websocket: WebSocket) -> str:
    return await tenant_of(websocket.headers.get("authorization"), websocket.app.state.deps.state)


async def _refuse(websocket: WebSocket, detail: str, code: int) -> None:
    await websocket.send_json({"state": "FAILURE", "detail": detail})
    await websocket.close(code)
