"""Kashf's tagging answers, rendered from a finished request's results and the dataset's tags.

Tags are named by the dataset's current titles (a tag deleted since is left out), most probable
first, probabilities rounded to two places; a face no tag recognises is the unknown face
(``{"id": 0, "probability": 1.0, "title": "ناآشنا"}``); video frame times are ``H:MM:SS``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from functions.common.dataset_runs import RunState, TaggingKind, TaggingRequest, TagScore, TextInput
from functions.common.datasets import Dataset, DatasetType

UNKNOWN_FACE_ID, UNKNOWN_FACE_TITLE = 0, "ناآشنا"


class TagAnswer(BaseModel):
    id: int
    probability: float
    title: str


class TextTags(BaseModel):
    content: str
    tags: list[TagAnswer]


class ImageTags(BaseModel):
    image_url: str
    tags: list[TagAnswer]


class FrameAnswer(BaseModel):
    frame: int
    time: str
    tags: list[TagAnswer]


class VideoFrames(BaseModel):
    video_url: str
    frames: list[FrameAnswer]


class VideoTags(BaseModel):
    image_url: str
    video_url: str
    tags: list[TagAnswer]


class Processing(BaseModel):
    """A request not answered yet: the same call later answers its result."""

    state: Literal["processing"] = "processing"
    request_id: str


TaggingAnswer = list[TextTags] | list[ImageTags] | list[VideoFrames] | list[VideoTags] | Processing


def frame_clock(seconds: float) -> str:
    """H:MM:SS, truncated to the whole second, as the Kashf documents show times ("0:01:23")."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class TagNames:
    """Renders found tags by the dataset's current titles (tags deleted since are left out)."""

    def __init__(self, dataset: Dataset) -> None:
        self.titles = {tag.id: tag.title for tag in dataset.tags.values()}
        self.faces = dataset.type == DatasetType.FACE

    def tags(self, found: tuple[TagScore, ...], unknown: bool = True) -> list[TagAnswer]:
        """Most probable first; ``unknown``: a face dataset answers the unknown face for none."""
        tags = [
            TagAnswer(id=tag.tag_id, probability=round(tag.probability, 2), title=self.titles[tag.tag_id])
            for tag in found
            if tag.tag_id in self.titles
        ]
        tags.sort(key=lambda tag: -tag.probability)
        if not tags and unknown and self.faces:
            return [TagAnswer(id=UNKNOWN_FACE_ID, probability=1.0, title=UNKNOWN_FACE_TITLE)]
        return tags


def tagging_answer(dataset: Dataset, request: TaggingRequest) -> TaggingAnswer:
    """A finished request's results in the shape of the endpoint that asked, or ``processing``."""
    if request.state != RunState.DONE or request.results is None:
        return Processing(request_id=request.id)
    names = TagNames(dataset)
    pairs = list(zip(request.inputs, request.results, strict=True))
    if request.kind == TaggingKind.TEXTS:
        return [
            TextTags(content=e.content, tags=names.tags(r.tags)) for e, r in pairs if isinstance(e, TextInput)
        ]
    urls = [entry.url for entry in request.media()]
    results = list(request.results)
    if request.kind == TaggingKind.VIDEOS:
        return [
            VideoTags(image_url=url, video_url=url, tags=names.tags(r.tags, unknown=False))
            for url, r in zip(urls, results, strict=True)
        ]
    if request.kind.is_video:
        return [
            VideoFrames(
                video_url=url,
                frames=[
                    FrameAnswer(frame=f.index, time=frame_clock(f.seconds), tags=names.tags(f.tags))
                    for f in r.frames
                ],
            )
            for url, r in zip(urls, results, strict=True)
        ]
    return [ImageTags(image_url=url, tags=names.tags(r.tags)) for url, r in zip(urls, results, strict=True)]
