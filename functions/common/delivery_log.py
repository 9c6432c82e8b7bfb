"""The webhook delivery log: every attempt, the dead letters, and the endpoints that said 410 Gone.

The job document holds each delivery with its attempts (``JobDocument.deliveries``): that is
what makes notify idempotent and what a job's log is read from. For the tenant-wide views,
notify also writes small documents the API lists without reading every job:

- ``tenants/<t>/deliveries/<attempt id>.<ok|failed>.json``: one per attempt, never changed. The
  id is a UUIDv7, so a listing is in time order; the outcome is in the key, so "failed only"
  is a listing filter. Kept ``delivery_log_days`` (``prune``: the time is in the id).
- ``tenants/<t>/dead-letters/<job id>.<delivery id>.json``: a delivery whose retries ran out (or
  whose endpoint answered 410); removed when a replay delivers it.
- ``tenants/<t>/webhook-endpoints/<sha256(url)>.json``: a URL disabled by a ``410 Gone`` answer;
  nothing is sent to it until it is enabled again (the API, or a Watson re-registration).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel

from functions.common.clock import utcnow
from functions.common.gather import gather_limited
from functions.common.job_index import id_time
from functions.common.jobs import new_job_id
from functions.common.state_store import Document, StateStore


class AttemptRecord(BaseModel):
    """One attempt as the tenant's log lists it."""

    id: str
    job_id: str
    delivery_id: str
    webhook_id: str
    url: str
    event: str
    dialect: str
    at: datetime
    status_code: int | None = None
    latency_ms: float | None = None
    error: str = ""
    outcome: str = ""  # delivered | http_error | refused | unreachable | unregistered | disabled
    next_retry_at: datetime | None = None
    replay: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


class DeadLetter(BaseModel):
    job_id: str
    delivery_id: str
    webhook_id: str
    url: str
    event: str
    dialect: str
    attempts: int
    last_error: str
    given_up_at: datetime


class DisabledEndpoint(BaseModel):
    url: str
    disabled_at: datetime
    reason: str


def webhook_id_of(job_id: str, delivery_id: str) -> str:
    """Standard Webhooks' ``webhook-id``: fixed per job and delivery, so retries and replays carry
    the same one and a receiver deduplicates on it (no ``.``, as the specification asks)."""
    return "msg_" + hashlib.sha256(f"{job_id}|{delivery_id}".encode()).hexdigest()[:32]


def _attempts_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/deliveries/"


def _dead_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/dead-letters/"


def _endpoint_key(tenant: str, url: str) -> str:
    return f"tenants/{tenant}/webhook-endpoints/{hashlib.sha256(url.encode()).hexdigest()}.json"


def _page(keys: list[str], page: int, limit: int) -> list[str]:
    return keys[(page - 1) * limit : page * limit]


class DeliveryLog:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def add_attempt(self, tenant: str, record: AttemptRecord) -> None:
        outcome = "ok" if record.ok else "failed"
        await self._store.put(
            f"{_attempts_prefix(tenant)}{record.id}.{outcome}.json", record.model_dump(mode="json")
        )

    async def attempts(
        self, tenant: str, failed_only: bool, page: int, limit: int
    ) -> tuple[int, list[AttemptRecord]]:
        """The tenant's attempts, newest first: the total and one page."""
        keys = sorted(await self._store.list_keys(_attempts_prefix(tenant)), reverse=True)
        if failed_only:
            keys = [k for k in keys if k.endswith(".failed.json")]
        found = await self._read(_page(keys, page, limit))
        return len(keys), [AttemptRecord.model_validate(doc) for doc, _ in filter(None, found)]

    async def prune(self, tenant: str, before: datetime) -> int:
        """Remove the tenant's attempts made before ``before``; how many were removed."""
        keys = await self._store.list_keys(_attempts_prefix(tenant))
        old = [key for key in keys if attempt_time(key) < before]
        await gather_limited(self._store.delete(key) for key in old)
        return len(old)

    async def add_dead_letter(self, tenant: str, letter: DeadLetter) -> None:
        key = f"{_dead_prefix(tenant)}{letter.job_id}.{letter.delivery_id}.json"
        await self._store.put(key, letter.model_dump(mode="json"))

    async def remove_dead_letter(self, tenant: str, job_id: str, delivery_id: str) -> None:
        await self._store.delete(f"{_dead_prefix(tenant)}{job_id}.{delivery_id}.json")

    async def dead_letters(self, tenant: str, page: int, limit: int) -> tuple[int, list[DeadLetter]]:
        """Deliveries whose retries ran out, newest job first (job ids sort by time)."""
        keys = sorted(await self._store.list_keys(_dead_prefix(tenant)), reverse=True)
        found = await self._read(_page(keys, page, limit))
        return len(keys), [DeadLetter.model_validate(doc) for doc, _ in filter(None, found)]

    async def disable(self, tenant: str, url: str, reason: str) -> None:
        endpoint = DisabledEndpoint(url=url, disabled_at=utcnow(), reason=reason)
        await self._store.put(_endpoint_key(tenant, url), endpoint.model_dump(mode="json"))

    async def disabled(self, tenant: str, url: str) -> DisabledEndpoint | None:
        found = await self._store.get(_endpoint_key(tenant, url))
        return DisabledEndpoint.model_validate(found[0]) if found else None

    async def enable(self, tenant: str, url: str) -> bool:
        """Deliveries to ``url`` go out again; False when it was not disabled."""
        if await self.disabled(tenant, url) is None:
            return False
        await self._store.delete(_endpoint_key(tenant, url))
        return True

    async def disabled_endpoints(self, tenant: str) -> list[DisabledEndpoint]:
        keys = await self._store.list_keys(f"tenants/{tenant}/webhook-endpoints/")
        found = await self._read(keys)
        return [DisabledEndpoint.model_validate(doc) for doc, _ in filter(None, found)]

    async def _read(self, keys: list[str]) -> list[tuple[Document, str] | None]:
        """The documents at ``keys``, in their order, read ``AT_ONCE`` at a time."""
        return await gather_limited(self._store.get(key) for key in keys)


def attempt_time(key: str) -> datetime:
    """When an attempt was made: its key's id is a UUIDv7 (the epoch for a key that is not one)."""
    return id_time(key.rsplit("/", 1)[-1].split(".", 1)[0])


def new_attempt_id() -> str:
    """Time-ordered (UUIDv7), so the tenant's log lists in the order attempts were made."""
    return new_job_id()
