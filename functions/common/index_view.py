"""A process's copy of tenants' job indexes, for the listings clients poll.

Listing from the index objects costs a read per shard (one day and an eighth of a tenant's jobs)
on every request: 240 reads for a month of jobs. ``IndexView`` keeps every shard it has read with
its etag. At most every ``max_age_s`` it lists the tenant's index (one request: keys and etags) and
reads again only the shards whose etag changed; what listings compute from a ``Snapshot`` is
remembered with it (``Snapshot.remember``) until a shard changes.

- A snapshot ``max_age_s`` old is never served: the request waits for the refresh. Once a
  snapshot is half that old, a refresh starts in the background, so a tenant polled steadily
  never waits for one. Listings may therefore lag a change by up to ``max_age_s``; not a change
  this process made (its shard writes are taken in at once), nor one whose job event it heard
  (``heard_of``: the next listing waits for a refresh begun after the event).
- Each shard's rows are summed per drop-folder batch when the shard is read (``BatchTotals``); a
  batch's totals add up its shards' sums, so a file that changes state costs its shard's sums
  again, never the whole batch's.
- At most ``MAX_TENANTS`` tenants are kept, the least recently listed dropped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from functions.common.batch_status import BatchTotals
from functions.common.gather import gather_limited
from functions.common.job_index import JobRow, index_prefix, shard_rows
from functions.common.jobs import JobStatus
from functions.common.state_store import Document, StateStore

log = logging.getLogger("shenava.index_view")

MAX_TENANTS = 32
T = TypeVar("T")


@dataclass(frozen=True)
class ShardCopy:
    etag: str
    rows: tuple[JobRow, ...]
    batches: dict[str, BatchTotals]

    @classmethod
    def read(cls, doc: Document, etag: str) -> ShardCopy:
        rows = tuple(shard_rows(doc))
        batches: dict[str, BatchTotals] = {}
        for row in rows:
            if row.batch and row.file is not None and row.status != JobStatus.DELETED:
                batches.setdefault(row.batch, BatchTotals()).add(row.id, row.status, row.file)
        return cls(etag, rows, batches)


@dataclass
class Snapshot:
    """A tenant's index as it was at ``taken`` (the clock of the view): rows newest first."""

    version: int
    taken: float
    rows: tuple[JobRow, ...] = ()
    by_id: dict[str, JobRow] = field(default_factory=dict)
    batches: dict[str, BatchTotals] = field(default_factory=dict)
    _memo: dict[Hashable, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, version: int, taken: float, shards: Sequence[ShardCopy]) -> Snapshot:
        rows = tuple(
            sorted((row for shard in shards for row in shard.rows), key=lambda r: r.id, reverse=True)
        )
        names = {name for shard in shards for name in shard.batches}
        batches = {
            name: BatchTotals.of(s.batches[name] for s in shards if name in s.batches) for name in names
        }
        return cls(version, taken, rows, {row.id: row for row in rows}, batches)

    def remember(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per snapshot and ``key`` (what a listing derives from the rows)."""
        if key not in self._memo:
            self._memo[key] = compute()
        found: T = self._memo[key]
        return found

    def recall(self, key: Hashable) -> object:
        """What was remembered for ``key``, or None."""
        return self._memo.get(key)

    def replace(self, key: Hashable, value: T) -> T:
        """Remember ``value`` for ``key`` instead (what was remembered no longer holds)."""
        self._memo[key] = value
        return value

    def aged(self, taken: float) -> Snapshot:
        """The same rows (and memo), seen unchanged at ``taken``."""
        return Snapshot(self.version, taken, self.rows, self.by_id, self.batches, self._memo)


@dataclass
class _Tenant:
    shards: dict[str, ShardCopy] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    refreshing: asyncio.Task[Snapshot] | None = None
    written: dict[str, int] = field(default_factory=dict)  # shard -> writes this process made
    dirty: bool = False  # a shard was written since the snapshot was made
    heard: int = 0  # job events heard of the tenant
    seen: int = 0  # of those, heard before the refresh that made the snapshot began
    refreshing_heard: int = 0  # heard when the refresh in flight began

    def rebuild(self, taken: float) -> Snapshot:
        version = self.snapshot.version + 1 if self.snapshot is not None else 1
        self.snapshot, self.dirty = Snapshot.of(version, taken, list(self.shards.values())), False
        return self.snapshot


class IndexView:
    def __init__(
        self, store: StateStore, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._clock = clock
        self._tenants: OrderedDict[str, _Tenant] = OrderedDict()

    async def snapshot(self, tenant: str) -> Snapshot:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _Tenant()
            while len(self._tenants) > MAX_TENANTS:
                self._tenants.popitem(last=False)
        self._tenants.move_to_end(tenant)
        if state.dirty and state.snapshot is not None:  # this process wrote: it reads its writes
            state.rebuild(state.snapshot.taken)
        current = state.snapshot
        age = self._clock() - current.taken if current is not None else float("inf")
        if current is None or age >= self._max_age_s or state.seen < state.heard:
            return await self._fresh(tenant, state)
        if age > self._max_age_s / 2:
            self._refresh(tenant, state).add_done_callback(_log_failure)
        return current

    def observe(self, key: str, doc: Document | None, etag: str) -> None:
        """A write (or delete, ``doc`` None) through this process's store: an index shard of a
        tenant in view is taken in at once."""
        tenant, _, rest = key.removeprefix("tenants/").partition("/index/")
        state = self._tenants.get(tenant)
        if not rest or state is None or key != index_prefix(tenant) + rest:
            return
        state.written[key] = state.written.get(key, 0) + 1
        if doc is None:
            state.shards.pop(key, None)
        else:
            state.shards[key] = ShardCopy.read(doc, etag)
        state.dirty = True

    def heard_of(self, tenant: str) -> None:
        """A job of ``tenant`` changed state elsewhere (its event was heard on the bus; its row was
        written before): the next listing waits for a refresh begun after this."""
        state = self._tenants.get(tenant)
        if state is not None:
            state.heard += 1

    async def _fresh(self, tenant: str, state: _Tenant) -> Snapshot:
        """A snapshot from a refresh begun after every event heard so far (the one in flight if it
        did, else the next)."""
        wanted = state.heard
        while True:
            refreshing = self._refresh(tenant, state)
            began = state.refreshing_heard
            snapshot = await asyncio.shield(refreshing)
            if began >= wanted:
                return snapshot

    def _refresh(self, tenant: str, state: _Tenant) -> asyncio.Task[Snapshot]:
        """The refresh in flight, or a new one: one at a time per tenant."""
        if state.refreshing is None or state.refreshing.done():
            state.refreshing_heard = state.heard
            state.refreshing = asyncio.create_task(self._load(tenant, state, state.heard))
        return state.refreshing

    async def _load(self, tenant: str, state: _Tenant, heard: int) -> Snapshot:
        started = self._clock()
        versions = await self._store.versions(index_prefix(tenant))
        changed = await self._read_changed(state, versions)
        state.seen = max(state.seen, heard)
        if state.snapshot is not None and not changed:
            state.snapshot = state.snapshot.aged(started)
            return state.snapshot
        return state.rebuild(started)

    async def _read_changed(self, state: _Tenant, versions: dict[str, str]) -> bool:
        """Read the shards whose etag changed, drop those gone; whether anything changed."""
        stale = [
            key for key, etag in versions.items() if getattr(state.shards.get(key), "etag", None) != etag
        ]
        gone = [key for key in state.shards if key not in versions and key not in state.written]
        changed = bool(stale or gone) or state.dirty

        async def read(key: str) -> tuple[str, int, tuple[Document, str] | None]:
            written = state.written.get(key, 0)  # when the read starts: a later write is newer
            return key, written, await self._store.get(key)

        for key, written, found in await gather_limited(read(key) for key in stale):
            if state.written.get(key, 0) != written:
                continue  # this process wrote it meanwhile: what it wrote is newer
            if found is None:
                state.shards.pop(key, None)
            else:
                state.shards[key] = ShardCopy.read(*found)
        for key in gone:
            state.shards.pop(key, None)
        state.written.clear()
        return changed


def _log_failure(task: asyncio.Task[Snapshot]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        if task.exception() is not None:
            log.warning("refreshing a job index view failed: %s", task.exception())
