"""Small index objects over a tenant's jobs, so listing and querying never read every job.

A job's row lives in one shard: ``tenants/<t>/index/<yyyy-mm-dd>-<n>.json``, the day its id was
made (ids are UUIDv7, so the day is in the id) and one of ``SHARDS`` buckets by id, which keeps
concurrent writers of one day apart. A row holds what lists and filters need; the job document
stays the source of truth, and ``rebuild`` recreates the shards from the documents.
Shards are updated with the same conditional writes as every other document.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from functions.common.gather import gather_limited
from functions.common.state_store import Document, StateStore, update

SHARDS = 8


# JobRow's fields after the id, in their order in a shard (a row is a list, to keep shards small)
TEXT_FIELDS = (
    "status", "created_at", "tag", "filename", "source", "failure_reason", "callback_failure_reason", "batch",
    "updated_at", "user_token", "expires_at",
)  # fmt: skip


@dataclass(frozen=True)
class FileFacts:
    """What the TRD batch status adds up for a drop-folder file (rows of batch files only)."""

    control: str  # IDLE, RUNNING or PAUSED
    stage: str
    size: int = 0
    duration: float = 0.0
    channels: int = 1  # channels transcribed (a duplicated channel counts once)
    started_at: str = ""
    completed_at: str = ""
    accounted: tuple[tuple[str, float, int], ...] = ()  # (segment status, seconds, segments)

    def encode(self) -> list[Any]:
        accounted = [list(entry) for entry in self.accounted]
        return [self.control, self.stage, self.size, self.duration, self.channels, self.started_at,
                self.completed_at, accounted]  # fmt: skip

    @classmethod
    def decode(cls, fields: list[Any]) -> FileFacts:
        control, stage, size, duration, channels, started_at, completed_at, accounted = fields
        return cls(
            control, stage, size, duration, channels, started_at, completed_at,
            accounted=tuple((str(n), float(s), int(c)) for n, s, c in accounted),
        )  # fmt: skip


@dataclass(frozen=True)
class JobRow:
    """A job as lists show it. ``updated_at`` is the job's time when its row last changed: a row is
    rewritten when anything else in it changes, not for every write of the job (progress, webhook
    attempts), so it is the time of the job's last change of state."""

    id: str
    status: str
    created_at: str  # ISO 8601, UTC
    tag: str = ""
    filename: str = ""
    source: str = ""
    failure_reason: str = ""
    callback_failure_reason: str = ""
    batch: str = ""
    updated_at: str = ""  # ISO 8601, UTC
    user_token: str = ""  # Watson's
    expires_at: str = ""  # ISO 8601, UTC; "" = never
    file: FileFacts | None = None

    def encode(self) -> list[Any]:
        return [*(getattr(self, name) for name in TEXT_FIELDS), self.file.encode() if self.file else None]

    @classmethod
    def decode(cls, job_id: str, fields: list[Any]) -> JobRow:
        """Rows written before a field existed decode with its default."""
        file = FileFacts.decode(fields[11]) if len(fields) > 11 and fields[11] else None
        return cls(job_id, **dict(zip(TEXT_FIELDS, fields[:11], strict=False)), file=file)

    def differs(self, other: JobRow) -> bool:
        """Whether the rows differ in more than ``updated_at`` (only then is a row rewritten)."""
        return replace(self, updated_at="") != replace(other, updated_at="")


def id_time(job_id: str) -> datetime:
    """The creation time in a UUIDv7 (milliseconds since the epoch in its first 48 bits)."""
    try:
        ms = uuid.UUID(job_id).int >> 80
    except ValueError:
        ms = 0
    return datetime.fromtimestamp(ms / 1000, UTC)


def shard_rows(doc: Document | None) -> list[JobRow]:
    """The rows of one index shard's document (none for a shard that is gone)."""
    return [JobRow.decode(job_id, fields) for job_id, fields in (doc or {}).get("rows", {}).items()]


def index_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/index/"


def shard_key(tenant: str, job_id: str) -> str:
    bucket = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % SHARDS
    return f"{index_prefix(tenant)}{id_time(job_id):%Y-%m-%d}-{bucket}.json"


class JobIndex:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def put(self, tenant: str, row: JobRow) -> None:
        def mutate(doc: Document | None) -> Document | None:
            rows = (doc or {"rows": {}})["rows"]
            if rows.get(row.id) == row.encode():
                return None
            rows[row.id] = row.encode()
            return {"rows": rows}

        await update(self._store, shard_key(tenant, row.id), mutate)

    async def remove(self, tenant: str, job_id: str) -> None:
        def mutate(doc: Document | None) -> Document | None:
            if doc is None or job_id not in doc["rows"]:
                return None
            del doc["rows"][job_id]
            return doc

        await update(self._store, shard_key(tenant, job_id), mutate)

    async def rows(self, tenant: str, keep: Callable[[JobRow], bool] = lambda _: True) -> list[JobRow]:
        """Every row that ``keep`` accepts, newest first."""
        keys = await self._store.list_keys(index_prefix(tenant))
        found = [row for row in await self.rows_of(keys) if keep(row)]
        found.sort(key=lambda r: r.id, reverse=True)
        return found

    async def rows_of(self, keys: Iterable[str]) -> list[JobRow]:
        """The rows of the shards at ``keys`` (read ``AT_ONCE`` at a time), in no set order."""
        shards = await gather_limited(self._store.get(key) for key in keys)
        return [row for shard in shards for row in shard_rows(shard[0] if shard else None)]

    async def replace_all(self, tenant: str, rows: Iterable[JobRow]) -> None:
        """Write the shards from scratch (``rebuild``), dropping shards with no rows left."""
        shards: dict[str, dict[str, list[str]]] = {}
        for row in rows:
            shards.setdefault(shard_key(tenant, row.id), {})[row.id] = row.encode()
        for key in await self._store.list_keys(index_prefix(tenant)):
            if key not in shards:
                await self._store.delete(key)
        for key, shard_rows in shards.items():
            await self._store.put(key, {"rows": shard_rows})
