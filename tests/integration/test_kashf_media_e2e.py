"""Kashf's image, face and video flows end to end: uploads and URLs, training, tagging.

Images are generated (``tests.media_fixtures``: two kinds of scene that differ
in structure, not colour alone). Faces are the two public-domain portraits in ``tests/data/kashf``
(Eileen Collins, NASA; Grace Hopper, U.S. Navy; see its LICENSE.md), each varied by crop, mirror,
brightness and a small rotation: some variants are reported, the others are held out.

Bars: every held-out scene and face gets its own tag (and not the other one) above the
threshold; a picture without a face answers the unknown face (id 0, "ناآشنا").
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageEnhance, ImageOps

from tests.integration.kashf_client import Kashf, loopback_host
from tests.integration.pipeline import Pipeline
from tests.media_fixtures import blank_image, scene_image, static_then_moving_video

pytestmark = [pytest.mark.e2e]

DATA = Path(__file__).parent.parent / "data" / "kashf"
PORTRAITS = {"collins": DATA / "astronaut.jpg", "hopper": DATA / "grace_hopper.jpg"}
TRAIN_SEEDS, HELD_OUT_SEEDS = range(8), range(100, 104)


@pytest.fixture
async def kashf(pipeline: Pipeline) -> AsyncIterator[Kashf]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=600) as client:
        yield Kashf(pipeline, client)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
async def remote(folder: Path) -> AsyncIterator[str]:
    async with loopback_host(folder) as url:
        yield url


def variant(path: Path, n: int) -> bytes:
    """The portrait cropped, mirrored, brightened or turned a little: another photo of the same face."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    margin = 0.03 * (n % 4)
    image = image.crop((int(width * margin), int(height * margin), int(width * (1 - margin)), height))
    if n % 2:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(0.8 + 0.1 * (n % 5))
    image = image.rotate((n % 3 - 1) * 6, fillcolor=(128, 128, 128))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


async def upload_reports(kashf: Kashf, tag_id: int, images: list[bytes], positive: bool) -> None:
    for n, data in enumerate(images):
        await kashf.call(
            "/api/report_image_tags/",
            None,
            data={"tag_id": str(tag_id), "positive": "true" if positive else "false"},
            files={"image": (f"{n}.jpg", data, "image/jpeg")},
        )


def titles(entry: dict) -> list[str]:
    return [tag["title"] for tag in entry["tags"]]


async def test_image_concepts_from_uploads_tag_urls_and_video_frames(
    kashf: Kashf, folder: Path, remote: str
) -> None:
    slug = await kashf.dataset("image", "scenes")
    tags = await kashf.tags(slug, ["sky", "checkerboard"])
    for kind, other in (("sky", "checkerboard"), ("checkerboard", "sky")):
        images = [scene_image(kind, seed) for seed in TRAIN_SEEDS]
        await upload_reports(kashf, tags[kind], images, positive=True)
        await upload_reports(kashf, tags[other], images, positive=False)
    info = await kashf.train(slug)
    assert info["data_count"] == 2 * len(TRAIN_SEEDS)

    urls = {}
    for kind in ("sky", "checkerboard"):
        for seed in HELD_OUT_SEEDS:
            (folder / f"{kind}-{seed}.jpg").write_bytes(scene_image(kind, seed))
            urls[f"{remote}/files/{kind}-{seed}.jpg"] = kind
    answer = await kashf.call("/api/tag_images/", {"dataset": slug, "image_urls": list(urls)})
    assert [entry["image_url"] for entry in answer] == list(urls)
    for entry in answer:
        assert titles(entry)[:1] == [urls[entry["image_url"]]], entry
        assert len(titles(entry)) == 1, entry

    video = static_then_moving_video(folder / "clip.mp4", static_seconds=2.0, moving_seconds=2.0)
    body: dict[str, Any] = {
        "dataset": slug,
        "video_urls": [f"{remote}/files/{video.name}"],
        "every_ms": 200,
        "duration": None,
    }
    every = await kashf.call("/api/tag_video_frames/", body | {"min_frame_diff": 0.0})
    kept = await kashf.call("/api/tag_video_frames/", body | {"min_frame_diff": 0.2})
    frames, fewer = every[0]["frames"], kept[0]["frames"]
    assert len(frames) == 20  # 4 s, one frame every 200 ms
    assert frames[0]["time"] == "0:00:00" and frames[-1]["time"] == "0:00:03"
    assert [f["frame"] for f in frames] == sorted(f["frame"] for f in frames)
    assert 1 < len(fewer) < len(frames)  # the still part collapses to its first frame
    whole = await kashf.call("/api/tag_videos/", {"dataset": slug, "video_urls": body["video_urls"]})
    assert whole[0]["video_url"] == body["video_urls"][0] and isinstance(whole[0]["tags"], list)

    answer = await kashf.call(
        "/api/tag_video_frames/", body | {"video_urls": [f"{remote}/files/sky-100.jpg"]}, 422
    )
    assert "not a video" in answer["detail"]


