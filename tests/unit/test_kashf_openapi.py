"""Every Kashf request body is in /openapi.json: each endpoint of the document, with the parameters
the document lists for it, and the document's own sample request valid against the published schema.

The samples are the document's (004_73cd8550240eab66.txt), URLs shortened; two of its samples are not
JSON as printed (``remove_tag_report``: a trailing comma; ``list_tag_predictions``: a missing comma)
and are given here as they are evidently meant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

from tests.kashf_api import kashf_app

VIDEO = "https://hw15.cdn.asset.aparat.com/aparat-video/98b7e4cc-480p__79959.mp4"
FRAMES = {"every_ms": 50, "duration": 25, "min_frame_diff": 0.4, "video_urls": [VIDEO]}
VIDEO_PARAMETERS = {"dataset", "video_urls", "every_ms", "min_frame_diff", "duration", "wait"}
SEARCH = {"dataset", "query", "tag_id"}

# path: (the document's sample request, the parameters it lists for the endpoint)
DOCUMENT: dict[str, tuple[Any, set[str]]] = {
    "/api/create_tag/": ({"dataset": "iran", "title": "New Place"}, {"dataset", "title", "active"}),
    "/api/update_tag/": (
        {"dataset": "iran", "tag_id": 111111111, "title": "Old Place", "active": True},
        {"tag_id", "dataset", "title", "active"},
    ),
    "/api/delete_tag/": ({"tag_id": 111111111}, {"tag_id"}),
    "/api/report_text_tags/": (
        [{"content": "پیشنهاد میکنم از این بخرید خیلی عالیه.", "tag_id": 39, "positive": True}],
        {"content", "tag_id", "positive"},
    ),
    "/api/report_image_tags/": (
        [
            {
                "image_url": "https://upload.wikimedia.org/800px-Tehran-Milad_Tower2.jpg",
                "tag_id": 3,
                "positive": True,
            }
        ],
        {"image_url", "tag_id", "positive"},
    ),
    "/api/remove_tag_report/": ({"image_id": 1211593, "tag_id": 3}, {"text_id", "image_id", "tag_id"}),
    "/api/tag_texts/": (
        {"dataset": "digikala", "contents": ["ارزش خریدنش رو بی شک داره", "اصلا اصلا کیفیت نداره"]},
        {"dataset", "contents", "wait", "tree_based"},
    ),
    "/api/tag_images/": (
        {"dataset": "iran", "image_urls": ["https://media.mehrnews.com/d/2016/08/13/4/2171627.jpg"]},
        {"dataset", "image_urls", "wait"},
    ),
    "/api/tag_faces/": (
        {"dataset": "faces", "image_urls": ["https://media.mehrnews.com/d/2021/12/26/3/4002104.jpg"]},
        {"dataset", "image_urls", "wait"},
    ),
    "/api/tag_video_frames/": ({"dataset": "iran", **FRAMES}, VIDEO_PARAMETERS),
    "/api/tag_video_faces/": ({"dataset": "faces", **FRAMES}, VIDEO_PARAMETERS),
    "/api/tag_videos/": ({"dataset": "aparat", "video_urls": [VIDEO]}, {"dataset", "video_urls", "wait"}),
    "/api/train_dataset/": ({"dataset": "iran"}, {"dataset"}),
    "/api/retag_dataset/": ({"dataset": "iran", "max_predictions": 100}, {"dataset", "max_predictions"}),
    "/api/export_dataset/": (
        {"dataset": "iran", "original_urls": True, "tag_names": True},
        {"dataset", "original_urls", "tag_names"},
    ),
    "/api/import_dataset/": (
        {"dataset": "iran", "report_items": True, "tag_names": True},
        {"dataset", "csv_url", "report_items"},
    ),
    "/dataset_info/": ({"dataset": "iran", "tags": True}, {"dataset", "tags"}),
    "/api/list_tag_predictions/": ({"dataset": "iran", "tag_id": 2}, {"dataset", "tag_id"}),
    "/api/list_tag_reports/": ({"tag_id": 2}, {"tag_id", "reported_positive"}),
    "/api/list_tag_notsure_reports/": ({"tag_id": 2}, {"tag_id", "reported_positive"}),
    "/api/list_texts/": ({"dataset": "persica", "text_ids": [11462988]}, {"dataset", "text_ids"}),
    "/api/list_images/": ({"dataset": "iran", "text_ids": [1832]}, {"dataset", "images_ids"}),
    "/api/search_candidate_texts/": (
        {"dataset": "persica", "query": "اقتصاد مثاومتی", "tag_id": 1482, "reported": False},
        SEARCH | {"reported"},
    ),
    "/api/search_candidate_images/": ({"dataset": "iran", "query": "برج آزادی", "tag_id": 2}, SEARCH),
    "/api/search_candidate_faces/": ({"dataset": "faces", "query": " احسان کرمی", "tag_id": 213243}, SEARCH),
}
UPLOADS = {"/api/report_image_tags/": "image", "/api/tag_images/": "image", "/api/tag_faces/": "image",
           "/api/import_dataset/": "file"}  # fmt: skip
# beyond the document: a dataset needs a start, and dataset_info answers under /api/ too
OWN = {"/api/create_dataset/", "/api/dataset_info/"}


@pytest.fixture(scope="module")
async def spec(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    async with kashf_app(tmp_path_factory.mktemp("openapi")) as kashf:
        yield (await kashf.client.get("/openapi.json")).json()


def kashf_posts(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        path: operations["post"]
        for path, operations in spec["paths"].items()
        if "Kashf" in operations.get("post", {}).get("tags", [])
    }


def object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The body's object schema (a route taking a list of them also takes one)."""
    return (
        next((s for s in schema["anyOf"] if s.get("type") == "object"), {}) if "anyOf" in schema else schema
    )


async def test_every_kashf_post_route_is_a_documented_endpoint_or_one_of_shenavas(
    spec: dict[str, Any],
) -> None:
    assert set(kashf_posts(spec)) == set(DOCUMENT) | OWN


@pytest.mark.parametrize("path", sorted(DOCUMENT))
async def test_the_documents_sample_fits_the_published_body(spec: dict[str, Any], path: str) -> None:
    sample, parameters = DOCUMENT[path]
    content = kashf_posts(spec)[path]["requestBody"]["content"]
    as_json = content["application/json"]["schema"]
    jsonschema.validate(sample, as_json)
    assert parameters <= set(object_schema(as_json)["properties"])
    for form in ("application/x-www-form-urlencoded", "multipart/form-data"):
        assert parameters <= set(content[form]["schema"]["properties"]), form
    if path in UPLOADS:
        file = content["multipart/form-data"]["schema"]["properties"][UPLOADS[path]]
        assert file == {"type": "string", "format": "binary"}


async def test_list_datasets_takes_no_body(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/list_datasets/"]["get"]
    assert "requestBody" not in operation and "Kashf" in operation["tags"]
