"""The console's JSON (``/ui/api``): what the web console and the ``shenava`` CLI need that no
vendor dialect has — progress, a newest-first job list with filters, a job's transcript in
Shenava's own shape (media-time words, confidences 0..1, speakers, quality flags), its media
for the owner's player, and the drop-folder batches with their files.

Everything else the console and the CLI do (upload, stop, batch start/stop/reset, results in the
dialects' formats, Kashf datasets) goes through the dialects' own endpoints. Auth as everywhere:
``Authorization: Bearer KEY``; errors are ``{"error": …, "code": …}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from functions.api.auth import caller_tenant
from functions.api.batch_service import DropBatchService
from functions.api.media_responses import media_response
from functions.api.subtitle_responses import SUBTITLE_FORMATS, as_download, subtitle_format
from functions.common.errors import BadRequest, NotFound, WrongState
from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobStatus
from functions.common.media_store import upload_key
from functions.common.reasons import public_reason
from functions.common.render_subtitles import FORMATS
from functions.common.render_subtitles import render as render_subtitles
from functions.common.render_trd import control_of, file_progress, render_batch_status

PREFIX = "/ui/api"
router = APIRouter(prefix=PREFIX, tags=["Console"], include_in_schema=False)
Tenant = Annotated[str, Depends(caller_tenant)]
MAX_LIMIT = 500


def service(request: Request) -> DropBatchService:
    return DropBatchService(request.app.state.deps)


@router.get("/session")
async def session(tenant: Tenant) -> dict[str, str]:
    """Who the key belongs to (the console's sign-in check)."""
    return {"tenant": tenant}


def _progress(job: JobDocument) -> dict[str, Any] | None:
    if job.status != JobStatus.IN_PROGRESS or job.progress is None:
        return None
    p = job.progress
    return {"fraction": round(p.fraction, 4), "audio_s": p.audio_s, "total_s": p.total_s,
            "segments": p.segments}  # fmt: skip


def _row(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id, "filename": row.filename, "status": row.status, "created_at": row.created_at,
        "tag": row.tag, "source": row.source, "batch": row.batch,
        "failure_reason": public_reason(row.failure_reason), "progress": None,
    }  # fmt: skip


def _matches(row: JobRow, status: set[str], since: datetime | None, text: str, batch: str | None) -> bool:
    if row.status == JobStatus.DELETED and JobStatus.DELETED not in status:
        return False
    return (
        (not status or row.status in status)
        and (since is None or datetime.fromisoformat(row.created_at) >= since)
        and (not text or text in row.filename.lower() or text in row.tag.lower() or row.id.startswith(text))
        and (batch is None or row.batch == batch)
    )


@router.get("/jobs")
async def jobs(
    request: Request, tenant: Tenant, status: str = "", since: datetime | None = None, q: str = "",
    batch: str | None = None, page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:  # fmt: skip
    """The tenant's jobs, newest first: ``status`` (comma-separated), ``since`` (ISO 8601), ``q``
    (in the file name or tag, or an id prefix), ``batch``; running jobs carry their progress."""
    wanted = {s.strip().upper() for s in status.split(",") if s.strip()}
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    text = q.strip().lower()
    svc = service(request)
    # the process's copy of the index, as the dialects' listings (at most api_poll_max_age_s old)
    snapshot = await svc.polls.index.snapshot(tenant)
    rows = [row for row in snapshot.rows if _matches(row, wanted, since, text, batch)]
    chosen = rows[(page - 1) * limit : page * limit]
    running = [row.id for row in chosen if row.status == JobStatus.IN_PROGRESS]
    progress = {job.id: job for job in await svc.deps.jobs.find_many(tenant, running)}
    listed = []
    for row in chosen:
        entry = _row(row)
        if (job := progress.get(row.id)) is not None:
            entry["status"], entry["progress"] = job.status.value, _progress(job)
        listed.append(entry)
    return {"total": len(rows), "page": page, "limit": limit, "jobs": listed}


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _downloads(job: JobDocument) -> list[dict[str, str]]:
    """The job's results in every format the server renders; ``suffix`` ends the file name each
    is saved under."""
    if job.status != JobStatus.COMPLETED:
        return []
    found = [
        ("SRT subtitles", f"{PREFIX}/jobs/{job.id}/transcript?format=srt", ".srt"),
        ("WebVTT subtitles", f"{PREFIX}/jobs/{job.id}/transcript?format=vtt", ".vtt"),
        ("Plain text", f"{PREFIX}/jobs/{job.id}/transcript?format=txt", ".txt"),
        ("Tab-separated (TSV)", f"{PREFIX}/jobs/{job.id}/transcript?format=tsv", ".tsv"),
        ("Transcript (Shenava JSON)", f"{PREFIX}/jobs/{job.id}/transcript", ".json"),
        ("CPqD TRD v3 JSON", f"/trd/v3/job/result/{job.id}", ".trd.json"),
        ("CPqD TRD CSV", f"/trd/v3/job/result/{job.id}?format=csv", ".csv"),
        ("IBM Watson JSON", f"/v1/recognitions/{job.id}", ".watson.json"),
    ]
    if job.batch:
        found.append(("CPqD TRD batch JSON", f"/trd/transcription/result/audiofile/{job.id}", ".batch.json"))
    return [{"label": label, "path": path, "suffix": suffix} for label, path, suffix in found]


def render_summary(job: JobDocument) -> dict[str, Any]:
    media = job.media
    return {
        "id": job.id, "filename": job.filename, "status": job.status.value, "stage": job.stage.value,
        "control": job.control.value, "source": job.source, "tag": job.tag, "batch": job.batch,
        "created_at": _time(job.created_at), "started_at": _time(job.started_at),
        "completed_at": _time(job.completed_at), "failure_reason": public_reason(job.failure_reason),
        "language": job.options.language, "speaker_labels": job.options.speaker_labels,
        "media": {"duration": media.duration, "channels": media.channels, "size": media.size,
                  "content_type": media.content_type, "format": media.format},
        "progress": _progress(job), "downloads": _downloads(job),
    }  # fmt: skip


@router.get("/jobs/{job_id}")
async def job_summary(request: Request, tenant: Tenant, job_id: str) -> dict[str, Any]:
    return render_summary(await service(request).get(tenant, job_id))


@router.get("/jobs/{job_id}/transcript", response_model=None)
async def transcript(
    request: Request, tenant: Tenant, job_id: str, format: str = "json"
) -> dict[str, Any] | Response:
    """The stored transcript: times in seconds from the media's start, confidences 0..1; or, with
    ``format`` srt, vtt, txt or tsv, the server's rendering of it as a file."""
    fmt = subtitle_format(format)
    if format != "json" and fmt is None:
        raise BadRequest(f"format is json, {', '.join(SUBTITLE_FORMATS)}")
    svc = service(request)
    job = await svc.get(tenant, job_id)
    if job.status != JobStatus.COMPLETED:
        raise WrongState(f"the job {job_id} is {job.status.value}; only a COMPLETED job has a transcript")
    found = await svc.transcript(job)
    if found is None:
        raise NotFound(f"the transcript of the job {job_id} is no longer stored")
    if fmt is not None:
        return as_download(Response(render_subtitles(found, fmt), media_type=FORMATS[fmt]), job, fmt)
    return found.model_dump(mode="json")


@router.get("/jobs/{job_id}/media", response_model=None)
async def media(
    request: Request, tenant: Tenant, job_id: str, variant: Literal["original", "normalized"] = "original"
) -> Response:
    """The job's media for its owner: as sent, or the 16 kHz WAV every browser plays (byte ranges
    for seeking, read from the bucket as asked)."""
    svc = service(request)
    job = await svc.get(tenant, job_id)
    if variant == "original":
        key, content_type = job.media.key or upload_key(tenant, job.id, job.filename), job.media.content_type
    else:
        key, content_type = job.media.normalized_key, "audio/wav"
    missing = f"the {variant} media of the job {job_id} is not stored"
    if not key:
        raise NotFound(missing)
    return await media_response(request, svc.deps.media, key, content_type, job.filename, missing)


@router.get("/batches")
async def batches(request: Request, tenant: Tenant) -> dict[str, Any]:
    """The drop-folder batches, newest first, with their files counted by status."""
    snapshot = await service(request).polls.index.snapshot(tenant)
    rows = [row for row in snapshot.rows if row.batch and row.status != JobStatus.DELETED]
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault(row.batch, {"batch": row.batch, "files": 0, "statuses": {},
                                             "last_created_at": row.created_at})  # fmt: skip
        entry["files"] += 1
        entry["statuses"][row.status] = entry["statuses"].get(row.status, 0) + 1
    return {"batches": list(found.values())}


def _file(job: JobDocument) -> dict[str, Any]:
    return {
        "id": job.id, "filename": job.filename, "status": job.status.value, "stage": job.stage.value,
        "control": control_of(job), "progress": round(file_progress(job), 4),
        "duration": job.media.duration, "size": job.media.size,
        "failure_reason": public_reason(job.failure_reason),
    }  # fmt: skip


@router.get("/batches/{batch}")
async def batch(request: Request, tenant: Tenant, batch: str) -> dict[str, Any]:
    """A batch's TRD status (progress, ETA, accounting) and each of its files."""
    svc = service(request)
    jobs = await svc.batch_jobs(tenant, batch)
    status = render_batch_status(batch, jobs, now=svc.deps.clock())
    return {"status": status, "files": [_file(j) for j in jobs]}
