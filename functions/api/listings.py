"""Listings from a tenant's index snapshot (``IndexView``), never from the job documents.

What a listing derives from the rows is remembered with the snapshot (``Snapshot.remember``), so
a listing polled again costs a look-up until a shard of the index changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.common.index_view import Snapshot
from functions.common.job_index import JobRow
from functions.common.jobs import JobStatus


@dataclass(frozen=True)
class JobQuery:
    page: int = 1
    limit: int = 100
    tag: str | None = None
    filename: str | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def matches(self, row: JobRow) -> bool:
        if self.status is None and row.status == JobStatus.DELETED:
            return False
        created = datetime.fromisoformat(row.created_at)
        return (
            (self.tag is None or row.tag == self.tag)
            and (self.filename is None or row.filename == self.filename)
            and (self.status is None or row.status == self.status)
            and (self.start is None or created >= self.start)
            and (self.end is None or created <= self.end)
        )

    @property
    def filters(self) -> tuple[object, ...]:
        return (self.tag, self.filename, self.status, self.start, self.end)


def matching(snapshot: Snapshot, query: JobQuery) -> tuple[JobRow, ...]:
    """The rows ``query`` matches, oldest first."""
    return snapshot.remember(
        ("matching", query.filters), lambda: tuple(filter(query.matches, reversed(snapshot.rows)))
    )


def page(snapshot: Snapshot, query: JobQuery) -> tuple[int, tuple[JobRow, ...]]:
    """How many rows ``query`` matches, and the rows of its page (oldest first)."""
    rows = matching(snapshot, query)
    start = (query.page - 1) * query.limit
    return len(rows), rows[start : start + query.limit]


@dataclass
class Newest:
    rows: tuple[JobRow, ...]  # newest first
    expired: tuple[JobRow, ...]  # met on the way: their jobs are to be purged
    valid_until: datetime | None  # when the first of ``rows`` expires
    body: bytes | None = None  # a dialect's rendering of ``rows``, once made


def _expiry(row: JobRow) -> datetime | None:
    return datetime.fromisoformat(row.expires_at) if row.expires_at else None


def _newest(rows: tuple[JobRow, ...], limit: int, now: datetime) -> Newest:
    chosen: list[JobRow] = []
    expired: list[JobRow] = []
    for row in rows:
        if len(chosen) >= limit:
            break
        if row.status == JobStatus.DELETED:
            continue
        expiry = _expiry(row)
        (expired if expiry is not None and expiry <= now else chosen).append(row)
    expiries = [e for e in map(_expiry, chosen) if e is not None]
    return Newest(tuple(chosen), tuple(expired), min(expiries, default=None))


def newest(snapshot: Snapshot, limit: int, now: datetime) -> Newest:
    """The ``limit`` newest jobs that are neither deleted nor expired."""
    key = ("newest", limit)
    found = snapshot.remember(key, lambda: _newest(snapshot.rows, limit, now))
    if found.valid_until is not None and found.valid_until <= now:
        found = snapshot.replace(key, _newest(snapshot.rows, limit, now))
    return found
