"""The Kashf dialect's work for the train function, over in-memory stores: training, tagging
requests (found, started, waited on, rendered), exports and imports. ``TrainStandIn``
(``tests/kashf_api.py``) plays the train function behind the bus."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.models import DatasetExportRequested, DatasetTrainRequested, TaggingRequested
from functions.api.kashf_tag_answers import VideoFrames, tagging_answer
from functions.common.dataset_runs import (
    DatasetExport,
    DatasetImport,
    FrameTags,
    ImportOutcome,
    InputTags,
    LineError,
    RunDocuments,
    RunState,
    TaggingRequest,
    VideoSampling,
)
from functions.common.datasets import DatasetRepository
from tests.kashf_api import TENANT, Kashf, kashf_app, png, scores
from tests.media_fixtures import static_then_moving_video


@pytest.fixture
async def kashf(tmp_path: Path) -> AsyncIterator[Kashf]:
    async with kashf_app(tmp_path) as app:
        yield app


# training and tagging


async def test_training_is_handed_to_the_train_function_once_at_a_time(kashf: Kashf) -> None:
    tags = await kashf.dataset("news", tags=("sport",))
    await kashf.call("/api/report_text_tags/", [{"content": "فوتبال", "tag_id": tags["sport"]}])
    assert await kashf.call("/api/train_dataset/", {"dataset": "news"}) == {
        "dataset": "news",
        "state": "waiting",
    }
    (event,) = kashf.bus.events
    assert isinstance(event, DatasetTrainRequested) and event.dataset == "news"
    answer = await kashf.call("/api/train_dataset/", {"dataset": "news"}, expect=409)
    assert "waiting" in answer["detail"] and len(kashf.bus.events) == 1


async def test_texts_are_tagged_by_the_train_function_and_rendered_with_titles(kashf: Kashf) -> None:
    tags = await kashf.dataset("news", tags=("sport", "money"))
    await kashf.trained("news")
    kashf.train.scorer = lambda request: (
        InputTags(tags=scores((tags["money"], 0.6049), (tags["sport"], 0.91234))),
        InputTags(tags=scores((999, 0.99))),  # a tag deleted since training
    )
    answer = await kashf.call("/api/tag_texts/", {"dataset": "news", "contents": ["گل زد", "سکه"]})
    assert answer == [
        {"content": "گل زد", "tags": [
            {"id": tags["sport"], "probability": 0.91, "title": "sport"},
            {"id": tags["money"], "probability": 0.6, "title": "money"},
        ]},
        {"content": "سکه", "tags": []},
    ]  # fmt: skip
    (event,) = kashf.bus.events
    assert isinstance(event, TaggingRequested) and kashf.train.waited == [event.run_id]
    # the identical call answers from the finished request and queues nothing
    assert await kashf.call("/api/tag_texts/", {"dataset": "news", "contents": ["گل زد", "سکه"]}) == answer
    assert len(kashf.bus.events) == 1


async def test_a_request_not_waited_for_is_processing_and_a_failed_one_says_why(kashf: Kashf) -> None:
    await kashf.dataset("news", tags=("sport",))
    await kashf.trained("news")
    pending = await kashf.call("/api/tag_texts/", {"dataset": "news", "contents": ["x"], "wait": False})
    assert pending == {"state": "processing", "request_id": pending["request_id"]}
    assert kashf.train.waited == []
    kashf.train.failure = "the worker gave up"
    answer = await kashf.call("/api/tag_texts/", {"dataset": "news", "contents": ["x"]}, expect=422)
    assert "the worker gave up" in answer["detail"]


async def test_faces_without_a_known_tag_are_the_unknown_face(kashf: Kashf) -> None:
    tags = await kashf.dataset("people", "face", tags=("hopper",))
    await kashf.trained("people")
    kashf.train.scorer = lambda request: (InputTags(tags=scores((tags["hopper"], 0.97))), InputTags())
    files = [("image", ("a.png", png(), "image/png")), ("image", ("b.png", png((0, 0, 0)), "image/png"))]
    answer = await kashf.call("/api/tag_faces/", None, files=files, data={"dataset": "people"})
    assert answer == [
        {"image_url": "a.png", "tags": [{"id": tags["hopper"], "probability": 0.97, "title": "hopper"}]},
        {"image_url": "b.png", "tags": [{"id": 0, "probability": 1.0, "title": "ناآشنا"}]},
    ]
    await kashf.call(
        "/api/tag_images/", {"dataset": "people", "image_urls": ["x"]}, expect=400
    )  # a face dataset


async def test_image_urls_are_fetched_and_stored_before_the_request_is_published(kashf: Kashf) -> None:
    await kashf.dataset("scenes", "image", tags=("red",))
    await kashf.trained("scenes")
    url = f"{kashf.remote}/red.png"
    pending = await kashf.call("/api/tag_images/", {"dataset": "scenes", "image_urls": [url], "wait": False})
    request = await RunDocuments(kashf.state).tagging(TENANT, "scenes", pending["request_id"])
    assert request is not None and [entry.url for entry in request.media()] == [url]
    assert request.media()[0].media_key in kashf.media.stored_keys()
    answer = await kashf.call(
        "/api/tag_images/", {"dataset": "scenes", "image_urls": [f"{kashf.remote}/notes.txt"]}, 422
    )
    assert "not a readable image" in answer["detail"]


async def test_video_frames_are_rendered_with_their_clock_times(kashf: Kashf) -> None:
    tags = await kashf.dataset("scenes", "image", tags=("red",))
    await kashf.trained("scenes")
    frames = (
        FrameTags(index=0, seconds=0.0, tags=scores((tags["red"], 0.5))),
        FrameTags(index=90, seconds=83.4, tags=()),
    )
    request = TaggingRequest.model_validate({
        "id": "r1", "kind": "video_frames", "version": "run-1", "params": {"every_ms": 100},
        "inputs": [{"url": "http://v/clip.mp4", "media_key": "k"}], "created_at": "2025-01-01T00:00:00Z",
    })  # fmt: skip
    done = request.model_copy(update={"state": RunState.DONE, "results": (InputTags(frames=frames),)})
    dataset = await DatasetRepository(kashf.state).get(TENANT, "scenes")
    (video,) = tagging_answer(dataset, done)
    assert isinstance(video, VideoFrames) and video.video_url == "http://v/clip.mp4"
    assert [frame.model_dump() for frame in video.frames] == [
        {"frame": 0, "time": "0:00:00", "tags": [{"id": tags["red"], "probability": 0.5, "title": "red"}]},
        {"frame": 90, "time": "0:01:23", "tags": []},
    ]


async def test_tag_video_frames_takes_the_documents_duration_0_as_the_whole_video(kashf: Kashf) -> None:
    """The document lists ``duration`` 0 for tag_video_frames ("null: the whole video"): 0 is that
    default, the same request as null, not a refusal."""
    await kashf.dataset("iran", "image", tags=("میدان آزادی",))
    await kashf.trained("iran")
    static_then_moving_video(kashf.remote_dir / "clip.mp4", 0.5, 0.5)
    sample = {
        "dataset": "iran", "every_ms": 50, "duration": 0, "min_frame_diff": 0.4,
        "video_urls": [f"{kashf.remote}/files/clip.mp4"], "wait": False,
    }  # fmt: skip
    pending = await kashf.call("/api/tag_video_frames/", sample)
    request = await RunDocuments(kashf.state).tagging(TENANT, "iran", pending["request_id"])
    assert request is not None
    assert request.params == VideoSampling(every_ms=50, min_frame_diff=0.4, duration=None)
    assert await kashf.call("/api/tag_video_frames/", sample | {"duration": None}) == pending
    assert len(kashf.bus.events) == 1
    answer = await kashf.call("/api/tag_video_frames/", sample | {"duration": -1}, expect=400)
    assert "duration" in answer["detail"]


# exports and imports


async def test_an_export_is_an_operation_whose_file_comes_when_it_is_done(kashf: Kashf) -> None:
    await kashf.dataset("news")
    operation = await kashf.call("/api/export_dataset/", {"dataset": "news", "tag_names": True})
    assert operation["state"] == "waiting" and "rows" not in operation and "failure_reason" not in operation
    (event,) = kashf.bus.events
    assert isinstance(event, DatasetExportRequested) and event.run_id == operation["id"]
    file = await kashf.client.get(operation["file_url"], headers={"Authorization": f"Token {kashf.key}"})
    assert file.status_code == 202 and file.json()["state"] == "waiting"

    stored = await RunDocuments(kashf.state).operation(TENANT, "news", operation["id"])
    assert isinstance(stored, DatasetExport) and stored.params.tag_names
    await kashf.media.put_bytes(stored.file_key, b"id,content,tag,positive\n1,x,a,true\n", "text/csv")

    def done(current: DatasetExport | DatasetImport) -> DatasetExport | DatasetImport:
        return current.model_copy(update={"state": RunState.DONE, "rows": 1})

    await RunDocuments(kashf.state).finish_operation(TENANT, "news", operation["id"], done)
    status = await kashf.call(f"/api/dataset_operations/news/{operation['id']}/")
    assert status["state"] == "done" and status["rows"] == 1
    file = await kashf.client.get(operation["file_url"], headers={"Authorization": f"Token {kashf.key}"})
    assert list(csv.DictReader(io.StringIO(file.text))) == [
        {"id": "1", "content": "x", "tag": "a", "positive": "true"}
    ]


async def test_an_import_takes_a_file_or_a_url_and_reports_its_line_errors(kashf: Kashf) -> None:
    await kashf.dataset("news")
    sent = await kashf.call(
        "/api/import_dataset/", None, data={"dataset": "news", "tag_names": "true"},
        files={"file": ("rows.csv", b"content,tag\nx,y\n", "text/csv")},
    )  # fmt: skip
    fetched = await kashf.call(
        "/api/import_dataset/", {"dataset": "news", "csv_url": f"{kashf.remote}/rows.csv"}
    )
    documents = RunDocuments(kashf.state)
    for answer, data in (
        (sent, b"content,tag\nx,y\n"),
        (fetched, "content,tag,positive\nخوب,رضایت,true\n".encode()),
    ):
        stored = await documents.operation(TENANT, "news", answer["id"])
        assert isinstance(stored, DatasetImport) and (kashf.media.root / stored.file_key).read_bytes() == data
    assert "file_url" not in sent

    outcome = ImportOutcome(
        imported=1, reports=1, errors=(LineError(line=3, error="positive must be true or false"),)
    )

    def done(current: DatasetExport | DatasetImport) -> DatasetExport | DatasetImport:
        return current.model_copy(update={"state": RunState.DONE, "outcome": outcome})

    await documents.finish_operation(TENANT, "news", sent["id"], done)
    status = await kashf.call(f"/api/dataset_operations/news/{sent['id']}/")
    assert (status["imported"], status["reports"], status["errors"]) == (
        1,
        1,
        [{"line": 3, "error": "positive must be true or false"}],
    )
    await kashf.call(f"/api/dataset_operations/news/{sent['id']}/file/", expect=404)
    await kashf.call("/api/import_dataset/", {"dataset": "news"}, expect=400)
