"""The API's copies of rarely changing documents: kept for their TTL, replaced by this process's
writes, dropped by a refused conditional write, never kept for keys no rule names."""

from __future__ import annotations

import re

import pytest

from functions.common.cached_store import CachedStateStore, CacheRule
from functions.common.state_store import MemoryStateStore, PreconditionFailed, update


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached(inner: MemoryStateStore, clock: Clock, ttl_s: float = 10.0) -> CachedStateStore:
    return CachedStateStore(inner, [CacheRule(re.compile(r"keys/.*"), ttl_s)], clock=clock)


async def test_a_copy_is_served_until_its_ttl_then_the_store_is_read_again() -> None:
    inner, clock = MemoryStateStore(), Clock()
    store = cached(inner, clock)
    await inner.put("keys/a.json", {"tenant": "acme"})
    assert (await store.get("keys/a.json"))[0] == {"tenant": "acme"}  # type: ignore[index]
    await inner.delete("keys/a.json")  # another process revokes it
    clock.now += 9.9
    assert await store.get("keys/a.json") is not None
    clock.now += 0.2
    assert await store.get("keys/a.json") is None


async def test_an_absent_document_is_remembered_too() -> None:
    inner, clock = MemoryStateStore(), Clock()
    store = cached(inner, clock)
    assert await store.get("keys/unknown.json") is None
    await inner.put("keys/unknown.json", {"tenant": "acme"})
    assert await store.get("keys/unknown.json") is None
    clock.now += 11
    assert await store.get("keys/unknown.json") is not None


async def test_this_process_reads_its_own_writes_at_once() -> None:
    inner, clock = MemoryStateStore(), Clock()
    store = cached(inner, clock)
    assert await store.get("keys/a.json") is None
    await store.put("keys/a.json", {"tenant": "acme"})
    assert (await store.get("keys/a.json"))[0] == {"tenant": "acme"}  # type: ignore[index]
    await store.delete("keys/a.json")
    assert await store.get("keys/a.json") is None


async def test_a_stale_copy_costs_update_one_retry_never_a_lost_write() -> None:
    inner, clock = MemoryStateStore(), Clock()
    store = cached(inner, clock)
    await store.put("keys/n.json", {"n": 1})
    await inner.put("keys/n.json", {"n": 5})  # another process moved it on
    new = await update(store, "keys/n.json", lambda doc: {"n": (doc or {"n": 0})["n"] + 1})
    assert new == {"n": 6} and (await inner.get("keys/n.json"))[0] == {"n": 6}  # type: ignore[index]
    with pytest.raises(PreconditionFailed):
        await store.replace("keys/n.json", {"n": 0}, '"stale"')
    assert (await store.get("keys/n.json"))[0] == {"n": 6}  # type: ignore[index]


async def test_other_keys_are_always_read_and_observers_hear_every_write() -> None:
    inner, clock = MemoryStateStore(), Clock()
    store = cached(inner, clock)
    heard: list[tuple[str, object, str]] = []
    store.observers.append(lambda key, doc, etag: heard.append((key, doc, etag)))
    etag = await store.put("tenants/t/jobs/1.json", {"status": "QUEUED"})
    await inner.put("tenants/t/jobs/1.json", {"status": "COMPLETED"})
    assert (await store.get("tenants/t/jobs/1.json"))[0] == {"status": "COMPLETED"}  # type: ignore[index]
    with pytest.raises(PreconditionFailed):  # a refused write changed nothing: nobody hears of it
        await store.replace("tenants/t/jobs/1.json", {"status": "STOPPED"}, etag)
    await store.delete("tenants/t/jobs/1.json")
    key = "tenants/t/jobs/1.json"
    assert heard == [(key, {"status": "QUEUED"}, etag), (key, None, "")]


async def test_what_a_caller_gets_is_its_own_to_change() -> None:
    store = cached(MemoryStateStore(), Clock())
    await store.put("keys/a.json", {"scopes": ["*"]})
    first = await store.get("keys/a.json")
    first[0]["scopes"].append("x")  # type: ignore[index]
    assert (await store.get("keys/a.json"))[0] == {"scopes": ["*"]}  # type: ignore[index]


async def test_versions_list_every_key_with_its_etag() -> None:
    inner = MemoryStateStore()
    etag = await inner.put("tenants/t/index/a.json", {"rows": {}})
    await inner.put("tenants/u/index/a.json", {"rows": {}})
    assert await cached(inner, Clock()).versions("tenants/t/index/") == {"tenants/t/index/a.json": etag}
