"""The train function over in-memory state: runs, redelivery after a crash, stale requests, tagging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from events.models import DatasetTrainRequested, DatasetWorkDone, TaggingRequested
from events.settle import Fail, settle
from functions.api.kashf_runs import KashfRuns
from functions.api.kashf_service import KashfService, TextLabel
from functions.common.bootstrap import Deps
from functions.common.dataset_errors import DatasetBusy, DatasetNotFound, NothingToTrain
from functions.common.dataset_runs import RunDocuments, RunState, TaggingRequest
from functions.common.datasets import Dataset, DatasetRepository, DatasetState, DatasetType, dataset_key
from functions.common.state_store import MemoryStateStore
from functions.train.handler import handle, on_failure
from tests.fakes import MemoryBus, memory_deps

TENANT = "acme"
TEXTS = {
    "money": [
        "پول و بانک و حساب",
        "قیمت دلار بالا رفت",
        "حقوق این ماه واریز شد",
        "وام بانکی گرفتم",
        "سکه طلا گران شد",
    ],
    "sport": [
        "فوتبال دیشب عالی بود",
        "تیم ملی برد",
        "بسکتبال بازی کردیم",
        "کشتی گیر طلا گرفت",
        "دوچرخه سواری صبح",
    ],
}


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as deps:
        yield deps


def memory_bus(deps: Deps) -> MemoryBus:
    """What the API published: ``memory_deps`` builds a ``MemoryBus``."""
    assert isinstance(deps.bus, MemoryBus)
    return deps.bus


async def labelled(deps: Deps, bus: MemoryBus) -> tuple[KashfRuns, dict[str, int]]:
    """A text dataset with reports on two tags; the API's runs of the train function over ``deps``."""
    kashf = KashfService(deps)
    await kashf.create_dataset(TENANT, slug="topics", title="Topics", kind=DatasetType.TEXT)
    tags = {
        title: (await kashf.create_tag(TENANT, slug="topics", title=title, active=True)).id for title in TEXTS
    }
    reports = [
        TextLabel(tag_id=tags[other], positive=other == title, content=text)
        for title, texts in TEXTS.items()
        for text in texts
        for other in tags
    ]
    await kashf.report_texts(TENANT, reports)
    return KashfRuns(deps), tags


async def dataset_of(deps: Deps) -> Dataset:
    return await DatasetRepository(deps.state).get(TENANT, "topics")


async def ask_texts(kashf: KashfRuns, text: str) -> TaggingRequest:
    """A tagging request for ``text`` (not waited on), as the API makes it."""
    return (await kashf.tag_texts(TENANT, slug="topics", contents=[text], wait=False)).request


async def request_of(deps: Deps, request_id: str) -> TaggingRequest:
    found = await RunDocuments(deps.state).tagging(TENANT, "topics", request_id)
    assert found is not None
    return found


class CrashOnVersionSwitch(MemoryStateStore):
    """Dies (like a killed worker) when the dataset document is about to name the new version."""

    def __init__(self, inner: MemoryStateStore) -> None:
        self.__dict__ = inner.__dict__
        self.armed = True

    async def replace(self, key: str, doc: dict[str, Any], etag: str) -> str:
        if self.armed and key.endswith("dataset.json") and doc.get("state") == "trained":
            raise RuntimeError("worker killed")
        return await super().replace(key, doc, etag)