async def test_faces_are_recognised_and_strangers_are_unknown(
    kashf: Kashf, folder: Path, remote: str
) -> None:
    slug = await kashf.dataset("face", "faces")
    tags = await kashf.tags(slug, list(PORTRAITS))
    for name, path in PORTRAITS.items():
        other = next(o for o in PORTRAITS if o != name)
        images = [variant(path, n) for n in range(6)]
        await upload_reports(kashf, tags[name], images, positive=True)
        await upload_reports(kashf, tags[other], images, positive=False)
    await kashf.train(slug)

    held_out = {}
    for name, path in PORTRAITS.items():
        for n in range(6, 9):
            (folder / f"{name}-{n}.jpg").write_bytes(variant(path, n))
            held_out[f"{remote}/files/{name}-{n}.jpg"] = name
    (folder / "blank.jpg").write_bytes(blank_image())
    urls = [*held_out, f"{remote}/files/blank.jpg"]
    answer = await kashf.call("/api/tag_faces/", {"dataset": slug, "image_urls": urls})
    for entry in answer[:-1]:
        assert titles(entry) == [held_out[entry["image_url"]]], entry
        assert entry["tags"][0]["probability"] >= 0.5
    assert answer[-1]["tags"] == [{"id": 0, "probability": 1.0, "title": "ناآشنا"}]

    # a video cutting from one portrait to the other: each frame names the face it shows
    clip = folder / "faces.mp4"
    inputs = []
    for name in PORTRAITS:
        still = folder / f"{name}-still.jpg"
        still.write_bytes(variant(PORTRAITS[name], 9))
        inputs += ["-loop", "1", "-t", "1", "-i", str(still)]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex",
         "[0:v]scale=320:400,setsar=1[a];[1:v]scale=320:400,setsar=1[b];[a][b]concat=n=2:v=1[v]",
         "-map", "[v]", "-r", "10", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    body = {
        "dataset": slug,
        "video_urls": [f"{remote}/files/faces.mp4"],
        "every_ms": 500,
        "min_frame_diff": 0.0,
    }
    frames = (await kashf.call("/api/tag_video_faces/", body))[0]["frames"]
    assert len(frames) >= 4 and frames[0]["time"] == "0:00:00" and frames[2]["time"] == "0:00:01"
    names = {frame["frame"]: titles(frame)[:1] for frame in frames}
    # 10 frames a second: Collins until 1 s, then Hopper (the frame at the cut may show either)
    assert [names[n] for n in names if n < 9] == [["collins"]] * sum(1 for n in names if n < 9) != []
    assert [names[n] for n in names if n > 11] == [["hopper"]] * sum(1 for n in names if n > 11) != []
    # the document's sample parameters: the cut is a new frame, the still shots are not
    sample = body | {"every_ms": 50, "duration": 25, "min_frame_diff": 0.4}
    frames = (await kashf.call("/api/tag_video_faces/", sample))[0]["frames"]
    assert [(frame["time"], titles(frame)) for frame in frames] == [
        ("0:00:00", ["collins"]),
        ("0:00:01", ["hopper"]),
    ]
    assert frames[0]["frame"] == 0 and 9 <= frames[1]["frame"] <= 12  # the cut, as ffmpeg placed it
