"""Kashf's services and stored documents over in-memory fakes (``memory_deps``: state, media, bus)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.models import TaggingRequested
from functions.api.kashf_runs import KashfRuns
from functions.api.kashf_service import ImageLabel, KashfService, TextLabel
from functions.common.bootstrap import Deps
from functions.common.dataset_errors import TagNotFound, WrongDatasetType
from functions.common.dataset_runs import (
    DatasetImport,
    RunDocuments,
    RunState,
    TaggingKind,
    TaggingRequest,
    VideoSampling,
)
from functions.common.datasets import Dataset, DatasetRepository, DatasetType, operation_key, request_key
from functions.common.images import check_image
from tests.fakes import DirMediaStore, MemoryBus, memory_deps
from tests.kashf_api import png

TENANT = "acme"


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as deps:
        yield deps


async def tagged_dataset(kashf: KashfService, slug: str, kind: DatasetType, *titles: str) -> list[int]:
    await kashf.create_dataset(TENANT, slug=slug, title=slug, kind=kind)
    return [(await kashf.create_tag(TENANT, slug=slug, title=title, active=True)).id for title in titles]


async def test_reports_land_in_the_dataset_of_their_tag(deps: Deps) -> None:
    kashf = KashfService(deps)
    (sport,) = await tagged_dataset(kashf, "news", DatasetType.TEXT, "sport")
    (money,) = await tagged_dataset(kashf, "blog", DatasetType.TEXT, "money")
    reported = await kashf.report_texts(
        TENANT,
        [
            TextLabel(tag_id=sport, positive=True, content="گل"),
            TextLabel(tag_id=money, positive=False, content="گل"),
        ],
    )
    assert [(r.tag_id, r.positive) for r in reported] == [(sport, True), (money, False)]
    news, blog = await kashf.view(TENANT, "news"), await kashf.view(TENANT, "blog")
    assert [item.reports for item in news.items] == [{str(sport): True}]
    assert [item.reports for item in blog.items] == [{str(money): False}]


async def test_an_image_for_a_text_tag_is_refused_before_anything_is_stored(deps: Deps) -> None:
    kashf = KashfService(deps)
    (sport,) = await tagged_dataset(kashf, "news", DatasetType.TEXT, "sport")
    image = check_image(png(), "red.png")
    with pytest.raises(WrongDatasetType, match="text dataset 'news'"):
        await kashf.report_images(TENANT, [ImageLabel(tag_id=sport, positive=True, image=image, url="")])
    with pytest.raises(TagNotFound):
        await kashf.report_images(TENANT, [ImageLabel(tag_id=12345, positive=True, image=image, url="")])
    assert isinstance(deps.media, DirMediaStore) and deps.media.stored_keys() == []


async def test_search_finds_text_and_positive_tag_titles_within_a_tag_when_asked(deps: Deps) -> None:
    kashf = KashfService(deps)
    sport, money = await tagged_dataset(kashf, "news", DatasetType.TEXT, "ورزش", "پول")
    await kashf.report_texts(
        TENANT,
        [
            TextLabel(tag_id=sport, positive=True, content="بازی ديشب"),  # Arabic yeh
            TextLabel(tag_id=money, positive=False, content="بازی بورس"),
        ],
    )
    _, found = await kashf.search(TENANT, slug="news", query="بازی دیشب", reported=None, tag_id=None)
    assert [item.content for item in found] == ["بازی ديشب"]
    _, by_title = await kashf.search(TENANT, slug="news", query="ورزش", reported=True, tag_id=None)
    assert [item.content for item in by_title] == ["بازی ديشب"]  # its positive tag's title
    _, of_tag = await kashf.search(TENANT, slug="news", query="بازی", reported=True, tag_id=sport)
    assert [item.content for item in of_tag] == ["بازی ديشب"]
    _, negative = await kashf.search(TENANT, slug="news", query="بازی", reported=True, tag_id=money)
    assert negative == []  # reported, but as not being money
    _, unreported = await kashf.search(TENANT, slug="news", query="بازی", reported=False, tag_id=None)
    assert unreported == []


async def trained(deps: Deps, slug: str) -> None:
    def done(dataset: Dataset) -> Dataset:
        dataset.version = dataset.run_id = "run-1"
        return dataset

    await DatasetRepository(deps.state).change(TENANT, slug, done)


async def test_an_identical_tagging_request_is_found_while_it_runs_and_not_published_again(
    deps: Deps,
) -> None:
    await tagged_dataset(KashfService(deps), "news", DatasetType.TEXT, "sport")
    await trained(deps, "news")
    runs = KashfRuns(deps)
    first = await runs.tag_texts(TENANT, slug="news", contents=["گل"], wait=False)
    waited = await runs.tag_texts(TENANT, slug="news", contents=["گل"], wait=True)
    assert waited.request.id == first.request.id and waited.request.state == RunState.PROCESSING
    bus = deps.bus
    assert isinstance(bus, MemoryBus) and bus.waits == [first.request.id]
    assert [type(event) for event in bus.events] == [TaggingRequested]
    other = await runs.tag_texts(TENANT, slug="news", contents=["توپ"], wait=False)
    assert other.request.id != first.request.id and len(bus.events) == 2


async def test_a_video_request_is_named_by_its_sampling_and_refused_by_a_text_dataset(deps: Deps) -> None:
    await tagged_dataset(KashfService(deps), "news", DatasetType.TEXT, "sport")
    await trained(deps, "news")
    with pytest.raises(WrongDatasetType, match="video_frames needs image"):
        await KashfRuns(deps).tag_videos(
            TENANT,
            slug="news",
            kind=TaggingKind.VIDEO_FRAMES,
            urls=["http://127.0.0.1:9/v.mp4"],
            sampling=VideoSampling(),
            wait=False,
        )


async def test_documents_stored_by_earlier_versions_still_read(deps: Deps) -> None:
    """Tagging requests stored their answer in Kashf's shapes ("result"); operations their outcome
    beside the other fields. An old answered request reads as failed, so asking again re-runs it."""
    old_request = {
        "id": "r1", "kind": "texts", "state": "done", "version": "v1", "params": {},
        "inputs": [{"content": "گل"}], "created_at": "2025-01-01T00:00:00+00:00",
        "result": [{"content": "گل", "tags": []}],
    }  # fmt: skip
    old_import = {
        "id": "o1", "kind": "import", "dataset": "news", "state": "done",
        "params": {"report_items": True, "tag_names": True}, "file_key": "k",
        "created_at": "2025-01-01T00:00:00+00:00", "imported": 2, "reports": 1,
        "errors": [{"line": 3, "error": "bad"}],
    }  # fmt: skip
    await deps.state.put(request_key(TENANT, "news", "r1"), old_request)
    await deps.state.put(operation_key(TENANT, "news", "o1"), old_import)
    documents = RunDocuments(deps.state)
    request = await documents.tagging(TENANT, "news", "r1")
    assert request is not None and request.state == RunState.FAILED and request.params is None
    operation = await documents.operation(TENANT, "news", "o1")
    assert isinstance(operation, DatasetImport) and operation.params.tag_names
    assert (operation.outcome.imported, operation.outcome.reports) == (2, 1)
    assert operation.outcome.errors[0].line == 3


def test_a_tagging_request_takes_inputs_of_its_kind_only() -> None:
    base = {"id": "r", "version": "v", "created_at": "2025-01-01T00:00:00Z"}
    with pytest.raises(ValueError, match="MediaInput"):
        TaggingRequest.model_validate(base | {"kind": "images", "inputs": [{"content": "x"}]})
    with pytest.raises(ValueError, match="sampling"):
        TaggingRequest.model_validate(base | {"kind": "videos", "inputs": [{"url": "u", "media_key": "k"}]})
