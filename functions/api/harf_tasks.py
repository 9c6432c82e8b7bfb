"""Harf tasks as a poll (``{"task_ids": […]}``) answers them: from the tenant's job index.

A task is a job. Whether it is done, failed or late is in its index row, so a poll of many tasks
reads no job document: the rows come from the process's index view (at most
``api_poll_max_age_s`` old). A task the view does not hold yet (made by another API process a
moment ago) is read from its document. When every task is done, each task's answer (its
``media_url``, duration and segments) is made once: a completed job's transcript never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response, WebSocket

from functions.api.poll_cache import JSON, encode_json
from functions.api.service import JobService
from functions.common.errors import NotFound
from functions.common.index_view import Snapshot
from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobStatus
from functions.common.reasons import public_reason
from functions.common.render_harf import render_task

PREFIX = "/api/transcribe_files"
URL_SOURCE, UPLOAD_SOURCE = "harf-url", "harf-upload"


@dataclass(frozen=True)
class TaskState:
    """What a poll needs of a task, from its index row or its document."""

    id: str
    status: JobStatus
    created_at: datetime
    failure_reason: str = ""
    source: str = ""
    tag: str = ""
    filename: str = ""

    @classmethod
    def of_row(cls, row: JobRow) -> TaskState:
        return cls(row.id, JobStatus(row.status), datetime.fromisoformat(row.created_at), row.failure_reason,
                   row.source, row.tag, row.filename)  # fmt: skip

    @classmethod
    def of_job(cls, job: JobDocument) -> TaskState:
        return cls(job.id, job.status, job.created_at, job.failure_reason, job.source, job.tag, job.filename)


def media_url(request: Request | WebSocket, task: TaskState | JobDocument) -> str:
    """A URL task's own URL; for uploads and streams, where the owner can fetch the file."""
    if task.source == URL_SOURCE and task.tag:
        return task.tag
    base = request.app.state.deps.settings.base_url
    return f"{base}{PREFIX}/media/{task.id}/{quote(task.filename)}"


def reason(task: TaskState) -> str:
    if task.failure_reason:
        return public_reason(task.failure_reason)
    return "the task was stopped" if task.status == JobStatus.STOPPED else f"the task is {task.status.value}"


def state_of(tasks: list[TaskState], svc: JobService) -> dict[str, Any]:
    """``FAILURE``, ``TIMEOUT`` or ``PENDING`` for tasks not all done."""
    failed = [task for task in tasks if task.status.finished and task.status != JobStatus.COMPLETED]
    if failed:
        failures = [{"task_id": task.id, "reason": reason(task)} for task in failed]
        return {"state": "FAILURE", "reason": failures[0]["reason"], "failures": failures}
    limit = svc.deps.settings.harf_task_timeout_s
    now = svc.deps.clock()
    if any(not task.status.finished and (now - task.created_at).total_seconds() > limit for task in tasks):
        return {"state": "TIMEOUT", "reason": f"processing took longer than {limit:g} s"}
    return {"state": "PENDING"}


async def polled_task(svc: JobService, tenant: str, task_id: str) -> JobDocument:
    try:
        return (await svc.poll(tenant, task_id)).job
    except NotFound as exc:
        raise NotFound(f"no task with id {task_id}") from exc


async def task_states(svc: JobService, tenant: str, ids: list[str]) -> list[TaskState]:
    """The tasks, from the index rows; a task without a plain row (not indexed yet, deleted,
    expired) from its document, which says what it is (404 when it is gone)."""
    snapshot: Snapshot = await svc.polls.index.snapshot(tenant)
    now = svc.deps.clock()
    tasks = []
    for task_id in ids:
        row = snapshot.by_id.get(task_id)
        plain = row is not None and row.status != JobStatus.DELETED
        if (
            row is not None
            and plain
            and not (row.expires_at and datetime.fromisoformat(row.expires_at) <= now)
        ):
            tasks.append(TaskState.of_row(row))
        else:
            tasks.append(TaskState.of_job(await polled_task(svc, tenant, task_id)))
    return tasks


async def result(request: Request, svc: JobService, tenant: str, task: TaskState) -> bytes:
    """A completed task's answer, made once."""

    async def render() -> bytes:
        transcript = await svc.polls.transcript(tenant, task.id, completed=True)
        duration = transcript.duration if transcript and transcript.duration else 0.0
        if not duration:
            duration = (await polled_task(svc, tenant, task.id)).media.duration
        return encode_json(render_task(media_url(request, task), duration, transcript))

    key = ("harf", tenant, task.id, task.source, task.tag, task.filename)
    body = await svc.polls.rendered(key, render)
    assert body is not None
    return body


async def answer(request: Request, svc: JobService, tenant: str, tasks: list[TaskState]) -> Response:
    """Every task's result when all are done, else their state."""
    if all(task.status == JobStatus.COMPLETED for task in tasks):
        results = [await result(request, svc, tenant, task) for task in tasks]
        return Response(b"[" + b",".join(results) + b"]", media_type=JSON)
    return Response(encode_json(state_of(tasks, svc)), media_type=JSON)
