"""Kashf's API on the real stack: tags, reports, listings, search, export/import, and bad input.

Every bad request must answer 4xx with ``{"detail": …}`` naming the problem, and change nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.integration.kashf_client import WORK_TIMEOUT_S, Kashf, loopback_host
from tests.integration.pipeline import Pipeline

pytestmark = [pytest.mark.e2e]


@pytest.fixture
async def kashf(pipeline: Pipeline) -> AsyncIterator[Kashf]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=300) as client:
        yield Kashf(pipeline, client)


@pytest.fixture
async def other(pipeline: Pipeline) -> AsyncIterator[Kashf]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=300) as client:
        yield Kashf(pipeline, client, key=pipeline.other_key)


@pytest.fixture(scope="module")
async def remote(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A web host on loopback serving one image, a text file and a CSV."""
    folder: Path = tmp_path_factory.mktemp("remote")
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "red.png")
    (folder / "notes.txt").write_text("not an image")
    async with loopback_host(folder) as url:
        yield url


async def test_unknown_ids_and_foreign_tags_are_refused(kashf: Kashf, other: Kashf) -> None:
    slug = await kashf.dataset("text")
    second = await kashf.dataset("text")
    (tag,) = (await kashf.tags(slug, ["sport"])).values()

    answer = await kashf.call("/dataset_info/", {"dataset": "no-such-dataset"}, expect=404)
    assert "no-such-dataset" in answer["detail"]
    await kashf.call("/api/create_tag/", {"dataset": "no-such-dataset", "title": "x"}, expect=404)
    await kashf.call("/api/train_dataset/", {"dataset": "no-such-dataset"}, expect=404)
    for path, body in [
        ("/api/delete_tag/", {"tag_id": 999_999_999}),
        ("/api/list_tag_reports/", {"tag_id": 999_999_999}),
        ("/api/report_text_tags/", [{"content": "x", "tag_id": 999_999_999}]),
        ("/api/update_tag/", {"dataset": slug, "tag_id": 999_999_999, "title": "x"}),
    ]:
        answer = await kashf.call(path, body, expect=404)
        assert "999999999" in answer["detail"], path

    # a tag of another dataset, and a tag of another tenant
    answer = await kashf.call(
        "/api/update_tag/", {"dataset": second, "tag_id": tag, "title": "y"}, expect=400
    )
    assert slug in answer["detail"] and second in answer["detail"]
    await kashf.call("/api/list_tag_predictions/", {"dataset": second, "tag_id": tag}, expect=400)
    await other.call("/api/report_text_tags/", [{"content": "x", "tag_id": tag}], expect=404)
    await other.call("/dataset_info/", {"dataset": slug}, expect=404)
    assert slug not in {row["slug"] for row in await other.call("/api/list_datasets/")}

    # training with no reports says so, and the dataset stays untrained
    answer = await kashf.call("/api/train_dataset/", {"dataset": slug}, expect=400)
    assert "no reports" in answer["detail"]
    assert (await kashf.call("/dataset_info/", {"dataset": slug}))["state"] == "untrained"

    # malformed bodies
    response = await kashf.client.post("/api/create_tag/", content=b"{not json", headers=kashf.headers)
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    answer = await kashf.call("/api/create_tag/", {"dataset": slug}, expect=400)
    assert "title" in answer["detail"]
    answer = await kashf.call("/api/create_dataset/", {"slug": "bad slug!", "type": "text"}, expect=400)
    assert "slug" in answer["detail"]
    answer = await kashf.call("/api/create_dataset/", {"slug": "ok-slug", "type": "audio"}, expect=400)
    assert "type" in answer["detail"]
    await kashf.call("/api/create_dataset/", {"slug": slug, "type": "text"}, expect=409)
    await kashf.call(
        "/api/report_image_tags/", [{"image_url": "http://127.0.0.1:9/x.png", "tag_id": tag}], 400
    )
    response = await kashf.client.get("/api/list_datasets/")
    assert response.status_code == 401 and "detail" in response.json()


