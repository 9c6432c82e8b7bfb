"""The Kashf dialect over in-memory stores: datasets, tags, reports, listings, images, errors, and the
bodies in /openapi.json (``tests/kashf_api.py`` builds the app)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.common.datasets import Dataset, DatasetRepository, Evaluation, NewReport, identity_of_text
from tests.kashf_api import TENANT, Kashf, kashf_app, png


@pytest.fixture
async def kashf(tmp_path: Path) -> AsyncIterator[Kashf]:
    async with kashf_app(tmp_path) as app:
        yield app


# datasets and tags


async def test_datasets_and_tags_are_created_listed_described_and_kept_per_tenant(kashf: Kashf) -> None:
    tags = await kashf.dataset("news", tags=("sport", "money"))
    created = await kashf.call(
        "/api/create_dataset/", {"slug": "faces", "type": "face-tag", "title": "F"}, 201
    )
    assert created == {
        "title": "F", "type": "face-tag", "slug": "faces", "tag_count": 0, "report_count": 0,
        "state": "untrained", "evaluation": None, "trained_at": "",
    }  # fmt: skip
    listed = await kashf.call("/api/list_datasets/")
    assert [(row["slug"], row["tag_count"]) for row in listed] == [("news", 2), ("faces", 0)]
    assert await kashf.call("/api/list_datasets/", key=kashf.other) == []

    info = await kashf.call("/dataset_info/", {"dataset": "news"})
    assert [(tag["title"], tag["id"]) for tag in info["tags"]] == list(tags.items())
    assert info["evaluation"] is None and info["trained_at"] is None and info["failure_reason"] is None
    assert "tags" not in await kashf.call("/api/dataset_info/", {"dataset": "news", "tags": False})

    renamed = await kashf.call(
        "/api/update_tag/", {"dataset": "news", "tag_id": tags["sport"], "title": "football", "active": False}
    )
    assert renamed == {"title": "football", "tag_id": tags["sport"], "active": False}
    assert await kashf.call("/api/delete_tag/", {"tag_id": tags["money"]}) == {
        "dataset": "news",
        "deleted_reports": 0,
    }


async def test_evaluation_is_fractions_in_list_datasets_and_percent_in_dataset_info(kashf: Kashf) -> None:
    """Each as the document's own sample: list_datasets ``{"precision": 0.94 , "recall": 0.87}``,
    dataset_info ``"recall": 87, "precision": 91`` and, per tag, ``80.3, 91.4, 86.0``."""
    tags = await kashf.dataset("iran", "image", tags=("برج میلاد",))

    def evaluated(dataset: Dataset) -> Dataset:
        dataset.evaluation = Evaluation(precision=94.0, recall=87.0, f1=90.4)
        dataset.tags[str(tags["برج میلاد"])].evaluation = Evaluation(recall=80.3, precision=91.4, f1=86.0)
        return dataset

    await DatasetRepository(kashf.state).change(TENANT, "iran", evaluated)
    (row,) = await kashf.call("/api/list_datasets/")
    assert row["evaluation"] == {"precision": 0.94, "recall": 0.87}
    info = await kashf.call("/dataset_info/", {"dataset": "iran", "tags": True})
    assert (info["evaluation"]["precision"], info["evaluation"]["recall"]) == (94.0, 87.0)
    assert info["tags"][0]["evaluation"] == {"recall": 80.3, "precision": 91.4, "f1": 86.0}


async def test_form_bodies_are_read_like_json(kashf: Kashf) -> None:
    await kashf.dataset("news")
    made = await kashf.call(
        "/api/create_tag/", None, 201, data={"dataset": "news", "title": "x", "active": "false"}
    )
    assert made["active"] is False


@pytest.mark.parametrize(
    ("path", "body", "status", "named"),
    [
        ("/dataset_info/", {"dataset": "nope"}, 404, "nope"),
        ("/api/create_tag/", {"dataset": "nope", "title": "x"}, 404, "nope"),
        ("/api/delete_tag/", {"tag_id": 999}, 404, "999"),
        ("/api/create_tag/", {"dataset": "news"}, 400, "title"),
        ("/api/create_dataset/", {"slug": "bad slug!"}, 400, "slug"),
        ("/api/create_dataset/", {"slug": "ok", "type": "audio"}, 400, "type"),
        ("/api/create_dataset/", {"slug": "news"}, 409, "already exists"),
        ("/api/create_tag/", {"dataset": "news", "title": "sport"}, 409, "sport"),
        ("/api/train_dataset/", {"dataset": "news"}, 400, "no reports"),
        ("/api/tag_texts/", {"dataset": "news", "contents": ["x"]}, 400, "not been trained"),
        ("/api/retag_dataset/", {"dataset": "news", "max_predictions": 5}, 400, "not been trained"),
        ("/api/search_candidate_texts/", {"dataset": "news", "query": " "}, 400, "query"),
        ("/api/list_images/", {"dataset": "news", "image_ids": [1]}, 400, "text data"),
        ("/api/dataset_operations/news/nope/", None, 404, "nope"),
    ],
)
async def test_bad_requests_answer_the_status_and_a_detail_naming_the_problem(
    kashf: Kashf, path: str, body: Any, status: int, named: str
) -> None:
    await kashf.dataset("news", tags=("sport",))
    answer = await kashf.call(path, body, expect=status)
    assert named in answer["detail"]


async def test_a_body_that_is_not_json_and_a_missing_key_are_refused(kashf: Kashf) -> None:
    response = await kashf.client.post(
        "/api/create_tag/", content=b"{not json", headers={"Authorization": f"Token {kashf.key}"}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    response = await kashf.client.get("/api/list_datasets/")
    assert response.status_code == 401 and "detail" in response.json()


async def test_a_tag_of_another_dataset_or_tenant_is_refused(kashf: Kashf) -> None:
    tags = await kashf.dataset("news", tags=("sport",))
    await kashf.dataset("blog")
    answer = await kashf.call(
        "/api/update_tag/", {"dataset": "blog", "tag_id": tags["sport"], "title": "y"}, 400
    )
    assert "news" in answer["detail"] and "blog" in answer["detail"]
    await kashf.call(
        "/api/report_text_tags/", [{"content": "x", "tag_id": tags["sport"]}], 404, key=kashf.other
    )


# reports, listings, search


async def test_reports_are_listed_in_pages_filtered_searched_and_removed(kashf: Kashf) -> None:
    tags = await kashf.dataset("news", tags=("buy",))
    texts = [f"متن شماره {n} درباره خريد" for n in range(60)]  # Arabic yeh, as Whisper writes it
    body = [{"content": t, "tag_id": tags["buy"], "positive": n % 3 != 0} for n, t in enumerate(texts)]
    answers = await kashf.call("/api/report_text_tags/", body)
    ids = [answer["id"] for answer in answers]
    assert json.loads(answers[1]["report"]) == [[tags["buy"], True]] and len(set(ids)) == 60
    again = await kashf.call("/api/report_text_tags/", {"content": texts[0], "tag_id": tags["buy"]})
    assert again[0]["id"] == ids[0]  # the same text is the same item

    first = await kashf.call("/api/list_tag_reports/", {"tag_id": tags["buy"]})
    assert first["count"] == 60 and len(first["results"]) == 50 and first["previous"] is None
    assert [row["text"]["id"] for row in first["results"]] == sorted(ids, reverse=True)[:50]
    second = (
        await kashf.client.post(
            first["next"], json={"tag_id": tags["buy"]}, headers={"Authorization": f"Token {kashf.key}"}
        )
    ).json()
    assert len(second["results"]) == 10 and second["next"] is None and "page=1" in second["previous"]
    await kashf.call("/api/list_tag_reports/?page=3", {"tag_id": tags["buy"]}, expect=404)
    negatives = await kashf.call(
        "/api/list_tag_reports/", {"tag_id": tags["buy"], "reported_positive": False}
    )
    assert negatives["count"] == 19 and all(row["positive"] is False for row in negatives["results"])

    found = await kashf.call(
        "/api/search_candidate_texts/", {"dataset": "news", "query": "شماره 7 درباره خرید", "reported": True}
    )
    assert [row["id"] for row in found["results"]] == [ids[7]]  # Persian yeh finds the Arabic one
    assert (await kashf.call("/api/search_candidate_texts/", {"dataset": "news", "query": "شماره"}))[
        "count"
    ] == 0

    listed = await kashf.call("/api/list_texts/", {"dataset": "news", "text_ids": [ids[5], 12345, ids[0]]})
    assert [row["text"]["id"] for row in listed["results"]] == [ids[5], ids[0]]
    removed = await kashf.call("/api/remove_tag_report/", {"text_id": ids[1], "tag_id": tags["buy"]})
    assert removed == {"text_id": ids[1], "tag_id": tags["buy"]}
    await kashf.call("/api/remove_tag_report/", {"text_id": ids[1], "tag_id": tags["buy"]}, expect=404)
    assert (await kashf.call("/api/delete_tag/", {"tag_id": tags["buy"]}))["deleted_reports"] == 59


async def test_search_with_a_tag_id_finds_the_items_that_tag_is_attached_to(kashf: Kashf) -> None:
    """The document's search samples; a negative report says the tag is not attached."""
    (economy,) = (await kashf.dataset("persica", tags=("اقتصاد",))).values()
    reports = [
        {"content": "اقتصاد مثاومتی یعنی تولید داخلی", "tag_id": economy, "positive": True},
        {"content": "اقتصاد مثاومتی در فیلم تازه", "tag_id": economy, "positive": False},
    ]
    attached, not_attached = (answer["id"] for answer in await kashf.call("/api/report_text_tags/", reports))
    await kashf.call("/api/report_text_tags/", [{"content": "خبر ورزشی", "tag_id": economy}])
    text = "اقتصاد مثاومتی و بازار"  # an item not reported yet (as an import without reports leaves it)
    new = NewReport(identity=identity_of_text(text), tag_id=economy, positive=True, content=text)
    await DatasetRepository(kashf.state).add_items(TENANT, "persica", [new], datetime.now(UTC), report=False)
    sample = {"dataset": "persica", "query": "اقتصاد مثاومتی", "tag_id": economy, "reported": False}
    unreported = await kashf.call("/api/search_candidate_texts/", sample)
    assert [row["content"] for row in unreported["results"]] == ["اقتصاد مثاومتی و بازار"]
    reported = await kashf.call("/api/search_candidate_texts/", sample | {"reported": True})
    assert [row["id"] for row in reported["results"]] == [attached] != [not_attached]

    tags = await kashf.dataset("iran", "image", tags=("برج آزادی", "برج آزادی در شب"))
    for colour, tag, positive in (((200, 30, 30), "برج آزادی", True), ((0, 0, 0), "برج آزادی", False),
                                  ((0, 0, 0), "برج آزادی در شب", True)):  # fmt: skip
        await kashf.call(
            "/api/report_image_tags/", None, data={"tag_id": str(tags[tag]), "positive": str(positive)},
            files={"image": ("photo.png", png(colour), "image/png")},
        )  # fmt: skip
    for path in ("/api/search_candidate_images/", "/api/search_candidate_faces/"):
        found = await kashf.call(path, {"dataset": "iran", "query": "برج آزادی", "tag_id": tags["برج آزادی"]})
        rows = found["results"] if "results" in found else found["items"]
        assert found["count"] == 1 and rows[0]["data"]["reports"] == [
            {"tag_id": tags["برج آزادی"], "positive": True}
        ], path


