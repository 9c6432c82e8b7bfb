import pytest

from functions.common.errors import ConflictError
from functions.common.state_store import AlreadyExists, MemoryStateStore, PreconditionFailed, update


async def test_create_refuses_an_existing_key_and_replace_a_stale_etag() -> None:
    store = MemoryStateStore()
    etag = await store.create("a", {"n": 1})
    with pytest.raises(AlreadyExists):
        await store.create("a", {"n": 2})
    await store.replace("a", {"n": 2}, etag)
    with pytest.raises(PreconditionFailed):
        await store.replace("a", {"n": 3}, etag)
    assert (await store.get("a"))[0] == {"n": 2}  # type: ignore[index]


async def test_update_retries_when_another_writer_wins() -> None:
    store = MemoryStateStore()
    await store.create("counter", {"n": 0})
    interfered = False

    def increment(doc: dict | None) -> dict | None:
        nonlocal interfered
        assert doc is not None
        if not interfered:  # a concurrent writer lands between our read and our write
            interfered = True
            store._docs["counter"] = (b'{"n": 10}', '"other"')
        return {"n": doc["n"] + 1}

    result = await update(store, "counter", increment)
    assert result == {"n": 11}
    assert (await store.get("counter"))[0] == {"n": 11}  # type: ignore[index]


async def test_update_gives_up_when_it_can_never_win() -> None:
    store = MemoryStateStore()
    await store.create("k", {"n": 0})

    writes = iter(range(1000))

    def always_interfered(doc: dict | None) -> dict:
        store._docs["k"] = (b'{"n": 0}', f'"other-{next(writes)}"')
        return {"n": 1}

    with pytest.raises(ConflictError):
        await update(store, "k", always_interfered)


async def test_mutation_returning_none_leaves_the_document() -> None:
    store = MemoryStateStore()
    await store.create("k", {"n": 5})
    assert await update(store, "k", lambda doc: None) == {"n": 5}
