"""Kashf routes that tag new data with a dataset's models: texts, images, faces, video frames, videos.

Each is a tagging request for the train function (``KashfRuns``): with ``wait`` true (the default)
the answer is the result, unless ``kashf_wait_timeout_s`` passes first; then, or with ``wait``
false, it is ``{"state": "processing", "request_id": …}`` and an identical call later answers the
result. ``tree_based`` is accepted and not used: training has already chosen, per dataset, between
LightGBM and a linear model by cross-validation (``functions/train/learner.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from functions.api.kashf_requests import (
    Runs,
    TagImages,
    TagTexts,
    TagVideos,
    Tenant,
    check_count,
    documented,
    fields,
    json_or_form,
    uploaded_images,
    validated,
)
from functions.api.kashf_runs import KashfRuns, Tagged
from functions.api.kashf_tag_answers import TaggingAnswer, tagging_answer
from functions.common.dataset_runs import RunState, TaggingKind, VideoSampling
from functions.common.errors import BadRequest, Unprocessable

router = APIRouter(tags=["Kashf"])
VIDEOS_EVERY_MS = 1000  # tag_videos samples a frame a second unless asked otherwise


def answer(tagged: Tagged) -> TaggingAnswer:
    if tagged.request.state == RunState.FAILED:
        raise Unprocessable(f"tagging failed: {tagged.request.failure_reason or 'unknown reason'}")
    return tagging_answer(tagged.dataset, tagged.request)


@router.post("/api/tag_texts/", openapi_extra=documented(TagTexts))
async def tag_texts(
    request: Request, tenant: Tenant, runs: Runs, body: Annotated[TagTexts, json_or_form(TagTexts)]
) -> TaggingAnswer:
    check_count(request, len(body.contents), "contents")
    return answer(await runs.tag_texts(tenant, slug=body.dataset, contents=body.contents, wait=body.wait))


async def _tag_images(request: Request, tenant: str, runs: KashfRuns, kind: TaggingKind) -> TaggingAnswer:
    uploads = await uploaded_images(request)
    body = validated(TagImages, await fields(request))
    if not body.image_urls and not uploads:
        raise BadRequest("send image_urls, or image files as multipart/form-data")
    check_count(request, len(body.image_urls) + len(uploads), "images")
    tagged = await runs.tag_images(
        tenant, slug=body.dataset, kind=kind, urls=body.image_urls, uploads=uploads, wait=body.wait
    )
    return answer(tagged)


@router.post("/api/tag_images/", openapi_extra=documented(TagImages, files=("image",)))
async def tag_images(request: Request, tenant: Tenant, runs: Runs) -> TaggingAnswer:
    return await _tag_images(request, tenant, runs, TaggingKind.IMAGES)


@router.post("/api/tag_faces/", openapi_extra=documented(TagImages, files=("image",)))
async def tag_faces(request: Request, tenant: Tenant, runs: Runs) -> TaggingAnswer:
    return await _tag_images(request, tenant, runs, TaggingKind.FACES)


async def _tag_videos(
    request: Request, tenant: str, runs: KashfRuns, body: TagVideos, kind: TaggingKind
) -> TaggingAnswer:
    check_count(request, len(body.video_urls), "videos")
    every_ms = body.every_ms
    if kind == TaggingKind.VIDEOS and "every_ms" not in body.model_fields_set:
        every_ms = VIDEOS_EVERY_MS
    # the document lists duration 0 as tag_video_frames' default and null as "the whole video":
    # 0 seconds of video would tag nothing, so 0 is read as that default
    duration = body.duration or None
    sampling = VideoSampling(every_ms=every_ms, min_frame_diff=body.min_frame_diff, duration=duration)
    tagged = await runs.tag_videos(
        tenant, slug=body.dataset, kind=kind, urls=body.video_urls, sampling=sampling, wait=body.wait
    )
    return answer(tagged)


@router.post("/api/tag_video_frames/", openapi_extra=documented(TagVideos))
async def tag_video_frames(
    request: Request, tenant: Tenant, runs: Runs, body: Annotated[TagVideos, json_or_form(TagVideos)]
) -> TaggingAnswer:
    return await _tag_videos(request, tenant, runs, body, TaggingKind.VIDEO_FRAMES)


@router.post("/api/tag_video_faces/", openapi_extra=documented(TagVideos))
async def tag_video_faces(
    request: Request, tenant: Tenant, runs: Runs, body: Annotated[TagVideos, json_or_form(TagVideos)]
) -> TaggingAnswer:
    return await _tag_videos(request, tenant, runs, body, TaggingKind.VIDEO_FACES)


@router.post("/api/tag_videos/", openapi_extra=documented(TagVideos))
async def tag_videos(
    request: Request, tenant: Tenant, runs: Runs, body: Annotated[TagVideos, json_or_form(TagVideos)]
) -> TaggingAnswer:
    return await _tag_videos(request, tenant, runs, body, TaggingKind.VIDEOS)