async def test_reports_listings_search_and_tag_deletion(kashf: Kashf) -> None:
    slug = await kashf.dataset("text")
    tags = await kashf.tags(slug, ["خرید", "ارسال"])
    texts = [f"متن شماره {n} درباره خرید کالا" for n in range(120)]
    reports = [{"content": t, "tag_id": tags["خرید"], "positive": n % 3 != 0} for n, t in enumerate(texts)]
    answers = await kashf.call("/api/report_text_tags/", reports)
    ids = [a["id"] for a in answers]
    assert len(set(ids)) == 120
    # the same text reported again is the same item
    again = await kashf.call("/api/report_text_tags/", [{"content": texts[0], "tag_id": tags["ارسال"]}])
    assert again[0]["id"] == ids[0] and json.loads(again[0]["report"]) == [[tags["ارسال"], True]]

    page1 = await kashf.call("/api/list_tag_reports/", {"tag_id": tags["خرید"]})
    assert page1["count"] == 120 and len(page1["results"]) == 50 and page1["previous"] is None
    page3 = (
        await kashf.client.post(
            page1["next"].replace("page=2", "page=3"), json={"tag_id": tags["خرید"]}, headers=kashf.headers
        )
    ).json()
    assert len(page3["results"]) == 20 and page3["next"] is None and "page=2" in page3["previous"]
    positives = await kashf.call(
        "/api/list_tag_reports/", {"tag_id": tags["خرید"], "reported_positive": True}
    )
    assert positives["count"] == 80
    assert all(row["positive"] is True for row in positives["results"])

    listed = await kashf.call("/api/list_texts/", {"dataset": slug, "text_ids": [ids[0], ids[5]]})
    assert [row["text"]["id"] for row in listed["results"]] == [ids[0], ids[5]]
    assert listed["results"][0]["text"]["content"] == texts[0]

    found = await kashf.call(
        "/api/search_candidate_texts/", {"dataset": slug, "query": "شماره 7", "reported": True}
    )
    assert {row["id"] for row in found["results"]} == {ids[7], *(ids[n] for n in range(70, 80))}
    unreported = await kashf.call("/api/search_candidate_texts/", {"dataset": slug, "query": "شماره"})
    assert unreported["count"] == 0  # every text is reported

    removed = await kashf.call("/api/remove_tag_report/", {"text_id": ids[1], "tag_id": tags["خرید"]})
    assert removed == {"text_id": ids[1], "tag_id": tags["خرید"]}
    await kashf.call("/api/remove_tag_report/", {"text_id": ids[1], "tag_id": tags["خرید"]}, expect=404)
    deleted = await kashf.call("/api/delete_tag/", {"tag_id": tags["خرید"]})
    assert deleted == {"dataset": slug, "deleted_reports": 119}
    info = await kashf.call("/dataset_info/", {"dataset": slug})
    assert [tag["title"] for tag in info["tags"]] == ["ارسال"] and info["report_count"] == 1
    await kashf.call("/api/list_tag_reports/", {"tag_id": tags["خرید"]}, expect=404)


async def test_import_reports_broken_rows_by_line_and_export_round_trips(kashf: Kashf) -> None:
    slug = await kashf.dataset("text")
    rows = "content,tag,positive\nخیلی خوب بود,رضایت,true\n,رضایت,true\nبد بود,رضایت,maybe\nعالی,رضایت,\n"
    async with kashf.work_done(slug) as finished:
        answer = await kashf.call(
            "/api/import_dataset/",
            None,
            data={"dataset": slug, "tag_names": "true"},
            files={"file": ("rows.csv", rows.encode(), "text/csv")},
        )
        assert answer["state"] == "waiting"
        await asyncio.wait_for(finished, WORK_TIMEOUT_S)
    status = await kashf.call(f"/api/dataset_operations/{slug}/{answer['id']}/")
    assert status["state"] == "done" and status["imported"] == 2 and status["reports"] == 2
    assert [error["line"] for error in status["errors"]] == [3, 4]
    assert "content" in status["errors"][0]["error"] and "positive" in status["errors"][1]["error"]
    info = await kashf.call("/dataset_info/", {"dataset": slug})
    assert info["data_count"] == 2 and [tag["title"] for tag in info["tags"]] == ["رضایت"]

    async with kashf.work_done(slug) as finished:
        export = await kashf.call("/api/export_dataset/", {"dataset": slug, "tag_names": True})
        await asyncio.wait_for(finished, WORK_TIMEOUT_S)
    response = await kashf.client.get(export["file_url"], headers=kashf.headers)
    assert response.status_code == 200
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert {(row["content"], row["tag"], row["positive"]) for row in table} == {
        ("خیلی خوب بود", "رضایت", "true"),
        ("عالی", "رضایت", "true"),
    }


async def test_image_urls_are_fetched_guarded_and_checked(kashf: Kashf, remote: str) -> None:
    slug = await kashf.dataset("image")
    (tag,) = (await kashf.tags(slug, ["red"])).values()
    ok = await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{remote}/files/red.png", "tag_id": tag}]
    )
    assert ok[0]["id"] > 0
    answer = await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{remote}/files/notes.txt", "tag_id": tag}], expect=422
    )
    assert "not a readable image" in answer["detail"]
    answer = await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{remote}/files/missing.png", "tag_id": tag}], expect=400
    )
    assert "404" in answer["detail"]
    answer = await kashf.call(
        "/api/report_image_tags/", [{"image_url": "file:///etc/passwd", "tag_id": tag}], 400
    )
    assert "refused" in answer["detail"]
    listed = await kashf.call("/api/list_images/", {"dataset": slug, "image_ids": [ok[0]["id"]]})
    image = listed["results"][0]["image"]
    assert image["url"] == f"{remote}/files/red.png"
    stored = await kashf.client.get(image["media_url"], headers=kashf.headers)
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