async def test_images_are_reported_by_upload_and_by_url_and_served_back(kashf: Kashf) -> None:
    tags = await kashf.dataset("scenes", "image", tags=("red",))
    uploaded = await kashf.call(
        "/api/report_image_tags/", None, data={"tag_id": str(tags["red"]), "positive": "false"},
        files={"image": ("red.png", png(), "image/png")},
    )  # fmt: skip
    by_url = await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{kashf.remote}/red.png", "tag_id": tags["red"]}]
    )
    assert uploaded[0]["id"] != by_url[0]["id"] and json.loads(uploaded[0]["report"]) == [
        [tags["red"], False]
    ]

    listed = await kashf.call(
        "/api/list_images/", {"dataset": "scenes", "image_ids": [by_url[0]["id"], uploaded[0]["id"]]}
    )
    url_row, upload_row = (row["image"] for row in listed["results"])
    assert url_row["url"] == f"{kashf.remote}/red.png" and upload_row["url"] == upload_row["media_url"]
    served = await kashf.client.get(upload_row["media_url"], headers={"Authorization": f"Token {kashf.key}"})
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"

    answer = await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{kashf.remote}/notes.txt", "tag_id": tags["red"]}], 422
    )
    assert "not a readable image" in answer["detail"]
    await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{kashf.remote}/red.png", "tag_id": 999}], 404
    )
    text_tag = (await kashf.dataset("news", tags=("x",)))["x"]
    await kashf.call(
        "/api/report_image_tags/", [{"image_url": f"{kashf.remote}/red.png", "tag_id": text_tag}], 400
    )


async def test_openapi_documents_every_kashf_body_as_json_and_as_a_form(kashf: Kashf) -> None:
    spec = (await kashf.client.get("/openapi.json")).json()
    posts = {path: ops["post"] for path, ops in spec["paths"].items() if "post" in ops}
    kashf_posts = {path: op for path, op in posts.items() if "Kashf" in op.get("tags", [])}
    assert len(kashf_posts) == 27
    for path, operation in kashf_posts.items():
        content = operation["requestBody"]["content"]
        assert {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"} <= set(
            content
        ), path
        assert "properties" in content["application/x-www-form-urlencoded"]["schema"], path
    tag_texts = kashf_posts["/api/tag_texts/"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"dataset", "contents"} <= set(tag_texts["required"])
    report = kashf_posts["/api/report_image_tags/"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert report["properties"]["image"] == {"type": "string", "format": "binary"}
