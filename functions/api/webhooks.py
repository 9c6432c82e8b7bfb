"""Shenava's own webhook API (``/shenava/v1``): the delivery log, replay, dead letters, disabled
endpoints and the tenant's Standard Webhooks secret. No vendor dialect has these.

- ``GET /shenava/v1/webhooks/deliveries?failed=true&page=&limit=``: every attempt of the tenant,
  newest first (time, URL, event, status code, latency, error, next retry).
- ``GET /shenava/v1/jobs/{id}/deliveries?failed=true``: one job's deliveries with their attempts.
- ``POST /shenava/v1/jobs/{id}/deliveries/{delivery_id}/replay`` and
  ``POST /shenava/v1/jobs/{id}/deliveries/replay`` (every delivery of the job not delivered):
  202; notify sends each once more, a new attempt with the same ``webhook-id``.
- ``GET /shenava/v1/webhooks/dead-letters``: deliveries whose retries ran out.
- ``GET /shenava/v1/webhooks/endpoints/disabled`` and ``POST …/endpoints/enable?url=``: URLs that
  answered 410 Gone.
- ``GET /shenava/v1/webhooks/secret`` (made on first use) and ``POST …/secret/rotate``.

Errors are ``{"error": …, "code": …}``, as the console's JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from events.models import DeliveryReplayRequested
from functions.api.auth import caller_tenant
from functions.api.service import JobService
from functions.common.delivery_log import DeliveryLog, webhook_id_of
from functions.common.errors import Conflict, NotFound
from functions.common.jobs import Delivery, DeliveryAttempt, JobDocument, new_job_id
from functions.common.webhook_secrets import ROTATION_GRACE, WebhookSecrets

PREFIX = "/shenava/v1"
router = APIRouter(prefix=PREFIX, tags=["Shenava webhooks"])
Tenant = Annotated[str, Depends(caller_tenant)]
Page = Annotated[int, Query(ge=1)]
Limit = Annotated[int, Query(ge=1, le=500)]


def service(request: Request) -> JobService:
    return JobService(request.app.state.deps, request.app.state.polls)


def log_of(request: Request) -> DeliveryLog:
    return DeliveryLog(request.app.state.deps.state)


def _attempt(attempt: DeliveryAttempt) -> dict[str, Any]:
    return attempt.model_dump(mode="json")


def _delivery(job_id: str, key: str, delivery: Delivery) -> dict[str, Any]:
    return {
        "id": key, "webhook_id": delivery.webhook_id or webhook_id_of(job_id, key), "url": delivery.url,
        "event": delivery.event, "dialect": delivery.dialect, "delivered": delivery.delivered,
        "given_up": delivery.given_up, "attempts": [_attempt(a) for a in delivery.attempts],
    }  # fmt: skip


@router.get("/webhooks/deliveries", summary="Every delivery attempt of the tenant, newest first")
async def deliveries(
    request: Request, tenant: Tenant, failed: bool = False, page: Page = 1, limit: Limit = 50
) -> dict[str, Any]:
    total, attempts = await log_of(request).attempts(tenant, failed, page, limit)
    listed = [a.model_dump(mode="json") for a in attempts]
    return {"total": total, "page": page, "limit": limit, "attempts": listed}


@router.get("/webhooks/dead-letters", summary="Deliveries whose retries ran out")
async def dead_letters(request: Request, tenant: Tenant, page: Page = 1, limit: Limit = 50) -> dict[str, Any]:
    total, letters = await log_of(request).dead_letters(tenant, page, limit)
    listed = [d.model_dump(mode="json") for d in letters]
    return {"total": total, "page": page, "limit": limit, "dead_letters": listed}


@router.get("/jobs/{job_id}/deliveries", summary="A job's webhook deliveries and their attempts")
async def job_deliveries(
    request: Request, tenant: Tenant, job_id: str, failed: bool = False
) -> dict[str, Any]:
    job = await service(request).get(tenant, job_id)
    found = [_delivery(job.id, key, d) for key, d in job.deliveries.items() if not (failed and d.delivered)]
    return {"job_id": job.id, "deliveries": found}


async def _replay(
    request: Request, job: JobDocument, keys: list[str], failed_only: bool = False
) -> JSONResponse:
    svc = service(request)
    book = log_of(request)
    tenant = job.tenant
    for url in dict.fromkeys(job.deliveries[key].url for key in keys):  # each URL once
        disabled = await book.disabled(tenant, url)
        if disabled is not None:
            raise Conflict(
                f"{disabled.url} is disabled ({disabled.reason}); enable it first with "
                f"POST {PREFIX}/webhooks/endpoints/enable?url=…"
            )
    replay_id = new_job_id()
    event = DeliveryReplayRequested.for_replay(tenant, job.id, replay_id, tuple(keys), failed_only)
    await svc.deps.bus.publish(event)
    body = {"replay_id": replay_id, "job_id": job.id, "deliveries": keys,
            "log": f"{PREFIX}/jobs/{job.id}/deliveries"}  # fmt: skip
    return JSONResponse(status_code=202, content=body)


@router.post(
    "/jobs/{job_id}/deliveries/{delivery_id}/replay", status_code=202, summary="Send one delivery again"
)
async def replay_one(request: Request, tenant: Tenant, job_id: str, delivery_id: str) -> JSONResponse:
    job = await service(request).get(tenant, job_id)
    if delivery_id not in job.deliveries:
        raise NotFound(f"the job {job_id} has no delivery {delivery_id}")
    return await _replay(request, job, [delivery_id])


@router.post("/jobs/{job_id}/deliveries/replay", status_code=202, summary="Send every failed delivery again")
async def replay_failed(request: Request, tenant: Tenant, job_id: str) -> JSONResponse:
    job = await service(request).get(tenant, job_id)
    failed = [key for key, d in job.deliveries.items() if not d.delivered]
    if not failed:
        raise Conflict(f"the job {job_id} has no failed delivery to replay")
    return await _replay(request, job, failed, failed_only=True)


@router.get("/webhooks/endpoints/disabled", summary="URLs disabled by a 410 Gone answer")
async def disabled(request: Request, tenant: Tenant) -> dict[str, Any]:
    found = await log_of(request).disabled_endpoints(tenant)
    return {"endpoints": [e.model_dump(mode="json") for e in found]}


@router.post("/webhooks/endpoints/enable", summary="Send to a URL disabled by 410 Gone again")
async def enable(request: Request, tenant: Tenant, url: str) -> dict[str, Any]:
    if not await log_of(request).enable(tenant, url):
        raise NotFound(f"{url} is not disabled")
    return {"url": url, "enabled": True}


@router.get("/webhooks/secret", summary="The tenant's Standard Webhooks secret (whsec_…)")
async def secret(request: Request, tenant: Tenant) -> dict[str, Any]:
    deps = request.app.state.deps
    return {"secret": await WebhookSecrets(deps.state, deps.secrets).current(tenant)}


@router.post("/webhooks/secret/rotate", summary="A new secret; the previous one signs for a day more")
async def rotate(request: Request, tenant: Tenant) -> dict[str, Any]:
    deps = request.app.state.deps
    fresh = await WebhookSecrets(deps.state, deps.secrets).rotate(tenant)
    return {"secret": fresh, "previous_signs_for_s": ROTATION_GRACE.total_seconds()}
