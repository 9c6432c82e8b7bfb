"""Answering a tagging request: the models of the version it names, applied to each input.

Texts are featurised by the run's text featurizer; pictures are embedded in batches (faces: every
face, a picture's score per tag being its best face's); videos are sampled into frames first
(``features.video``), each frame tagged as a picture. What is stored is ``InputTags`` per input:
tag ids and probabilities, and frame numbers and times for videos. Unreadable media end the
request at once (retrying cannot read them).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np

from events.models import TaggingRequested
from functions.common.bootstrap import Deps
from functions.common.concepts import Bundle, load_bundle
from functions.common.dataset_runs import (
    FrameTags,
    InputTags,
    MediaInput,
    RunDocuments,
    RunState,
    TaggingKind,
    TaggingRequest,
    TagScore,
    VideoSampling,
)
from functions.common.datasets import DatasetRepository, DatasetType
from functions.train import concepts
from functions.train.errors import UnreadableMedia
from functions.train.features.image import FeatureError
from functions.train.media import download_media, read_media

EMBED_BATCH = 16  # pictures embedded per call: video frames in batches, memory bounded


async def tag_request(event: TaggingRequested, deps: Deps) -> None:
    repo, documents = DatasetRepository(deps.state), RunDocuments(deps.state)
    request = await documents.tagging(event.tenant, event.dataset, event.run_id)
    if request is None or request.state.finished:
        return
    dataset = await repo.get(event.tenant, event.dataset)
    dataset.version = request.version  # the version the caller asked against
    bundle = await load_bundle(repo, event.tenant, dataset)
    results = await Tagger(bundle, deps).answer(request)
    finished_at = deps.clock()

    def finish(current: TaggingRequest) -> TaggingRequest:
        return current.model_copy(
            update={"state": RunState.DONE, "results": results, "finished_at": finished_at}
        )

    await documents.finish_tagging(event.tenant, event.dataset, event.run_id, finish)


class Tagger:
    """What one version's models find in a request's inputs, with the probability of each tag."""

    def __init__(self, bundle: Bundle, deps: Deps) -> None:
        self.bundle = bundle
        self.deps = deps

    async def answer(self, request: TaggingRequest) -> tuple[InputTags, ...]:
        if request.kind == TaggingKind.TEXTS:
            return await self.texts(request.texts())
        if not request.kind.is_video:
            pictures = [await read_media(self.deps, entry.media_key) for entry in request.media()]
            return tuple(InputTags(tags=tags) for tags in await self.pictures_tags(pictures))
        assert request.params is not None  # a video request always has its sampling
        return tuple([await self.video(entry, request.kind, request.params) for entry in request.media()])

    async def texts(self, texts: list[str]) -> tuple[InputTags, ...]:
        features = await asyncio.to_thread(self.bundle.text_features, texts)
        scores = await asyncio.to_thread(self.bundle.probabilities, features)
        return tuple(InputTags(tags=self.bundle.scores_at(scores, row)) for row in range(len(texts)))

    async def pictures_tags(self, pictures: list[bytes]) -> list[tuple[TagScore, ...]]:
        """Each picture's tags; unreadable bytes end the request (retrying cannot read them)."""
        try:
            if self.bundle.kind == DatasetType.FACE:
                return [await self.face_tags(picture) for picture in pictures]
            answers: list[tuple[TagScore, ...]] = []
            for start in range(0, len(pictures), EMBED_BATCH):
                batch = pictures[start : start + EMBED_BATCH]
                matrix = await asyncio.to_thread(concepts.image_embedder().embed, batch)
                scores = await asyncio.to_thread(self.bundle.probabilities, matrix)
                answers += [self.bundle.scores_at(scores, row) for row in range(len(batch))]
            return answers
        except FeatureError as exc:
            raise UnreadableMedia(str(exc)) from exc

    async def face_tags(self, picture: bytes) -> tuple[TagScore, ...]:
        """A picture's score per tag is its best face's; none without a face."""
        faces = await asyncio.to_thread(concepts.face_embedder().faces, picture)
        if not faces:
            return ()
        matrix = np.vstack([face.vector for face in faces]).astype(np.float32)
        scores = await asyncio.to_thread(self.bundle.probabilities, matrix)
        best = {tag_id: np.array([values.max()]) for tag_id, values in scores.items()}
        return self.bundle.scores_at(best, 0)

    async def video(self, entry: MediaInput, kind: TaggingKind, sampling: VideoSampling) -> InputTags:
        frames = await self.video_frames(entry.media_key, sampling)
        if kind == TaggingKind.VIDEOS:
            return InputTags(tags=strongest(frames))
        return InputTags(frames=frames)

    async def video_frames(self, media_key: str, sampling: VideoSampling) -> tuple[FrameTags, ...]:
        from functions.train.features.video import sample_frames

        with tempfile.TemporaryDirectory(prefix="shenava-video-") as directory:
            path = Path(directory) / "video"
            await download_media(self.deps, media_key, path)
            try:
                frames = await asyncio.to_thread(
                    sample_frames, path, sampling.every_ms, sampling.min_frame_diff, sampling.duration
                )
            except (ValueError, FeatureError) as exc:
                raise UnreadableMedia(str(exc)) from exc
        tagged = await self.pictures_tags([frame.jpeg for frame in frames])
        return tuple(
            FrameTags(index=frame.index, seconds=frame.seconds, tags=tags)
            for frame, tags in zip(frames, tagged, strict=True)
        )


def strongest(frames: tuple[FrameTags, ...]) -> tuple[TagScore, ...]:
    """A whole video's tags: each tag seen on a frame, with its highest probability over the frames."""
    best: dict[int, TagScore] = {}
    for frame in frames:
        for tag in frame.tags:
            if tag.tag_id not in best or tag.probability > best[tag.tag_id].probability:
                best[tag.tag_id] = tag
    return tuple(sorted(best.values(), key=lambda tag: -tag.probability))