async def test_a_run_killed_before_it_finishes_is_redone_by_redelivery_and_then_ignored(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, _ = await labelled(deps, bus)
    await kashf.train(TENANT, "topics")
    (event,) = bus.events
    assert isinstance(event, DatasetTrainRequested)

    crashing = CrashOnVersionSwitch(deps.state)  # type: ignore[arg-type]
    deps.state = crashing
    with pytest.raises(RuntimeError):
        await handle(event, deps)
    dataset = await DatasetRepository(deps.state).get(TENANT, "topics")
    assert dataset.state == DatasetState.TRAINING and dataset.version == ""  # nothing half-visible

    crashing.armed = False
    produced = await handle(event, deps)  # the redelivery
    assert [type(e) for e in produced] == [DatasetWorkDone]
    dataset = await DatasetRepository(deps.state).get(TENANT, "topics")
    assert dataset.state == DatasetState.TRAINED and dataset.version == event.run_id
    assert dataset.evaluation is not None
    trained_at = dataset.trained_at
    await handle(event, deps)  # delivered once more: nothing changes
    assert (await DatasetRepository(deps.state).get(TENANT, "topics")).trained_at == trained_at


async def test_a_superseded_request_is_dropped_and_a_busy_dataset_refuses_another(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, _ = await labelled(deps, bus)
    await kashf.train(TENANT, "topics")
    with pytest.raises(DatasetBusy, match="waiting"):
        await kashf.train(TENANT, "topics")
    old = bus.events[0]
    await on_failure(old, deps, "boom")  # that run failed: a new one may start
    assert (await dataset_of(deps)).failure_reason == "boom"
    await kashf.train(TENANT, "topics")
    await handle(old, deps)  # the stale request does nothing
    assert (await dataset_of(deps)).state == DatasetState.WAITING
    await handle(bus.events[-1], deps)
    assert (await dataset_of(deps)).state == DatasetState.TRAINED


async def test_tagging_uses_the_trained_version_and_names_the_tags(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, tags = await labelled(deps, bus)
    await kashf.train(TENANT, "topics")
    await handle(bus.events[-1], deps)

    doc = await ask_texts(kashf, "بانک مرکزی قیمت دلار")
    assert doc.state == RunState.PROCESSING
    assert isinstance(bus.events[-1], TaggingRequested)
    await handle(bus.events[-1], deps)
    done = await request_of(deps, doc.id)
    assert done.state == RunState.DONE and done.results is not None
    (answer,) = done.results
    assert answer.tags and all(
        tag.tag_id in tags.values() and 0 <= tag.probability <= 1 for tag in answer.tags
    )
    # the same request again finds the finished one and queues nothing
    queued = len(bus.events)
    found = await ask_texts(kashf, "بانک مرکزی قیمت دلار")
    assert found.id == doc.id and found.state == RunState.DONE and len(bus.events) == queued


async def test_training_needs_reports_on_active_tags(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, tags = await labelled(deps, bus)
    for title, tag_id in tags.items():
        await KashfService(deps).update_tag(TENANT, slug="topics", tag_id=tag_id, title=title, active=False)
    with pytest.raises(NothingToTrain, match="no active tags"):
        await kashf.train(TENANT, "topics")
    assert bus.events == []
    assert (await deps.state.get(dataset_key(TENANT, "topics"))) is not None


async def test_a_failed_tagging_request_asked_again_is_queued_under_a_new_message_id(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, _ = await labelled(deps, bus)
    await kashf.train(TENANT, "topics")
    await handle(bus.events[-1], deps)

    run_id = (await ask_texts(kashf, "فوتبال")).id
    first = bus.events[-1]
    (outcome,) = await on_failure(first, deps, "the worker gave up")
    assert (await request_of(deps, run_id)).state == RunState.FAILED
    deps.clock = lambda: first.time.replace(year=first.time.year + 1)  # asked again later
    doc = await ask_texts(kashf, "فوتبال")
    retry = bus.events[-1]
    assert isinstance(retry, TaggingRequested)
    # the same request (an identical call finds it), but a message the stream will not drop as a repeat
    assert doc.id == run_id and doc.state == RunState.PROCESSING
    assert retry.run_id == run_id and retry.id != first.id
    (finished,) = await handle(retry, deps)
    assert finished.id != outcome.id  # its outcome wakes waiters too
    assert (await request_of(deps, run_id)).state == RunState.DONE


async def test_a_run_for_a_dataset_that_is_gone_fails_at_once_instead_of_being_retried(deps: Deps) -> None:
    bus = memory_bus(deps)
    kashf, _ = await labelled(deps, bus)
    await kashf.train(TENANT, "topics")
    (event,) = bus.events
    await deps.state.delete(dataset_key(TENANT, "topics"))
    with pytest.raises(DatasetNotFound) as raised:
        await handle(event, deps)
    assert settle(raised.value, attempt=1, max_deliver=8, backoff_s=[5.0]) == Fail(
        "dataset 'topics' does not exist"
    )
