"""A state store that keeps copies of rarely changing documents for a while (the API's read paths).

``CachedStateStore(inner, rules)`` answers ``get`` for a key that one of its rules matches from
memory for that rule's ``ttl_s``, absent documents included (a flood of unknown API keys costs
one read per key and TTL, not one per request). Every other key goes straight to ``inner``.

- Writes through this store replace the copy, so this process reads its own writes at once.
- A conditional write that fails drops the copy: ``update()`` re-reads the real document on its
  next try, so a stale copy costs one retry, never a lost write.
- Another process's change is seen once the copy's TTL has passed: that is the staleness a rule
  accepts, and why only documents that rarely change and tolerate it get one (see
  ``functions/api/caching.py``).
- ``observers`` hear of every write (key, document, etag) and delete (key, None, "") made
  through this store, matched or not: the API's poll cache forgets a job this process changed,
  and its index view takes in the shards this process wrote.

Copies are kept encoded and decoded on every read, so a caller may change what it gets. At most
``max_entries`` copies are kept, the least recently used dropped first.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from functions.common.state_store import AlreadyExists, Document, PreconditionFailed, StateStore

Observer = Callable[[str, Document | None, str], None]


@dataclass(frozen=True)
class CacheRule:
    pattern: re.Pattern[str]  # matched against the whole key
    ttl_s: float


@dataclass(frozen=True)
class _Copy:
    data: bytes | None  # None: the document was absent
    etag: str
    expires: float

    def value(self) -> tuple[Document, str] | None:
        return None if self.data is None else (json.loads(self.data), self.etag)


def _encode(doc: Document) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class CachedStateStore:
    def __init__(
        self,
        inner: StateStore,
        rules: Sequence[CacheRule],
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.inner = inner
        self.observers: list[Observer] = []
        self._rules = [rule for rule in rules if rule.ttl_s > 0]
        self._clock = clock
        self._max_entries = max_entries
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._writes: dict[str, int] = {}  # per key: writes seen, so a slow read never undoes one

    def _ttl(self, key: str) -> float | None:
        return next((rule.ttl_s for rule in self._rules if rule.pattern.fullmatch(key)), None)

    async def get(self, key: str) -> tuple[Document, str] | None:
        ttl = self._ttl(key)
        if ttl is None:
            return await self.inner.get(key)
        copy = self._copies.get(key)
        if copy is not None and self._clock() < copy.expires:
            self._copies.move_to_end(key)
            return copy.value()
        writes = self._writes.get(key, 0)
        found = await self.inner.get(key)
        if self._writes.get(key, 0) == writes:  # else a write landed meanwhile: it holds the copy
            data, etag = (_encode(found[0]), found[1]) if found else (None, "")
            self._keep(key, _Copy(data, etag, self._clock() + ttl))
        return found

    def _keep(self, key: str, copy: _Copy) -> None:
        self._copies[key] = copy
        self._copies.move_to_end(key)
        while len(self._copies) > self._max_entries:
            self._copies.popitem(last=False)

    def _written(self, key: str, doc: Document | None, etag: str, refused: bool = False) -> None:
        """After a write (``doc`` stored under ``etag``), a delete (None) or a refused write."""
        self._writes[key] = self._writes.get(key, 0) + 1
        ttl = self._ttl(key)
        if ttl is not None and doc is not None:
            self._keep(key, _Copy(_encode(doc), etag, self._clock() + ttl))
        else:
            self._copies.pop(key, None)
        if not refused:
            for observer in self.observers:
                observer(key, doc, etag)

    async def create(self, key: str, doc: Document) -> str:
        try:
            etag = await self.inner.create(key, doc)
        except AlreadyExists:
            self._written(key, None, "", refused=True)
            raise
        self._written(key, doc, etag)
        return etag

    async def replace(self, key: str, doc: Document, etag: str) -> str:
        try:
            new_etag = await self.inner.replace(key, doc, etag)
        except PreconditionFailed:
            self._written(key, None, "", refused=True)
            raise
        self._written(key, doc, new_etag)
        return new_etag

    async def put(self, key: str, doc: Document) -> str:
        etag = await self.inner.put(key, doc)
        self._written(key, doc, etag)
        return etag

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)
        self._written(key, None, "")

    async def list_keys(self, prefix: str) -> list[str]:
        return await self.inner.list_keys(prefix)

    async def versions(self, prefix: str) -> dict[str, str]:
        return await self.inner.versions(prefix)
